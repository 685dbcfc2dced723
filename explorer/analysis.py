"""Analysis of one search run: values in, tables out (no plotting here).

The report only draws what these functions compute, in the spirit of Optuna's `_get_pareto_front_info`: the
Pareto front, run counts and the trials table are plain pandas/numpy objects that tests can check directly.

Run folder contract (written by `explorer.search`):
  run.json        name, space_file, created, objectives [{metric, mode}], task, budget, wall_time_s
  trials.parquet  one row per trial (trials.csv holds the same table as a fallback)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

STATUS_COMPLETE = "COMPLETE"
STATUS_FAILED = "FAILED"
STATUS_INFEASIBLE = "INFEASIBLE"
PARAM_PREFIX = "param."
METRIC_COLUMNS = ("accuracy", "gflops", "params_m", "latency_ms")
# Columns that are text even when every value looks like a number (an arch hash can be all digits, or "1e5...").
TEXT_COLUMNS = ("trial_id", "status", "error", "arch_hash", "arch_summary", "arch_json")

_ROW_BLOCK = 512  # rows compared at once in pareto_mask: bounds memory at _ROW_BLOCK * n * n_objectives bools


@dataclass(frozen=True)
class Objective:
    """One search objective: a metric column and whether it is maximised or minimised."""

    metric: str
    mode: str  # "max" | "min"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"objective {self.metric!r}: mode must be 'max' or 'min', got {self.mode!r}")

    @property
    def maximize(self) -> bool:
        return self.mode == "max"

    def __str__(self) -> str:
        return f"{self.mode} {self.metric}"


ObjectiveLike = Objective | Mapping[str, str] | tuple[str, str]


def parse_objectives(objectives: Iterable[ObjectiveLike]) -> list[Objective]:
    """Objectives from run.json dicts (`{"metric", "mode"}`), `(metric, mode)` pairs or `Objective`s."""
    parsed = []
    for obj in objectives:
        if isinstance(obj, Objective):
            parsed.append(obj)
        elif isinstance(obj, Mapping):
            parsed.append(Objective(str(obj["metric"]), str(obj["mode"])))
        else:
            metric, mode = obj
            parsed.append(Objective(str(metric), str(mode)))
    if not parsed:
        raise ValueError("at least one objective is needed")
    return parsed


def split_objectives(objectives: Iterable[ObjectiveLike]) -> tuple[Objective, list[Objective]]:
    """(the accuracy-like objective, the cost objectives): the first maximised one, and all the others."""
    objs = parse_objectives(objectives)
    maximised = [o for o in objs if o.maximize]
    if not maximised:
        raise ValueError(f"no maximised (accuracy-like) objective among {[str(o) for o in objs]}")
    quality = maximised[0]
    return quality, [o for o in objs if o is not quality]


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `values` (n_points, n_objectives).

    Row i is dominated when some row j is at least as good in every objective and strictly better in one.
    Rows holding a NaN are never on the front and never dominate others; exact duplicates of a non-dominated
    point do not dominate each other, so all copies stay on the front.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (n_points, n_objectives), got shape {v.shape}")
    maximize = np.asarray(maximize, dtype=bool)
    if maximize.shape != (v.shape[1],):
        raise ValueError(f"maximize has {maximize.size} entries for {v.shape[1]} objectives")

    loss = np.where(maximize, -v, v)  # every objective minimised from here on
    valid = ~np.isnan(loss).any(axis=1)
    pts = loss[valid]
    dominated = np.zeros(len(pts), dtype=bool)
    for start in range(0, len(pts), _ROW_BLOCK):
        block = pts[start : start + _ROW_BLOCK, None, :]  # (b, 1, m): candidates
        # others[j] dominates block[i]: others <= block everywhere and < somewhere
        no_worse = (pts[None, :, :] <= block).all(axis=2)
        better = (pts[None, :, :] < block).any(axis=2)
        dominated[start : start + _ROW_BLOCK] = (no_worse & better).any(axis=1)

    mask = np.zeros(len(v), dtype=bool)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def load_run_meta(run_dir: str | Path) -> dict:
    """The run's `run.json` as a dict."""
    path = Path(run_dir) / "run.json"
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def load_trials(run_dir: str | Path) -> pd.DataFrame:
    """The trials table of a run (`trials.parquet`, else `trials.csv`), ordered by trial number.

    Text columns are text whichever file they came from, with "" for a missing error.
    """
    run_dir = Path(run_dir)
    parquet, csv = run_dir / "trials.parquet", run_dir / "trials.csv"
    if parquet.exists():
        df = pd.read_parquet(parquet)
    elif csv.exists():
        df = pd.read_csv(csv, dtype={c: "str" for c in TEXT_COLUMNS})
    else:
        raise FileNotFoundError(f"no trials.parquet or trials.csv in {run_dir}")

    df = df.assign(**{c: df[c].fillna("").astype("str") for c in TEXT_COLUMNS if c in df.columns})
    df = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in METRIC_COLUMNS if c in df.columns})
    if "number" in df.columns:
        df = df.sort_values("number", kind="stable").reset_index(drop=True)
    return df


def param_columns(df: pd.DataFrame) -> list[str]:
    """The sampled search parameters (`param.<name>` columns), in table order."""
    return [c for c in df.columns if c.startswith(PARAM_PREFIX)]


def run_counts(df: pd.DataFrame) -> dict[str, int]:
    """Trials per outcome: complete, failed, infeasible, total."""
    status = df["status"] if "status" in df.columns else pd.Series([], dtype="str")
    return {
        "complete": int((status == STATUS_COMPLETE).sum()),
        "failed": int((status == STATUS_FAILED).sum()),
        "infeasible": int((status == STATUS_INFEASIBLE).sum()),
        "total": len(df),
    }


def _check_columns(df: pd.DataFrame, objs: Sequence[Objective]) -> None:
    missing = [o.metric for o in objs if o.metric not in df.columns]
    if missing:
        raise ValueError(f"trials table has no column for objective(s) {missing}; columns: {list(df.columns)}")


def front_mask(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> np.ndarray:
    """Pareto mask over the COMPLETE trials of `df` (other rows are never on the front), aligned with `df`."""
    objs = parse_objectives(objectives)
    _check_columns(df, objs)
    values = df[[o.metric for o in objs]].to_numpy(dtype=float, na_value=np.nan)
    mask = pareto_mask(values, [o.maximize for o in objs])
    return mask & (df["status"] == STATUS_COMPLETE).to_numpy(dtype=bool)


def pareto_table(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> pd.DataFrame:
    """The COMPLETE trials with an `on_front` column (Pareto-optimal over `objectives`).

    Sorted by the (first) cost objective, best first, ties broken by the quality objective, so that the front
    rows in order trace the speed-accuracy staircase. Pass `[accuracy, cost]` for the 2-D front of one chart.
    """
    objs = parse_objectives(objectives)
    _check_columns(df, objs)
    complete = df[df["status"] == STATUS_COMPLETE].reset_index(drop=True)
    values = complete[[o.metric for o in objs]].to_numpy(dtype=float, na_value=np.nan)
    table = complete.assign(on_front=pareto_mask(values, [o.maximize for o in objs]))

    minimised = [o for o in objs if not o.maximize]
    maximised = [o for o in objs if o.maximize]
    order = (minimised[:1] + maximised[:1]) or objs[:1]
    return table.sort_values(
        [o.metric for o in order],
        ascending=[not o.maximize for o in order],
        kind="stable",
        na_position="last",
    ).reset_index(drop=True)
