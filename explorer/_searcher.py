"""The Optuna searcher of a search (imported by ``explorer.search`` only when a search starts: it imports Ray).

A module of its own, not a class built inside a function, because Tune pickles the searcher with the experiment
state and ``--resume`` must find the class again by name.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch

FAILED_STATUSES = ("FAILED", "INFEASIBLE")


class RecordingOptunaSearch(OptunaSearch):
    """OptunaSearch that records a trial which reported its own failure (``trial_status`` FAILED or INFEASIBLE)
    as a failed Optuna trial. Trials report failures instead of raising so that Tune's retries are left for dead
    workers; plain OptunaSearch would try to tell Optuna NaN objectives and leave the trial RUNNING."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        failed = bool(result) and result.get("trial_status") in FAILED_STATUSES
        super().on_trial_complete(trial_id, None if failed else result, error=error or failed)
