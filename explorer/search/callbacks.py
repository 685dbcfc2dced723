"""The Tune callbacks of a search: the live trials table and report, and the progress bar."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from explorer.search.rundir import HISTORY_KEYS, keep_lost_rows, trial_row, write_table
from explorer.space import SearchSpace

_log = logging.getLogger(__name__)


def live_table_callback(space: SearchSpace, run_dir: Path):
    """A Tune callback that rewrites the trials table and the report (in live mode: the page reloads itself)
    after every finished trial, so a user watches the front grow."""
    from ray.tune import Callback

    class _LiveTable(Callback):
        def __init__(self):
            self.history: dict[str, list[dict[str, Any]]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.history.setdefault(trial.trial_id, []).append({k: v for k, v in result.items() if k in HISTORY_KEYS})

        def _refresh(self, trials) -> None:
            import pandas as pd

            rows = []
            for number, trial in enumerate(trials):
                if trial.status not in ("TERMINATED", "ERROR"):
                    continue
                error = RuntimeError("the trial's worker failed") if trial.status == "ERROR" else None
                rows.append(
                    trial_row(
                        space,
                        run_dir,
                        number,
                        trial.trial_id,
                        dict(trial.config),
                        dict(trial.last_result or {}),
                        self.history.get(trial.trial_id, []),
                        error,
                    )
                )
            if not rows:
                return
            try:
                table = keep_lost_rows(pd.DataFrame(rows), run_dir, {t.trial_id for t in trials})
                write_table(table, run_dir)
                from explorer.report import write_report

                write_report(run_dir, live=True)
            except Exception as err:  # noqa: BLE001 - a report glitch must never stop the search
                _log.warning("warning: live report not refreshed: %s: %s", type(err).__name__, err)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._refresh(trials)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._refresh(trials)

    return _LiveTable()


def progress_callback(total: int, label: str = "search"):
    """A Tune callback drawing a rich progress bar (built lazily so importing this module needs no Ray)."""
    from ray.tune import Callback

    class _Progress(Callback):
        """A rich progress bar over finished trials, with the best accuracy so far."""

        def __init__(self, total: int, label: str):
            self.total, self.done, self.failed, self.best = total, 0, 0, float("nan")
            self.label = label
            self._bar = self._task = None

        def __getstate__(self):  # Tune pickles its run config: the live bar stays behind
            return {k: v for k, v in self.__dict__.items() if k not in ("_bar", "_task")}

        def setup(self, **info):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                transient=False,
            )
            self._task = self._bar.add_task("starting Ray workers…", total=self.total)
            self._bar.start()

        def _describe(self, note: str) -> None:
            if self._bar is not None:
                best = "—" if self.best != self.best else f"{self.best:.1%}"
                self._bar.update(
                    self._task, completed=self.done, description=f"best acc {best} · failed {self.failed} · {note}"
                )

        def on_trial_result(self, iteration, trials, trial, result, **info):
            acc = result.get("accuracy")
            if acc is not None and not (acc <= self.best):
                self.best = acc
            self._describe(f"trial {trial.trial_id} epoch {result.get('epoch')}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            self._describe(f"trial {trial.trial_id} done")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.done += 1
            self.failed += 1
            self._describe(f"trial {trial.trial_id} failed")

        def on_experiment_end(self, trials, **info):
            if self._bar is not None:
                self._bar.stop()

    return _Progress(total, label)
