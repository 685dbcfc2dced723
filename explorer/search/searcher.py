"""The Optuna searcher of a search (imports Ray: the driver imports it only when a search starts).

A module of its own, not a class built inside a function, because Tune pickles the searcher with the experiment
state and ``--resume`` must find the class again by name.
"""

from __future__ import annotations

from typing import Any

from ray.tune.search.optuna import OptunaSearch

FAILED_STATUSES = ("FAILED", "INFEASIBLE")


class RecordingOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna what really happened to a trial:

    - a trial that reported its own failure (``trial_status`` FAILED or INFEASIBLE) is a failed Optuna trial.
      Trials report failures instead of raising so that Tune's retries are left for dead workers; plain
      OptunaSearch would try to tell Optuna NaN objectives and leave the trial RUNNING;
    - a trial that a scheduler (ASHA) stopped before ``epochs`` is PRUNED, with the epoch it reached and its last
      accuracy as user attributes. Plain OptunaSearch tells it COMPLETE with its truncated accuracy, so every
      sampler (and the importance chart) would learn from epoch-1 numbers as if they were final;
    - a trial that broke a constraint (INFEASIBLE, never trained) is PRUNED with the constraint's relative excess
      set by ``trial.set_constraint``: TPE then ranks it among the infeasible trials (away from its region)
      instead of ignoring it as a failure.
    """

    def __init__(self, *args: Any, epochs: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epochs = epochs  # the budget's epochs: a trial that ends before them was stopped early

    def _stopped_early(self, result: dict[str, Any] | None) -> bool:
        return bool(result) and self.epochs is not None and int(result.get("epoch", self.epochs)) < self.epochs

    def _told_already(self, trial_id: str) -> bool:
        """Whether Optuna's storage already holds this trial finished. On ``--resume``, Tune's saved searcher can
        predate the killed driver's last tell (state is saved every second, the SQLite tell is immediate), so Tune
        reports that trial's end again; telling Optuna twice fails and only logs a warning."""
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return False
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if self._told_already(trial_id):
            self._completed_trials.add(trial_id)
            return
        if (
            result
            and result.get("trial_status") == "INFEASIBLE"
            and result.get("constraint")
            and trial_id in self._ot_trials
            and trial_id not in self._completed_trials
        ):
            ot_trial = self._ot_trials[trial_id]
            # a violation is > 0 (Optuna: feasible when every constraint is <= 0)
            ot_trial.set_constraint(str(result["constraint"]), max(float(result["constraint_excess"]), 1e-9))
            super().on_trial_complete(trial_id, None, error=False)  # no values, no error: Optuna's PRUNED
            return
        failed = bool(result) and result.get("trial_status") in FAILED_STATUSES
        if (
            not (failed or error)
            and self._stopped_early(result)
            and trial_id in self._ot_trials
            and trial_id not in self._completed_trials
        ):
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr("epochs_reached", int(result["epoch"]))
            if result.get("accuracy") is not None:
                ot_trial.set_user_attr("accuracy_when_stopped", float(result["accuracy"]))
            super().on_trial_complete(trial_id, None, error=False)  # no values, no error: Optuna's PRUNED
            return
        super().on_trial_complete(trial_id, None if failed else result, error=error or failed)
