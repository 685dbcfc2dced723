"""The front audit of a finished search: retrain its best front points and a few random trials with other seeds
(and at a longer budget when asked) through Ray Tune, writing each retraining into the trials table as it ends.

A retraining is one Tune trial of ``run_audit_trial`` on a grid of jobs (``explorer.analysis.audit.AuditJob``);
Tune's experiment state lives in ``<run>/audit/`` while it runs, so an interrupted audit resumes like a search:
finished retrainings are in the table (and Tune's state), unfinished ones start again.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from explorer.analysis import AUDIT_ROLE, load_trials
from explorer.analysis.audit import AuditJob, audit_jobs
from explorer.search.callbacks import progress_callback
from explorer.search.rundir import trial_row, upsert_rows
from explorer.search.trial import run_audit_trial, trial_resources, with_epochs
from explorer.space import SearchSpace
from explorer.space.schema import AuditSpec

AUDIT_DIR = "audit"


def planned_jobs(space: SearchSpace, run_dir: Path, spec: AuditSpec) -> list[AuditJob]:
    """Every retraining the audit of this run asks for (done or not)."""
    objectives = [o.model_dump() for o in space.objectives]
    return audit_jobs(load_trials(run_dir), objectives, front=spec.front, random=spec.random, seeds=spec.seeds,
                      base_seed=space.task.seed, epochs=space.budget.epochs, reference_epochs=spec.reference_epochs)


def pending_jobs(space: SearchSpace, run_dir: Path, spec: AuditSpec) -> list[AuditJob]:
    """The planned retraining not yet in the trials table (failed ones count as done: their reason is recorded)."""
    done = set(load_trials(run_dir, role=AUDIT_ROLE)["trial_id"].astype(str))
    return [job for job in planned_jobs(space, run_dir, spec) if job.trial_id not in done]


def audit_row(space: SearchSpace, run_dir: Path, job: AuditJob, metrics: dict[str, Any],
              history: list[dict[str, Any]], error: BaseException | None) -> dict[str, Any]:
    """The trials-table row of one retraining: a search row of the audited trial's architecture, marked as audit."""
    from explorer.arch import Arch

    row = trial_row(with_epochs(space, job.epochs), run_dir, job.number, job.trial_id, job.params, metrics, history,
                    error, arch=Arch.from_json(job.arch_json))
    return {**row, "role": AUDIT_ROLE, "audit_of": job.number, "audit_reason": job.reason, "seed": job.seed}


def _job_of(config: dict[str, Any]) -> AuditJob:
    return AuditJob(**config["job"])


def _table_callback(space: SearchSpace, run_dir: Path):
    """Writes each retraining's row into the trials table as soon as it ends."""
    from ray.tune import Callback

    class _AuditTable(Callback):
        def __init__(self):
            self.history: dict[str, list[dict[str, Any]]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.history.setdefault(trial.trial_id, []).append(dict(result))

        def _write(self, trial, error: BaseException | None) -> None:
            row = audit_row(space, run_dir, _job_of(trial.config), dict(trial.last_result or {}),
                            self.history.get(trial.trial_id, []), error)
            upsert_rows(run_dir, [row])

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._write(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._write(trial, RuntimeError("the trial's worker failed"))

    return _AuditTable()


def _tuner(space: SearchSpace, run_dir: Path, jobs: list[AuditJob], progress: bool):
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(run_audit_trial, space_data=space.model_dump(mode="json"),
                             cache_dir=str(run_dir / "cache")), trial_resources(space))
    state = run_dir / AUDIT_DIR
    if tune.Tuner.can_restore(state):
        return tune.Tuner.restore(str(state), trainable=trainable, resume_unfinished=True, resume_errored=False,
                                  restart_errored=True)
    callbacks = [_table_callback(space, run_dir)] + ([progress_callback(len(jobs), "audit")] if progress else [])
    return tune.Tuner(
        trainable,
        param_space={"job": tune.grid_search([dataclasses.asdict(j) for j in jobs])},
        tune_config=tune.TuneConfig(max_concurrent_trials=space.budget.concurrency, reuse_actors=True),
        run_config=tune.RunConfig(name=AUDIT_DIR, storage_path=str(run_dir), verbose=0, callbacks=callbacks,
                                  failure_config=tune.FailureConfig(max_failures=space.budget.retries,
                                                                    fail_fast=False)))


def run_audit_jobs(space: SearchSpace, run_dir: Path, spec: AuditSpec, progress: bool = True) -> int:
    """Run the audit's pending retrainings on the Ray this process has started or joined; returns how many ran.

    An audit interrupted earlier is restored first and finishes the jobs it was started with; if the search's front
    has moved since (a resumed search), the jobs the front now asks for run after it."""
    from ray import tune

    state = run_dir / AUDIT_DIR
    ran = 0
    for _ in range(2):  # at most: the restored audit, then what the current front adds
        jobs = pending_jobs(space, run_dir, spec)
        restorable = tune.Tuner.can_restore(state)
        if not restorable:  # killed before Tune saved anything: its jobs are still pending
            shutil.rmtree(state, ignore_errors=True)
            if not jobs:
                break
        results = _tuner(space, run_dir, jobs, progress).fit()
        ran += len(results)
        _write_results(space, run_dir, results)
        shutil.rmtree(state, ignore_errors=True)  # every row is in the table now
    return ran


def _write_results(space: SearchSpace, run_dir: Path, results) -> None:
    """Every finished retraining of a Tune result grid, into the table (the callback wrote them already, unless
    the audit was restored: Tune does not replay callbacks for trials that finished before the interruption)."""
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        history = frame.to_dict("records") if frame is not None else []
        rows.append(audit_row(space, run_dir, _job_of(result.config), dict(result.metrics or {}), history,
                              result.error))
    if rows:
        upsert_rows(run_dir, rows)
