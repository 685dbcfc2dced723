"""Fixed lists of trainings run as Ray Tune trials: the front audit's retrainings and a study's cells.

A job is a JSON-able dict with at least ``trial_id``, ``arch_json`` (the Arch to train as it is), ``seed`` and
``epochs``; ``run_audit_trial`` trains it with the space's recipe. Each finished job becomes one row of the trials
table at once (``add_rows``), built by the row builder registered for its kind. Tune's experiment state lives in
``<run>/<state>/`` while the jobs run, so an interrupted run resumes: the finished jobs are in the table, Tune's
restored state finishes the ones it was started with, and the jobs still pending after that run next.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.search.callbacks import progress_callback
from explorer.search.rundir import add_rows, tune_state_saved
from explorer.search.trial import run_audit_trial, trial_resources
from explorer.space import SearchSpace


class Interrupted(RuntimeError):
    """A run stopped before it finished (Ctrl-C, or Tune stopping its jobs short). What finished is in the table;
    the jobs cut short are not, and Tune's saved state restarts them when the run is resumed."""


RowBuilder = Callable[[SearchSpace, Path, dict, dict, list, "BaseException | None"], dict]
ROW_BUILDERS: dict[str, RowBuilder] = {}  # kind -> (space, run_dir, job, metrics, history, error) -> table row


def _table_callback(space: SearchSpace, run_dir: Path, kind: str):
    """Writes each job's row into the trials table as soon as the job ends."""
    from ray.tune import Callback

    class _JobTable(Callback):
        def __init__(self):
            self.history: dict[str, list[dict[str, Any]]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.history.setdefault(trial.trial_id, []).append(dict(result))

        def _write(self, trial, error: BaseException | None) -> None:
            row = ROW_BUILDERS[kind](
                space,
                run_dir,
                trial.config["job"],
                dict(trial.last_result or {}),
                self.history.get(trial.trial_id, []),
                error,
            )
            add_rows(run_dir, [row])

        def on_trial_complete(self, iteration, trials, trial, **info):
            if not _stopped_short(trial.config["job"], dict(trial.last_result or {}), None):
                self._write(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._write(trial, RuntimeError("the trial's worker failed"))

    return _JobTable()


def _tuner(space: SearchSpace, run_dir: Path, jobs: list[dict], kind: str, state: str, progress: bool, restore: bool):
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(
            run_audit_trial, space_data=space.model_dump(mode="json"), cache_dir=str(run_dir / "cache")
        ),
        trial_resources(space),
    )
    if restore:
        return tune.Tuner.restore(
            str(run_dir / state),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=True,
        )
    callbacks = [_table_callback(space, run_dir, kind)] + ([progress_callback(len(jobs), kind)] if progress else [])
    return tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search(jobs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=space.budget.concurrency, reuse_actors=True),
        run_config=tune.RunConfig(
            name=state,
            storage_path=str(run_dir),
            verbose=0,
            callbacks=callbacks,
            failure_config=tune.FailureConfig(max_failures=space.budget.retries, fail_fast=False),
        ),
    )


def run_jobs(
    space: SearchSpace, run_dir: Path, pending: Callable[[], list[dict]], kind: str, state: str, progress: bool = True
) -> int:
    """Run the jobs ``pending()`` lists (those not yet in the table) on the Ray this process has started or
    joined; returns how many Tune trials ran. An interrupted run is restored first and finishes the jobs it was
    started with; the jobs still pending after it run next."""
    ran = 0
    for _ in range(2):  # at most: the restored run, then what is still pending
        jobs = pending()
        restore = tune_state_saved(run_dir / state)
        if not restore:  # killed before Tune saved anything: its jobs are still pending
            shutil.rmtree(run_dir / state, ignore_errors=True)
            if not jobs:
                break
        results = _tuner(space, run_dir, jobs, kind, state, progress, restore).fit()
        ran += len(results)
        if _write_results(space, run_dir, results, kind):  # Tune stopped some short (SIGUSR1 does so)
            raise Interrupted(
                f"stopped before every job finished: the finished ones are in {run_dir / 'trials.parquet'}; "
                f"resume the run in {run_dir} to train the rest"
            )
        shutil.rmtree(run_dir / state, ignore_errors=True)  # every row is in the table now
    return ran


def _stopped_short(job: dict[str, Any], metrics: dict[str, Any], error: BaseException | None) -> bool:
    """A job that ended without an error before its last epoch: jobs run without a scheduler, so only an
    interruption does that, and its row would mark the job done with a partial training."""
    return error is None and int(metrics.get("epoch", 0) or 0) < int(job["epochs"])


def _write_results(space: SearchSpace, run_dir: Path, results, kind: str) -> int:
    """Every finished job of a result grid, into the table (the callback wrote them already, unless the run was
    restored: Tune does not replay callbacks for trials that finished before the interruption); returns how many
    jobs stopped short, which stay out of the table and pending."""
    rows, short = [], 0
    for result in results:
        if _stopped_short(result.config["job"], dict(result.metrics or {}), result.error):
            short += 1
            continue
        frame = result.metrics_dataframe
        history = frame.to_dict("records") if frame is not None else []
        rows.append(
            ROW_BUILDERS[kind](space, run_dir, result.config["job"], dict(result.metrics or {}), history, result.error)
        )
    if rows:
        add_rows(run_dir, rows)
    return short
