"""Analysis of one search run: values in, tables out (no plotting here).

The report only draws what these functions compute, in the spirit of Optuna's `_get_pareto_front_info`: the
Pareto front, run counts and the trials table are plain pandas/numpy objects that tests can check directly.

Run folder contract (written by `explorer.search`):
  run.json        name, space_file, created, objectives [{metric, mode}], task, budget, wall_time_s
  trials.parquet  one row per trial (trials.csv holds the same table as a fallback)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.metrics import DEFAULT_LATENCY, DEVICE_BASES, legacy_metric, split_device
from explorer.pareto import HV_REFERENCE, as_loss, hypervolume, pareto_mask

STATUS_COMPLETE = "COMPLETE"
STATUS_FAILED = "FAILED"
STATUS_INFEASIBLE = "INFEASIBLE"
STATUS_STOPPED = "STOPPED"  # ended early by the scheduler (ASHA): pruned in study.db
PARAM_PREFIX = "param."
# a row of the trials table is a search trial, an audit run retraining one (explorer.analysis.audit), or a cell
# of a factor study (explorer.analysis.study)
SEARCH_ROLE, AUDIT_ROLE, STUDY_ROLE = "search", "audit", "study"
QUALITY_METRIC = "accuracy"  # the proxy's top-1: the quality axis whenever it is an objective
# accuracy is what selection used (validation in a search); test_accuracy is shown beside it, never selected on
METRIC_COLUMNS = ("accuracy", "test_accuracy", "gflops", "params_m", DEFAULT_LATENCY)
# Columns that are text even when every value looks like a number (an arch hash can be all digits, or "1e5...").
TEXT_COLUMNS = (
    "trial_id",
    "status",
    "error",
    "arch_hash",
    "arch_summary",
    "arch_json",
    "role",
    "audit_reason",
    "value",
)


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

    @property
    def device(self) -> str | None:
        """Where a device metric (latency, throughput, memory) is measured: part of its name."""
        return split_device(self.metric)[1]

    def __str__(self) -> str:
        return f"{self.mode} {self.metric}"


ObjectiveLike = Objective | Mapping[str, str] | tuple[str, str]


def parse_objectives(objectives: Iterable[ObjectiveLike]) -> list[Objective]:
    """Objectives from run.json dicts (`{"metric", "mode"}`), `(metric, mode)` pairs or `Objective`s. A device
    metric by its base name (``{"metric": "latency_ms", "device": "cuda"}``, as run.json files written before
    device-carrying names have it) is read as its device-carrying name (``latency_cuda_ms``)."""
    parsed = []
    for obj in objectives:
        if isinstance(obj, Objective):
            parsed.append(obj)
        elif isinstance(obj, Mapping):
            device = None if obj.get("device") is None else str(obj["device"])
            parsed.append(Objective(legacy_metric(str(obj["metric"]), device), str(obj["mode"])))
        else:
            metric, mode = obj
            parsed.append(Objective(legacy_metric(str(metric), None), str(mode)))
    if not parsed:
        raise ValueError("at least one objective is needed")
    return parsed


def split_objectives(objectives: Iterable[ObjectiveLike]) -> tuple[Objective, list[Objective]]:
    """(the quality objective, the cost objectives): ``accuracy`` by name when it is an objective (throughput is
    maximised too, and may come first), else the first maximised one; and all the others."""
    objs = parse_objectives(objectives)
    maximised = [o for o in objs if o.maximize]
    if not maximised:
        raise ValueError(f"no maximised (accuracy-like) objective among {[str(o) for o in objs]}")
    quality = next((o for o in maximised if o.metric == QUALITY_METRIC), maximised[0])
    return quality, [o for o in objs if o is not quality]


class RunFolderError(ValueError):
    """A run folder's file is missing or cannot be read: the message is one line naming the file."""


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def load_run_meta(run_dir: str | Path) -> dict:
    """The run's `run.json` as a dict; ``RunFolderError`` when it is missing, not JSON or has no objectives list."""
    path = Path(run_dir) / "run.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{run_dir}: not a run folder (no run.json)") from None
    except (OSError, ValueError) as err:  # unreadable, not UTF-8, not JSON (JSONDecodeError is a ValueError)
        raise RunFolderError(f"{path}: unreadable ({_reason(err)})") from None
    try:
        parse_objectives(meta["objectives"])
    except (KeyError, TypeError, ValueError) as err:
        raise RunFolderError(f"{path}: not a run.json of explorer (its objectives: {_reason(err)})") from None
    return meta


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={c: "str" for c in TEXT_COLUMNS})
    except Exception as err:  # noqa: BLE001 - pyarrow and pandas raise many kinds for a truncated or foreign file
        raise RunFolderError(f"{path}: unreadable ({_reason(err)})") from None


def load_trials(run_dir: str | Path, role: str | None = SEARCH_ROLE) -> pd.DataFrame:
    """The trials table of a run (`trials.parquet`, else `trials.csv`), ordered by trial number: the search's
    trials (``role="search"``, the default), the audit's retrainings (``role="audit"``) or every row (None).

    Text columns are text whichever file they came from, with "" for a missing error. A `trials.parquet` that
    cannot be read falls back to `trials.csv` (the same table, written after it), with a warning naming the
    file; ``RunFolderError`` when neither can be read.
    """
    run_dir = Path(run_dir)
    parquet, csv = run_dir / "trials.parquet", run_dir / "trials.csv"
    if not parquet.exists() and not csv.exists():
        raise RunFolderError(f"{run_dir}: no trials.parquet or trials.csv")
    try:
        df = _read_table(parquet if parquet.exists() else csv)
    except RunFolderError as err:
        if not (parquet.exists() and csv.exists()):
            raise
        df = _read_table(csv)
        logging.getLogger(__name__).warning(f"warning: {err}; read {csv.name} instead")
    if "status" not in df.columns:
        raise RunFolderError(f"{run_dir}: its trials table has no status column (not written by explorer)")
    df = device_named_columns(df, _recorded_devices(run_dir))
    df = df.assign(**{c: df[c].fillna("").astype("str") for c in TEXT_COLUMNS if c in df.columns})
    df = df.assign(**{c: pd.to_numeric(df[c], errors="coerce") for c in METRIC_COLUMNS if c in df.columns})
    if "number" in df.columns:
        df = df.sort_values("number", kind="stable").reset_index(drop=True)
    if role is not None:  # tables written before audits existed have no role column: all search trials
        roles = df["role"].replace("", SEARCH_ROLE) if "role" in df.columns else pd.Series(SEARCH_ROLE, df.index)
        df = df[roles == role].reset_index(drop=True)
    return df


def _recorded_devices(run_dir: Path) -> dict[str, str]:
    """{metric: device} of the objectives in a run's run.json ({} when it cannot be read)."""
    try:
        objectives = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["objectives"]
        return {str(o["metric"]): str(o["device"]) for o in objectives if o.get("device")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def device_named_columns(df: pd.DataFrame, devices: Mapping[str, str]) -> pd.DataFrame:
    """A table written before device-carrying names, with them: its ``latency_ms`` (``throughput``, …) column held
    the figure on the device its objective named (``devices``), the CPU when none did. A row written since (a
    resumed run) already has the new column, which is kept where it has a value."""
    for base in DEVICE_BASES:
        if base not in df.columns:
            continue
        name = legacy_metric(base, devices.get(base))
        if name in df.columns:
            df = df.assign(**{name: df[name].fillna(df[base])}).drop(columns=base)
        else:
            df = df.rename(columns={base: name})
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
        "stopped": int((status == STATUS_STOPPED).sum()),
        "total": len(df),
    }


def search_outcome(df: pd.DataFrame, top: int = 3) -> tuple[str, bool]:
    """A search's one-line outcome and whether any trial finished (complete, or stopped early by the scheduler);
    when none did, the line names the most common errors, so a search that learned nothing does not pass quietly."""
    counts = run_counts(df)
    line = (
        f"{counts['total']} trials: {counts['complete']} complete, {counts['stopped']} stopped early, "
        f"{counts['failed']} failed, {counts['infeasible']} infeasible"
    )
    if counts["complete"] + counts["stopped"]:
        return line, True
    errors = df["error"][df["error"] != ""] if "error" in df.columns else pd.Series([], dtype="str")
    reasons = "; ".join(f"{n}x {reason[:200]}" for reason, n in errors.value_counts().head(top).items())
    return f"no trial finished ({line}){': ' + reasons if reasons else ''}", False


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
        [o.metric for o in order], ascending=[not o.maximize for o in order], kind="stable", na_position="last"
    ).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Hypervolume of a table (the front and hypervolume of arrays: explorer.pareto)
# ---------------------------------------------------------------------------------------------------------------


def normalised_losses(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> np.ndarray:
    """Objective values of `df` as losses in [0, 1]: (v - best) / (worst - best) over the COMPLETE trials.

    An objective with one value only (worst == best) maps to 0. NaN stays NaN, non-complete rows are NaN."""
    objs = parse_objectives(objectives)
    _check_columns(df, objs)
    values = df[[o.metric for o in objs]].to_numpy(dtype=float, na_value=np.nan, copy=True)
    values[(df["status"] != STATUS_COMPLETE).to_numpy()] = np.nan
    loss = as_loss(values, [o.maximize for o in objs])
    with np.errstate(all="ignore"):
        best, worst = np.nanmin(loss, axis=0), np.nanmax(loss, axis=0)
        span = np.where(worst > best, worst - best, 1.0)
        return (loss - best) / span


def hypervolume_history(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> pd.DataFrame:
    """Hypervolume of the trials finished so far, after every trial in trial order (columns: number, hypervolume).

    Normalised as `normalised_losses` (over the whole run, so the curve only rises) with the reference point
    `HV_REFERENCE` on every axis; 1.1^m is the volume of a single point at the best value of every objective."""
    objs = parse_objectives(objectives)
    loss = normalised_losses(df, objs)
    numbers = df["number"].to_numpy() if "number" in df.columns else np.arange(len(df))
    order = np.argsort(numbers, kind="stable")
    ref = [HV_REFERENCE] * len(objs)
    out, front, current = [], np.empty((0, len(objs))), 0.0
    for i in order:
        x = loss[i]
        # only the current front matters (hv(front ∪ {x}) == hv(all so far ∪ {x})), and a point weakly dominated
        # by it adds no volume: recompute only when the front changes
        if not np.isnan(x).any() and not (front <= x).all(axis=1).any():
            pts = np.vstack([front, x])
            front = pts[pareto_mask(pts, [False] * len(objs))]
            current = hypervolume(front, [False] * len(objs), ref)
        out.append(current)
    return pd.DataFrame({"number": numbers[order], "hypervolume": out})


def front_per_cost(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> dict[str, np.ndarray]:
    """For each cost objective, the 2-D front mask of (quality, that cost), aligned with `df`."""
    quality, costs = split_objectives(objectives)
    return {c.metric: front_mask(df, [quality, c]) for c in costs if c.metric in df.columns}


# ---------------------------------------------------------------------------------------------------------------
# Design-space statistics (pycls, Radosavovic et al. 2019/2020)
# ---------------------------------------------------------------------------------------------------------------


def distinct_complete(df: pd.DataFrame) -> np.ndarray:
    """Mask of the COMPLETE trials, each architecture once (its first trial).

    Samplers propose an architecture again in small spaces and the run replays its result: the table keeps both
    rows (the front marks both), but a statistic over the design space (EDFs, front shares, good ranges,
    importance) must count the architecture once, or a replayed point weighs double."""
    complete = (df["status"] == STATUS_COMPLETE).to_numpy(dtype=bool)
    if "arch_hash" not in df.columns:
        return complete
    hashes = df["arch_hash"].astype(str).to_numpy()
    repeat = pd.Series(np.where(complete & (hashes != ""), hashes, None)).duplicated(keep="first").to_numpy()
    # rows without a hash (or not complete) are never repeats of anything: only complete, hashed rows can be
    return complete & ~(repeat & (hashes != ""))


def busy_seconds(rows: pd.DataFrame) -> float | None:
    """Wall time with at least one trial (or study cell) training: the length of the union of the rows' spans
    [ended_at - trial_time_s, ended_at]. Unlike the driver's clock it adds up every leg of a run stopped and
    resumed, and leaves out the gaps between them (a killed trial's lost work is not counted). None unless every
    row carries its end time (rows written before ``ended_at`` existed have none: a sum over the others would
    understate it)."""
    if "ended_at" not in rows.columns or rows.empty:
        return None
    spans = rows[["ended_at", "trial_time_s"]].astype(float)
    if spans.isna().any(axis=None):
        return None
    ends = spans["ended_at"].to_numpy()
    starts = ends - spans["trial_time_s"].to_numpy()
    total, reach = 0.0, -np.inf
    for start, end in sorted(zip(starts, ends)):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
