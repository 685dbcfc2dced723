"""A factor study's cells as jobs: every (base, value, seed) cell of ``explorer.space.study.draw_cells`` is one Tune
trial of ``explorer.search.jobs``, and one row of the run's trials table (``role == "study"``) as soon as it ends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from explorer.analysis import STUDY_ROLE, load_trials
from explorer.search.jobs import ROW_BUILDERS
from explorer.search.rundir import trial_row
from explorer.space import SearchSpace
from explorer.space.study import Cell

STUDY_DIR = "study"
CELLS_FILE = "cells.json"


def cell_job(cell: Cell, epochs: int) -> dict[str, Any]:
    return {
        "trial_id": f"cell-{cell.number}",
        "number": cell.number,
        "base": cell.base,
        "value": cell.value,
        "seed": cell.seed,
        "epochs": epochs,
        "arch_json": cell.arch_json,
        "params": cell.params,
        "cost_ratio": cell.cost_ratio,
        "matched": cell.matched,
    }


def write_cells(run_dir: Path, jobs: list[dict[str, Any]]) -> None:
    """The study's cells, fixed when it starts: a resume runs exactly these."""
    (run_dir / CELLS_FILE).write_text(json.dumps(jobs, indent=1))


def read_cells(run_dir: Path) -> list[dict[str, Any]]:
    return json.loads((run_dir / CELLS_FILE).read_text())


def pending_cells(run_dir: Path) -> list[dict[str, Any]]:
    """The cells not yet in the trials table (a failed cell counts as done: its reason is recorded)."""
    done = (
        set(load_trials(run_dir, role=STUDY_ROLE)["trial_id"].astype(str))
        if (run_dir / "trials.parquet").exists()
        else set()
    )
    return [job for job in read_cells(run_dir) if job["trial_id"] not in done]


def _study_row(
    space: SearchSpace,
    run_dir: Path,
    job: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    error: BaseException | None,
) -> dict[str, Any]:
    from explorer.arch import Arch

    row = trial_row(
        space,
        run_dir,
        job["number"],
        job["trial_id"],
        job["params"],
        metrics,
        history,
        error,
        arch=Arch.from_json(job["arch_json"]),
    )
    return {
        **row,
        "role": STUDY_ROLE,
        "base": job["base"],
        "value": str(job["value"]),
        "seed": job["seed"],
        "cost_ratio": job.get("cost_ratio"),
        "matched": bool(job.get("matched", True)),
    }


ROW_BUILDERS[STUDY_ROLE] = _study_row
