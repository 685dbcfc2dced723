"""Ray Tune + OptunaSearch orchestration: one search = one self-contained run folder.

``reports/<run>/`` holds ``run.json`` (the space, objectives, timing), ``space.yaml`` (a copy), ``study.db`` (the
Optuna study in SQLite), ``tune/`` (Ray's experiment state), ``archs/<hash>.json``, the trials table
(``trials.parquet`` + ``trials.csv``) and ``index.html``. Ray runs locally in-process unless an address is given.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from explorer.space import (SearchSpace, arch_from_params, costaware_objection, grid_space, load_space, parse_space,
                            sample_arch)

# a 2-core laptop or CI box: Ray must not pre-start workers or phone home (see docs/environment.md)
_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_enable_worker_prestart": "0", "RAY_AIR_NEW_OUTPUT": "0",
            # Tune's experiment state every second (default: adaptive, >= 10 s): a SIGKILLed driver resumes from it
            "TUNE_GLOBAL_CHECKPOINT_S": "1"}
_OBJECT_STORE_BYTES = 200 * 2**20


class Infeasible(RuntimeError):
    """The sampled architecture breaks a constraint; raised before any training."""


# ---------------------------------------------------------------------------------------------------- the trial

_DATA_CACHE: dict[tuple, Any] = {}  # per worker process: reused actors load the task once


# Share of every class's training clips held out for validation: the sampler, ASHA and the front see validation
# accuracy only; test accuracy is recorded beside it and never drives a decision.
VAL_FRACTION = 0.2


def _task_data(space: SearchSpace):
    from explorer.data import load_task, with_validation

    key = space.task.model_dump_json()
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = with_validation(load_task(space.task), VAL_FRACTION, seed=space.task.seed)
    return _DATA_CACHE[key]


def _latency_device(space: SearchSpace) -> str:
    """The device a latency constraint refers to: the one of a latency objective, else the CPU."""
    return next((o.device for o in space.objectives if "latency" in o.metric), "cpu")


def check_constraints(space: SearchSpace, metrics: dict[str, float], arch=None, model=None) -> None:
    """Raise ``Infeasible`` before any training when a sample breaks a limit. ``max_latency_ms`` is checked with the
    latency predictor (a per-block lookup table of the device, filled on demand), not a measurement."""
    limits = {"max_gflops": "gflops", "max_params_m": "params_m"}
    for key, metric in limits.items():
        limit = getattr(space.constraints, key)
        if limit is not None and metrics[metric] > limit:
            raise Infeasible(f"{metric} {metrics[metric]:.4g} exceeds {key} {limit:g}")
    limit = getattr(space.constraints, "max_latency_ms", None)
    if limit is not None and arch is not None:
        from explorer.cost import predict_latency_ms

        device = _latency_device(space)
        predicted = metrics.get("predicted_latency_ms") or predict_latency_ms(
            arch, device=device, model=model, threads=space.budget.cpus_per_trial)
        if predicted > limit:
            raise Infeasible(f"predicted {device} latency {predicted:.4g} ms exceeds max_latency_ms {limit:g}")


def trial_cost(space: SearchSpace, arch, model, threads: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Every cost objective of the space on its device, plus the table's standard columns (params, GFLOPs, CPU
    latency) and a per-part breakdown for the report's cards."""
    from explorer.cost import example_input, flop_breakdown, objective_metrics, params_by_part

    flops = flop_breakdown(model, example_input(arch))
    parts = params_by_part(model)
    metrics: dict[str, float] = {"params_m": sum(parts.values()) / 1e6, "gflops": flops.gflops}
    by_device: dict[str, list[str]] = {}
    for objective in space.objectives:
        if objective.metric not in ("accuracy", *metrics):
            by_device.setdefault(objective.device, []).append(objective.metric)
    if "latency_ms" not in by_device.get("cuda", []):
        by_device.setdefault("cpu", []).append("latency_ms")  # the table always has a CPU latency column
    for device, names in by_device.items():
        metrics.update(objective_metrics(arch, model, sorted(set(names)), device=device, threads=threads, repeats=5))
    model.to("cpu")
    breakdown = {"params_by_part": parts, "flops_by_part": flops.by_part, "flops_by_operator": flops.by_operator}
    return metrics, breakdown


def _cached_reports(cache_dir: Path, arch_hash: str) -> list[dict[str, float]] | None:
    path = cache_dir / f"{arch_hash}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _store_reports(cache_dir: Path, arch_hash: str, reports: list[dict[str, float]]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{arch_hash}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(reports))
    os.replace(tmp, cache_dir / f"{arch_hash}.json")  # atomic: a concurrent reader sees all or nothing


def _node_ip() -> str:
    import ray

    return ray.util.get_node_ip_address() if ray.is_initialized() else "local"


def _attempt(cache_dir: Path, trial_id: str, node_ip: str) -> int:
    """How many times this trial has started (1 = first try): a marker per start, kept in the run folder, so a trial
    retried after its worker died says so in the table (best effort on clusters without a shared file system)."""
    marks = cache_dir / "attempts"
    marks.mkdir(parents=True, exist_ok=True)
    n = 1
    while (marks / f"{trial_id}.{n}").exists():
        n += 1
    (marks / f"{trial_id}.{n}").write_text(node_ip)
    return n


def run_trial(config: dict[str, Any], space_data: dict[str, Any], cache_dir: str) -> None:
    """One Ray Tune trial. A trial that fails in our code (an invalid combination, a constraint, NaN, OOM) reports
    its status and error as its last result instead of raising: the search records it and goes on, and Tune's
    retries (``budget.retries``) are left for what only Ray sees fail: a worker process or node that died."""
    from ray import tune

    started = time.perf_counter()
    space = parse_space(space_data)
    cache = Path(cache_dir)
    node_ip = _node_ip()
    where = {"node_ip": node_ip, "attempt": _attempt(cache, tune.get_context().get_trial_id(), node_ip)}
    try:
        _train_or_replay(config, space, cache, started, where)
    except Exception as err:  # noqa: BLE001 - every failure is recorded with its reason
        # every objective NaN: Optuna records the trial as failed, Tune as finished
        tune.report({**{m: float("nan") for m in space.metric_names}, **where, "trial_status": _status(err),
                     "trial_error": _error_text(err), "trial_time_s": time.perf_counter() - started})


def _trial_device(space: SearchSpace) -> str:
    """CUDA when the trial was given a GPU share (Ray sets CUDA_VISIBLE_DEVICES to it), else the CPU."""
    import torch

    gpus = float(getattr(space.budget, "gpus_per_trial", 0) or 0)
    return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"


def _train_or_replay(config: dict[str, Any], space: SearchSpace, cache: Path, started: float,
                     where: dict[str, Any]) -> None:
    """Build the sampled Arch, measure its cost (before training, so infeasible samples cost nothing and every
    report carries every objective), then train and report after every epoch.

    Samplers propose the same architecture twice in small spaces; training is deterministic per seed, so a trial
    whose Arch hash already finished in this run replays that trial's reports instead of training again (the
    cache lives in the run folder: on a cluster without a shared file system, workers simply train)."""
    import torch
    from ray import tune

    from explorer.models import build
    from explorer.train import TrainConfig, train_epochs

    threads = space.budget.cpus_per_trial
    torch.set_num_threads(threads)
    arch = arch_from_params(space, config)
    cached = _cached_reports(cache, arch.content_hash)
    if cached is not None:
        for report in cached:
            tune.report({**report, **where, "cached": 1.0, "train_time_s": 0.0,
                         "trial_time_s": time.perf_counter() - started})
        return
    torch.manual_seed(space.task.seed)
    model = build(arch)
    cost, breakdown = trial_cost(space, arch, model, threads)
    check_constraints(space, cost, arch, model)
    data = _task_data(space)
    train_cfg = TrainConfig(epochs=space.budget.epochs, batch_size=space.budget.batch_size, lr=space.budget.lr,
                            seed=space.task.seed, threads=threads, device=_trial_device(space))
    reports = []
    for result in train_epochs(model, data, train_cfg):
        reports.append({"accuracy": result.accuracy, "val_accuracy": result.accuracy,
                        "test_accuracy": result.test_accuracy, **cost, "cost_json": json.dumps(breakdown),
                        "train_loss": result.train_loss, "epoch": result.epoch,
                        "train_time_s": result.train_time_s, "cached": 0.0})
        tune.report({**reports[-1], **where, "trial_time_s": time.perf_counter() - started})
    _store_reports(cache, arch.content_hash, reports)


# ---------------------------------------------------------------------------------------------------- the driver


def _define_by_run(space: SearchSpace, trial) -> None:
    """OptunaSearch's space: suggest every choice. An invalid sample must not stop the driver; the trial
    rebuilds the Arch from the same params and fails with the reason, which the table records."""
    from explorer.arch import ArchError

    try:
        sample_arch(space, trial)
    except ArchError:
        pass


def nsga2_population(trials: int) -> int:
    """NSGA-II population sized from the budget: about five generations, never fewer than 4 or more than 50
    individuals (a population as large as the budget would be one random generation)."""
    return max(4, min(50, trials // 5))


def tpe_startup(trials: int) -> int:
    """Random start-up trials of TPE: a quarter of a small budget (TPE's default 10 would be the whole search)."""
    return min(10, max(2, trials // 4))


def costaware_unsupported(space: SearchSpace) -> str | None:
    """Why the costaware sampler cannot serve this space (None: it can). It models accuracy and needs every other
    objective before training."""
    objection = costaware_objection(space.metric_names)
    if objection is not None:
        return objection
    on_cuda = [o.metric for o in space.objectives if "latency" in o.metric and o.device == "cuda"]
    if on_cuda:
        import torch

        if not torch.cuda.is_available():
            return "the driver has no GPU to predict CUDA latency on"
    return None


def predicted_costs(space: SearchSpace, params: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """The costaware sampler's view of a candidate before any training: its content hash and every cost objective
    (latency from the predictor), or None when the parameters build no valid model or break a constraint."""
    from explorer.arch import ArchError
    from explorer.cost import count_flops, count_params, example_input, predict_latency_ms
    from explorer.models import build

    try:
        arch = arch_from_params(space, params)
    except ArchError:
        return None
    model = build(arch)
    metrics: dict[str, float] = {"params_m": count_params(model) / 1e6}
    if "gflops" in space.metric_names or space.constraints.max_gflops is not None:
        metrics["gflops"] = count_flops(model, example_input(arch)) / 1e9
    for objective in space.objectives:
        if "latency" in objective.metric:
            metrics[objective.metric] = predict_latency_ms(arch, objective.device, model=model,
                                                           threads=space.budget.cpus_per_trial)
    try:
        check_constraints(space, metrics, arch, model)
    except Infeasible:
        return None
    return arch.content_hash, metrics


def make_sampler(name: str, seed: int, trials: int, population: int | None = None,
                 grid: dict[str, list[Any]] | None = None, space: SearchSpace | None = None):
    """The Optuna sampler a space names, configured from its budget (shared with experiments/search_efficiency).
    ``costaware`` needs the space: it describes candidates with ``predicted_costs`` before proposing them."""
    import optuna

    if name == "costaware":
        from explorer.costaware import CostAwareSampler

        if space is None:
            raise ValueError("the costaware sampler needs the search space")
        return CostAwareSampler(functools.partial(_define_by_run, space), functools.partial(predicted_costs, space),
                                [(o.metric, o.mode == "max") for o in space.objectives], seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population or nsga2_population(trials), seed=seed)
    # multivariate: the stage choices interact (independent TPE reached 95 % of the true HV in 13/50 seeds, this 50/50);
    # group=True and 5 or 20 start-up trials were no better over 50 seeds (experiments/search_efficiency/README.md)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup(trials), multivariate=True)


def resolve_sampler(space: SearchSpace) -> tuple[str, str | None]:
    """The sampler a search runs and why it differs from the space's: costaware falls back to TPE where it cannot serve
    the space (the space validator already refuses a space that names costaware explicitly and cannot use it)."""
    if space.sampler.name == "costaware":
        reason = costaware_unsupported(space)
        if reason is not None:
            return "tpe", f"sampler costaware cannot serve this space ({reason}); using tpe"
    return space.sampler.name, None


def _sampler(space: SearchSpace):
    name, note = resolve_sampler(space)
    if note:
        print(f"note: {note}")
    grid = grid_space(space) if name == "grid" else None
    return make_sampler(name, space.sampler.seed, space.budget.trials,
                        population=getattr(space.sampler, "population", None), grid=grid, space=space)


def _num_trials(space: SearchSpace) -> int:
    """The budget, or fewer for a grid smaller than it (conditional parameters counted only where they exist)."""
    if space.sampler.name != "grid":
        return space.budget.trials
    from explorer.space import space_size

    return min(space.budget.trials, space_size(space) or space.budget.trials)


def new_run_dir(space: SearchSpace, root: str | Path = "reports") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", space.name)
    run_dir = Path(root) / f"{safe}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = Path(root) / f"{safe}-{stamp}-{n}"
    return run_dir


def _init_ray(address: str | None, num_cpus: int) -> bool:
    """Start (or join) Ray; returns True if this call started it, so the caller shuts it down."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=_OBJECT_STORE_BYTES,
                 log_to_driver=False, logging_level="WARNING")
    return True


def _error_text(error: BaseException | None) -> str:
    """The original exception as 'Type: message' (Ray wraps it with a remote traceback)."""
    if error is None:
        return ""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".strip()


def _status(error: BaseException | None) -> str:
    if error is None:
        return "COMPLETE"
    return "INFEASIBLE" if isinstance(getattr(error, "cause", None) or error, Infeasible) else "FAILED"


_METRIC_COLUMNS = ("accuracy", "val_accuracy", "test_accuracy", "gflops", "params_m", "latency_ms", "predicted_latency_ms", "throughput",
                   "peak_mem_mb", "train_time_s", "trial_time_s", "train_loss")
_HISTORY_KEYS = ("epoch", *_METRIC_COLUMNS)


def _history(rows: list[dict[str, Any]]) -> str:
    """Per-epoch reports as JSON (the report draws training curves from it)."""
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items() if k in _HISTORY_KEYS}
             for row in rows if "epoch" in row]
    return json.dumps(clean)


def trial_row(space: SearchSpace, run_dir: Path, number: int, trial_id: str, config: dict[str, Any],
              metrics: dict[str, Any], history: list[dict[str, Any]], error: BaseException | None) -> dict[str, Any]:
    """One row of the trials table (also writes the trial's Arch JSON under ``archs/``)."""
    status = metrics.get("trial_status") or _status(error)
    epochs = int(metrics.get("epoch", 0) or 0)
    if status == "COMPLETE" and epochs < space.budget.epochs:
        status = "STOPPED"  # the scheduler (ASHA) ended it early: its accuracy is not comparable
    row: dict[str, Any] = {"number": number, "trial_id": trial_id, "status": status,
                           "error": metrics.get("trial_error") or _error_text(error)}
    for key in _METRIC_COLUMNS:
        row[key] = float(metrics[key]) if metrics.get(key) is not None else float("nan")
    row["epochs"] = epochs
    row["cached"] = bool(metrics.get("cached", 0.0))
    row["node_ip"] = str(metrics.get("node_ip", ""))
    row["cost_json"] = str(metrics.get("cost_json", ""))
    row["attempts"] = int(metrics.get("attempt", 1) or 1)
    row["history_json"] = _history(history)
    try:
        arch = arch_from_params(space, config)
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
        rows.append(trial_row(space, run_dir, number, trial_id, dict(result.config or {}), metrics, history,
                              result.error))
    return pd.DataFrame(rows)


def keep_lost_rows(df, run_dir: Path, known_ids: set[str]):
    """``df`` plus the rows of the table already on disk whose trials Tune no longer knows.

    Tune saves its state every second; a driver killed just after a trial finished can lose that trial from
    Tune's state although the trial is in the live table (and in the Optuna study). Keeping its row means a resume
    never loses finished work; the resumed search still runs its budget of trials besides."""
    import pandas as pd

    path = run_dir / "trials.parquet"
    if not path.exists():
        return df
    try:
        old = pd.read_parquet(path)
    except Exception:  # noqa: BLE001 - an unreadable old table: nothing to keep
        return df
    lost = old[~old["trial_id"].astype(str).isin(known_ids)]
    if lost.empty:
        return df
    lost = lost.assign(number=range(len(df), len(df) + len(lost)))
    return pd.concat([df, lost], ignore_index=True)


def write_table(df, run_dir: Path) -> None:
    # params mix ints and strings across rows of one column: parquet needs one type per column
    out = df.copy()
    for col in [c for c in out.columns if c.startswith("param.")]:
        if out[col].map(type).nunique() > 1:
            out[col] = out[col].astype(str)
    # written beside and renamed: the live report (or a user) never reads half a file
    for name, write in (("trials.parquet", lambda f: out.to_parquet(f, index=False)),
                        ("trials.csv", lambda f: out.to_csv(f, index=False))):
        tmp = run_dir / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, run_dir / name)


def _task_label(space: SearchSpace) -> str:
    """``trev/demo`` for a synthvid task, ``ucf101:/data/ucf101`` for a dataset."""
    task = space.task
    return f"{task.dataset.format}:{task.dataset.root}" if task.dataset is not None else f"{task.name}/{task.preset}"


def _write_meta(run_dir: Path, space: SearchSpace, space_path: str, **extra: Any) -> None:
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
        **extra,
    }
    path = run_dir / "run.json"
    if path.exists():  # keep what an earlier write recorded (creation time) and update the rest
        old = json.loads(path.read_text())
        meta = {**meta, **{k: old[k] for k in ("created",) if k in old}}
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, path)


def _scheduler(space: SearchSpace):
    """ASHA early stopping on accuracy (every objective is still reported at every epoch), or None (FIFO)."""
    spec = getattr(space, "scheduler", None)
    if spec is None or spec.name != "asha" or space.budget.epochs < 2:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(metric="accuracy", mode="max", time_attr="training_iteration", max_t=space.budget.epochs,
                         grace_period=min(spec.grace_period, space.budget.epochs),
                         reduction_factor=spec.reduction_factor)


def _resources(space: SearchSpace) -> dict[str, float]:
    gpus = float(getattr(space.budget, "gpus_per_trial", 0) or 0)
    return {"cpu": space.budget.cpus_per_trial, **({"gpu": gpus} if gpus else {})}


def _searcher(space: SearchSpace, run_dir: Path):
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from explorer._searcher import RecordingOptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    points = [dict(p) for p in (getattr(space, "seed_points", None) or [])]
    searcher = RecordingOptunaSearch(space=functools.partial(_define_by_run, space), metric=space.metric_names,
                                     mode=space.modes, sampler=_sampler(space), study_name=run_dir.name,
                                     storage=storage, points_to_evaluate=points or None,
                                     epochs=space.budget.epochs)
    return ConcurrencyLimiter(searcher, max_concurrent=space.budget.concurrency)


def _trainable(space: SearchSpace, run_dir: Path):
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(run_trial, space_data=space.model_dump(mode="json"), cache_dir=str(run_dir / "cache")),
        _resources(space))


def _callbacks(space: SearchSpace, run_dir: Path, progress: bool, live: bool) -> list:
    callbacks = [progress_callback(_num_trials(space))] if progress else []
    if live:
        callbacks.append(live_table_callback(space, run_dir))
    return callbacks


def with_budget(space: SearchSpace, **overrides: Any) -> SearchSpace:
    """The space with some budget fields replaced (command-line flags beat the YAML); None leaves a field alone."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return space
    budget = type(space.budget).model_validate({**space.budget.model_dump(), **changes})  # checked like the YAML
    return space.model_copy(update={"budget": budget})


def run_search(space_path: str | Path | None = None, out_root: str | Path = "reports", address: str | None = None,
               num_cpus: int | None = None, progress: bool = True, run_dir: str | Path | None = None,
               resume: bool = False, live: bool = True, budget: dict[str, Any] | None = None) -> Path:
    """Run a whole search and return the report's path (``<run_dir>/index.html``).

    ``resume=True`` continues the run in ``run_dir`` (killed at any moment, SIGKILL included): Tune restores its
    experiment state (finished trials stay finished, unfinished ones start again), the Optuna study continues in
    ``study.db``, and a restarted trial whose architecture had already finished replays it from the run's cache."""
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run folder")
        run_dir = Path(run_dir).resolve()
        if not (run_dir / "run.json").exists():
            raise FileNotFoundError(f"{run_dir}: not a run folder (no run.json)")
        meta = json.loads((run_dir / "run.json").read_text())
        space = parse_space(meta["space"]) if "space" in meta else load_space(run_dir / "space.yaml")
        space_path = meta.get("space_file", str(run_dir / "space.yaml"))
    else:
        space = with_budget(load_space(space_path), **(budget or {}))
        run_dir = (Path(run_dir) if run_dir else new_run_dir(space, out_root)).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(space_path, run_dir / "space.yaml")
    _write_meta(run_dir, space, str(space_path), wall_time_s=None, state="running")
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)

    import optuna
    from ray import tune

    from explorer.report import write_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    concurrency = space.budget.concurrency
    cpus = num_cpus or max(1, min(os.cpu_count() or 1, concurrency * space.budget.cpus_per_trial))
    we_started_ray = _init_ray(address, cpus)
    try:
        trainable = _trainable(space, run_dir)
        if resume and tune.Tuner.can_restore(run_dir / "tune"):
            # finished trials stay; unfinished and errored (a dead worker) ones run again
            tuner = tune.Tuner.restore(str(run_dir / "tune"), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=True)
        else:  # a fresh run, or a resume of a run killed before Tune saved any state
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=_searcher(space, run_dir), scheduler=_scheduler(space),
                                            num_samples=_num_trials(space), reuse_actors=True),
                run_config=tune.RunConfig(
                    name="tune", storage_path=str(run_dir), verbose=0,
                    callbacks=_callbacks(space, run_dir, progress, live),
                    # retries are for workers or nodes that died: our own failures are reported, not raised
                    failure_config=tune.FailureConfig(max_failures=getattr(space.budget, "retries", 2),
                                                      fail_fast=False)),
            )
        results = tuner.fit()
        table = trials_table(space, results, run_dir)
        table = keep_lost_rows(table, run_dir, set(table["trial_id"].astype(str)))
    finally:
        if we_started_ray:
            import ray

            ray.shutdown()
    write_table(table, run_dir)
    _write_meta(run_dir, space, str(space_path), wall_time_s=round(time.perf_counter() - started, 2),
                concurrency=concurrency, address=address or "local", state="finished")
    return write_report(run_dir)


def live_table_callback(space: SearchSpace, run_dir: Path):
    """A Tune callback that rewrites the trials table and the report (in live mode: the page reloads itself)
    after every finished trial, so a user watches the front grow."""
    from ray.tune import Callback

    class _LiveTable(Callback):
        def __init__(self):
            self.history: dict[str, list[dict[str, Any]]] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.history.setdefault(trial.trial_id, []).append(
                {k: v for k, v in result.items() if k in _HISTORY_KEYS})

        def _refresh(self, trials) -> None:
            import pandas as pd

            rows = []
            for number, trial in enumerate(trials):
                if trial.status not in ("TERMINATED", "ERROR"):
                    continue
                error = RuntimeError("the trial's worker failed") if trial.status == "ERROR" else None
                rows.append(trial_row(space, run_dir, number, trial.trial_id, dict(trial.config),
                                      dict(trial.last_result or {}), self.history.get(trial.trial_id, []), error))
            if not rows:
                return
            try:
                table = keep_lost_rows(pd.DataFrame(rows), run_dir, {t.trial_id for t in trials})
                write_table(table, run_dir)
                from explorer.report import write_report

                write_report(run_dir, live=True)
            except Exception as err:  # noqa: BLE001 - a report glitch must never stop the search
                print(f"warning: live report not refreshed: {type(err).__name__}: {err}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._refresh(trials)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._refresh(trials)

    return _LiveTable()


def progress_callback(total: int):
    """A Tune callback drawing a rich progress bar (built lazily so importing this module needs no Ray)."""
    from ray.tune import Callback

    class _Progress(Callback):
        """A rich progress bar over finished trials, with the best accuracy so far."""

        def __init__(self, total: int):
            self.total, self.done, self.failed, self.best = total, 0, 0, float("nan")
            self._bar = self._task = None

        def __getstate__(self):  # Tune pickles its run config: the live bar stays behind
            return {k: v for k, v in self.__dict__.items() if k not in ("_bar", "_task")}

        def setup(self, **info):
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.description}"), transient=False)
            self._task = self._bar.add_task("starting Ray workers…", total=self.total)
            self._bar.start()

        def _describe(self, note: str) -> None:
            if self._bar is not None:
                best = "—" if self.best != self.best else f"{self.best:.1%}"
                self._bar.update(self._task, completed=self.done,
                                 description=f"best acc {best} · failed {self.failed} · {note}")

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

    return _Progress(total)
