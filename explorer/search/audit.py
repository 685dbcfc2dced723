"""The front audit of a finished search: retrain its best front points and a few random trials with other seeds
(and at a longer budget when asked) through Ray Tune, writing each retraining into the trials table as it ends.

A retraining is one job of ``explorer.search.jobs`` (``explorer.analysis.audit.AuditJob``); Tune's experiment state
lives in ``<run>/audit/`` while it runs, so an interrupted audit resumes like a search: finished retrainings are in
the table, unfinished ones start again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from explorer.analysis import AUDIT_ROLE, load_trials
from explorer.analysis.audit import AuditJob, audit_jobs
from explorer.search.jobs import ROW_BUILDERS, run_jobs
from explorer.search.rundir import trial_row
from explorer.search.trial import with_epochs
from explorer.space import SearchSpace
from explorer.space.schema import AuditSpec

AUDIT_DIR = "audit"


def pending_jobs(space: SearchSpace, run_dir: Path, spec: AuditSpec) -> list[AuditJob]:
    """The retrainings the audit asks for that are not yet in the trials table (failed ones count as done: their
    reason is recorded); the table is read once for both."""
    rows = load_trials(run_dir, role=None)
    audit = rows["role"] == AUDIT_ROLE if "role" in rows.columns else pd.Series(False, index=rows.index)
    done = set(rows.loc[audit, "trial_id"].astype(str))
    objectives = [o.model_dump() for o in space.objectives]
    planned = audit_jobs(
        rows[~audit].reset_index(drop=True),
        objectives,
        front=spec.front,
        random=spec.random,
        seeds=spec.seeds,
        base_seed=space.task.seed,
        epochs=space.budget.epochs,
        reference_epochs=spec.reference_epochs,
    )
    return [job for job in planned if job.trial_id not in done]


def audit_row(
    space: SearchSpace,
    run_dir: Path,
    job: AuditJob,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    error: BaseException | None,
) -> dict[str, Any]:
    """The trials-table row of one retraining: a search row of the audited trial's architecture, marked as audit."""
    from explorer.arch import Arch

    row = trial_row(
        with_epochs(space, job.epochs),
        run_dir,
        job.number,
        job.trial_id,
        job.params,
        metrics,
        history,
        error,
        arch=Arch.from_json(job.arch_json),
    )
    return {**row, "role": AUDIT_ROLE, "audit_of": job.number, "audit_reason": job.reason, "seed": job.seed}


def _audit_row(
    space: SearchSpace,
    run_dir: Path,
    job: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    error: BaseException | None,
) -> dict[str, Any]:
    return audit_row(space, run_dir, AuditJob(**job), metrics, history, error)


ROW_BUILDERS[AUDIT_ROLE] = _audit_row


def run_audit_jobs(space: SearchSpace, run_dir: Path, spec: AuditSpec, progress: bool = True) -> int:
    """Run the audit's pending retrainings on the Ray this process has started or joined; returns how many ran.
    An audit interrupted earlier is restored first; if the search's front has moved since (a resumed search), the
    retrainings the front now asks for run after it."""

    def pending() -> list[dict[str, Any]]:
        return [dataclasses.asdict(job) for job in pending_jobs(space, run_dir, spec)]

    return run_jobs(space, run_dir, pending, AUDIT_ROLE, AUDIT_DIR, progress)
