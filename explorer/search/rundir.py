"""The run-folder contract: writes and reads run.json, space.yaml, archs/ and the trials table."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from explorer.metrics import DEFAULT_LATENCY, DEVICE_BASES, DEVICE_METRICS, legacy_metric
from explorer.search.samplers import resolve_sampler
from explorer.search.trial import VAL_FRACTION, error_text, status_of
from explorer.space import SearchSpace, arch_from_params, load_space, parse_space


def new_run_dir(space: SearchSpace, root: str | Path = "reports") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", space.name)
    run_dir = Path(root) / f"{safe}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = Path(root) / f"{safe}-{stamp}-{n}"
    return run_dir


# the trials table's metric columns; of DEVICE_METRICS only those a trial measured (and the CPU latency) appear
METRIC_COLUMNS = (
    "accuracy",
    "val_accuracy",
    "test_accuracy",
    "gflops",
    "params_m",
    *DEVICE_METRICS,
    "train_time_s",
    "trial_time_s",
    "train_loss",
)
HISTORY_KEYS = ("epoch", *METRIC_COLUMNS)


def _history(rows: list[dict[str, Any]]) -> str:
    """Per-epoch reports as JSON (the report draws training curves from it)."""
    clean = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items() if k in HISTORY_KEYS}
        for row in rows
        if "epoch" in row
    ]
    return json.dumps(clean)


def trial_row(
    space: SearchSpace,
    run_dir: Path,
    number: int,
    trial_id: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    error: BaseException | None,
    arch=None,
) -> dict[str, Any]:
    """One row of the trials table (also writes the trial's Arch JSON under ``archs/``); ``arch``: the trial's Arch
    when it is known already (an audit row), else rebuilt from ``config``."""
    status = metrics.get("trial_status") or status_of(error)
    epochs = int(metrics.get("epoch", 0) or 0)
    if status == "COMPLETE" and epochs < space.budget.epochs:
        status = "STOPPED"  # the scheduler (ASHA) ended it early: its accuracy is not comparable
    row: dict[str, Any] = {
        "number": number,
        "trial_id": trial_id,
        "status": status,
        "error": metrics.get("trial_error") or error_text(error),
        "role": "search",
    }
    for key in METRIC_COLUMNS:
        if key in DEVICE_METRICS and key not in metrics and key != DEFAULT_LATENCY:
            continue
        row[key] = float(metrics[key]) if metrics.get(key) is not None else float("nan")
    row["epochs"] = epochs
    row["cached"] = bool(metrics.get("cached", 0.0))
    row["node_ip"] = str(metrics.get("node_ip", ""))
    row["cost_json"] = str(metrics.get("cost_json", ""))
    row["attempts"] = int(metrics.get("attempt", 1) or 1)
    # when its last report came (Tune's own timestamp, seconds since the epoch): with trial_time_s it places the
    # trial in time, so a run stopped and resumed across days still adds up its wall time (analysis.busy_seconds)
    row["ended_at"] = float(metrics["timestamp"]) if metrics.get("timestamp") is not None else float("nan")
    row["history_json"] = _history(history)
    try:
        arch = arch if arch is not None else arch_from_params(space, config)
        row["arch_hash"], row["arch_summary"], row["arch_json"] = arch.content_hash, arch.summary(), arch.to_json(None)
        spec = run_dir / "archs" / f"{arch.content_hash}.json"
        if not spec.exists():  # the live table rebuilds every finished row after each trial: write each spec once
            spec.parent.mkdir(parents=True, exist_ok=True)
            spec.write_text(arch.to_json())
    except Exception as err:  # noqa: BLE001 - a sample whose spec itself is invalid: keep the row, say why
        row["arch_hash"], row["arch_summary"], row["arch_json"] = "", "", ""
        row["status"], row["error"] = "FAILED", row["error"] or f"{type(err).__name__}: {err}"
    for name, value in config.items():
        row[f"param.{name}"] = value
    return row


def trials_table(space: SearchSpace, results, run_dir: Path):
    """One row per trial from a Tune ResultGrid (trial creation order)."""
    import pandas as pd

    rows = []
    for number, result in enumerate(results):
        metrics = result.metrics or {}
        frame = result.metrics_dataframe
        history = frame.to_dict("records") if frame is not None else []
        trial_id = str(metrics.get("trial_id") or Path(result.path).name)
        rows.append(
            trial_row(space, run_dir, number, trial_id, dict(result.config or {}), metrics, history, result.error)
        )
    return pd.DataFrame(rows)


def keep_lost_rows(df, run_dir: Path, known_ids: set[str]):
    """``df`` merged with the table already on disk: stable trial numbers, and no finished trial lost.

    A trial keeps the number it had in the table on disk; a trial new to it keeps its place in Tune's list, or is
    numbered after the largest when that number is taken (Tune lists a resumed run's trials in another order,
    which renumbered them). Tune saves its state every second;
    a driver killed just after a trial finished can lose that trial from Tune's state although the trial is in the
    live table (and in the Optuna study): its row is kept, with its number, so a resume never loses finished work
    (the resumed search still runs its budget of trials besides)."""
    import pandas as pd

    path = run_dir / "trials.parquet"
    if not path.exists():
        return df
    try:
        old = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - an unreadable old table: nothing to keep
        return df
    old_ids = old["trial_id"].astype(str)
    numbers = dict(zip(old_ids, old["number"].astype(int)))
    taken = set(numbers.values())
    renumbered = []
    for trial_id, number in zip(df["trial_id"].astype(str), df["number"].astype(int)):
        if trial_id not in numbers:  # a trial new to the table keeps its place in Tune's list unless that is taken
            if number in taken:
                number = max(taken) + 1
            numbers[trial_id] = number
            taken.add(number)
        renumbered.append(numbers[trial_id])
    df = df.assign(number=renumbered)
    lost = old[~old_ids.isin(known_ids)]
    if not lost.empty:
        df = pd.concat([df, lost], ignore_index=True)
    return df.sort_values("number", kind="stable").reset_index(drop=True)


def add_rows(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to the trials table on disk, except those whose trial_id it has already: the first finished
    row of a job stands (a job that finished just before an interruption can be run again by the restored Tune
    state, and then replays from the cache; its original row, with its real times, is kept)."""
    import pandas as pd

    path = run_dir / "trials.parquet"
    new = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_parquet(path)
        new = pd.concat([old, new[~new["trial_id"].astype(str).isin(old["trial_id"].astype(str))]], ignore_index=True)
    write_table(new.sort_values("number", kind="stable").reset_index(drop=True), run_dir)


def write_table(df, run_dir: Path) -> None:
    # params mix ints and strings across rows of one column: parquet needs one type per column
    out = df.copy()
    for col in [c for c in out.columns if c.startswith("param.")]:
        if out[col].map(type).nunique() > 1:
            out[col] = out[col].astype(str)
    # written beside and renamed: the live report (or a user) never reads half a file
    for name, write in (
        ("trials.parquet", lambda f: out.to_parquet(f, index=False)),
        ("trials.csv", lambda f: out.to_csv(f, index=False)),
    ):
        tmp = run_dir / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, run_dir / name)


def _task_label(space: SearchSpace) -> str:
    """``trev/demo`` for a synthvid task, ``ucf101:/data/ucf101`` for a dataset."""
    task = space.task
    return f"{task.dataset.format}:{task.dataset.root}" if task.dataset is not None else f"{task.name}/{task.preset}"


RESOLVED_SPACE = "space.resolved.yaml"


def write_resolved_space(run_dir: Path, space: SearchSpace) -> None:
    """The space as it was searched, in one file: includes merged, command-line budget flags applied, every default
    spelled out. ``space.yaml`` is the user's file, which may include others that are not in the run folder;
    ``explorer search <run>/space.resolved.yaml`` searches the same space again from anywhere."""
    import yaml

    header = (
        "# The space this run searched, resolved: includes merged, command-line budget flags applied, defaults\n"
        "# spelled out. `explorer search` accepts this file as it is; space.yaml is the file as written.\n"
    )
    (run_dir / RESOLVED_SPACE).write_text(header + yaml.safe_dump(space.model_dump(mode="json"), sort_keys=False))


def write_meta(run_dir: Path, space: SearchSpace, space_path: str, **extra: Any) -> None:
    meta = {
        "name": run_dir.name,
        "space_name": space.name,
        "space_file": space_path,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "objectives": [o.model_dump() for o in space.objectives],
        "task": _task_label(space),
        "budget": space.budget.model_dump(),
        "sampler": space.sampler.model_dump(),
        "sampler_used": resolve_sampler(space)[0],
        "constraints": space.constraints.model_dump(),
        "space": space.model_dump(mode="json"),  # resolved (includes merged): --resume needs no other file
        # how trials are trained and selected; a resume must continue with the same recipe (stale_run_reason)
        "recipe": {"validation_fraction": VAL_FRACTION, "init": space.budget.init},
        **extra,
    }
    path = run_dir / "run.json"
    if path.exists():  # keep what an earlier write recorded (creation time, the audit's record), update the rest
        old = json.loads(path.read_text())
        meta = {**meta, **{k: old[k] for k in ("created", "audit") if k in old and k not in extra}}
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, path)


def update_meta(run_dir: Path, **fields: Any) -> None:
    """Set some fields of an existing ``run.json`` and keep the rest."""
    meta = {**read_meta(run_dir), **fields}
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, run_dir / "run.json")


def read_meta(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json``; ``RunFolderError`` (one line naming the file) when it is missing or unreadable."""
    from explorer.analysis import load_run_meta

    return load_run_meta(run_dir)


def stale_run_reason(run_dir: Path, meta: dict[str, Any]) -> str | None:
    """Why a run cannot be resumed by this version, or None. A run written before trials were selected on a
    validation split (and trained with the width-scaled init) has no ``recipe``: new trials would be scored and
    trained differently from its finished ones, so they could not share a front. A run whose objectives name a device
    metric without its device (``latency_ms``, before columns carried it) has a searcher and a study that wait for
    that name, which no trial reports now."""
    legacy = next((o for o in meta.get("objectives", []) if o.get("metric") in DEVICE_BASES), None)
    if legacy is not None and "recipe" in meta:
        now = legacy_metric(legacy["metric"], legacy.get("device"))
        return (
            f"{run_dir}: started by an earlier version, whose objective {legacy['metric']} is called {now} now; "
            f"its study cannot take the new name. Start a new search (`explorer report {run_dir}` still draws this one)"
        )
    if "recipe" in meta:
        return None
    return (
        f"{run_dir}: started by an earlier version, which selected trials on the test clips and trained them with "
        f"the releases' init; new trials would not be comparable with its finished ones. Start a new search "
        f"(`explorer report {run_dir}` still draws this one)"
    )


def missing_study_reason(run_dir: Path) -> str | None:
    """Why a run cannot be resumed because its Optuna study is gone, or None. ``study.db`` holds what the sampler
    learnt from the finished trials; a resume without it would propose as if nothing had run (and Tune's restored
    searcher would fail later), so it is said at once."""
    started = (run_dir / "tune").exists() or (run_dir / "trials.parquet").exists() or (run_dir / "trials.csv").exists()
    if not started or (run_dir / "study.db").exists():
        return None
    return (
        f"{run_dir / 'study.db'}: missing, so the sampler's history of this run is lost and the search cannot "
        f"go on as the same study; start a new search (`explorer report {run_dir}` still draws this one)"
    )


def load_run_space(run_dir: Path, meta: dict[str, Any] | None = None) -> SearchSpace:
    """The resolved space a run searched: from ``run.json`` (``meta`` if already read), else its ``space.yaml``."""
    meta = read_meta(run_dir) if meta is None else meta
    return parse_space(meta["space"]) if "space" in meta else load_space(run_dir / "space.yaml")


def tune_state_saved(state_dir: Path) -> bool:
    """Whether Tune saved enough in ``state_dir`` to resume from. Tune writes ``tuner.pkl`` as a run starts (all
    that ``Tuner.can_restore`` looks for) and the experiment state only at its first checkpoint. Restored from
    ``tuner.pkl`` alone, a run killed in between starts a new experiment without its parameter space (one trial,
    config ``{}``), so such a folder counts as not saved: its jobs are still pending."""
    from ray import tune

    return tune.Tuner.can_restore(state_dir) and any(Path(state_dir).glob("experiment_state-*.json"))
