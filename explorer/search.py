"""Ray Tune + OptunaSearch orchestration: one search = one self-contained run folder.

``reports/<run>/`` holds ``run.json`` (the space, objectives, timing), ``space.yaml`` (a copy), ``study.db`` (the
Optuna study in SQLite), ``tune/`` (Ray's experiment state), ``archs/<hash>.json``, the trials table
(``trials.parquet`` + ``trials.csv``) and ``index.html``. Ray runs locally in-process unless an address is given.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from explorer.space import SearchSpace, arch_from_params, grid_space, load_space, parse_space, sample_arch

# a 2-core laptop or CI box: Ray must not pre-start workers or phone home (see reference/environment.md)
_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_enable_worker_prestart": "0", "RAY_AIR_NEW_OUTPUT": "0"}
_OBJECT_STORE_BYTES = 200 * 2**20


class Infeasible(RuntimeError):
    """The sampled architecture breaks a constraint; raised before any training."""


# ---------------------------------------------------------------------------------------------------- the trial

_DATA_CACHE: dict[tuple, Any] = {}  # per worker process: reused actors load the task once


def _task_data(space: SearchSpace):
    from explorer.data import load_task

    key = (space.task.name, space.task.preset, space.task.seed)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_task(space.task.name, space.task.preset, seed=space.task.seed)
    return _DATA_CACHE[key]


def check_constraints(space: SearchSpace, metrics: dict[str, float]) -> None:
    limits = {"max_gflops": "gflops", "max_params_m": "params_m"}
    for key, metric in limits.items():
        limit = getattr(space.constraints, key)
        if limit is not None and metrics[metric] > limit:
            raise Infeasible(f"{metric} {metrics[metric]:.4g} exceeds {key} {limit:g}")


def _cached_reports(cache_dir: Path, arch_hash: str) -> list[dict[str, float]] | None:
    path = cache_dir / f"{arch_hash}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _store_reports(cache_dir: Path, arch_hash: str, reports: list[dict[str, float]]) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".{arch_hash}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(reports))
    os.replace(tmp, cache_dir / f"{arch_hash}.json")  # atomic: a concurrent reader sees all or nothing


def run_trial(config: dict[str, Any], space_data: dict[str, Any], cache_dir: str) -> None:
    """One Ray Tune trial: build the sampled Arch, measure its cost (before training, so infeasible samples cost
    nothing and every report carries every objective), then train and report after every epoch.

    Samplers propose the same architecture twice in small spaces; training is deterministic per seed, so a trial
    whose Arch hash already finished in this run replays that trial's reports instead of training again (the
    cache lives in the run folder: on a cluster without a shared file system, workers simply train)."""
    import torch
    from ray import tune

    from explorer.cost import measure
    from explorer.models import build
    from explorer.train import TrainConfig, train_epochs

    started = time.perf_counter()
    space = parse_space(space_data)
    threads = space.budget.cpus_per_trial
    torch.set_num_threads(threads)
    arch = arch_from_params(space, config)
    cache = Path(cache_dir)
    cached = _cached_reports(cache, arch.content_hash)
    if cached is not None:
        for report in cached:
            tune.report({**report, "cached": 1.0, "train_time_s": 0.0,
                         "trial_time_s": time.perf_counter() - started})
        return
    torch.manual_seed(space.task.seed)
    model = build(arch)
    cost = measure(arch, model, latency=True, threads=threads, repeats=5).metrics()
    check_constraints(space, cost)
    data = _task_data(space)
    train_cfg = TrainConfig(epochs=space.budget.epochs, batch_size=space.budget.batch_size, lr=space.budget.lr,
                            seed=space.task.seed, threads=threads)
    reports = []
    for result in train_epochs(model, data, train_cfg):
        reports.append({"accuracy": result.accuracy, **cost, "train_loss": result.train_loss, "epoch": result.epoch,
                        "train_time_s": result.train_time_s, "trial_time_s": time.perf_counter() - started,
                        "cached": 0.0})
        tune.report(reports[-1])
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


def make_sampler(name: str, seed: int, trials: int, population: int | None = None,
                 grid: dict[str, list[Any]] | None = None):
    """The Optuna sampler a space names, configured from its budget (shared with experiments/search_efficiency)."""
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid or {}, seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=population or nsga2_population(trials), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup(trials), multivariate=True)


def _sampler(space: SearchSpace):
    grid = grid_space(space) if space.sampler.name == "grid" else None
    return make_sampler(space.sampler.name, space.sampler.seed, space.budget.trials, grid=grid)


def _num_trials(space: SearchSpace) -> int:
    if space.sampler.name != "grid":
        return space.budget.trials
    size = 1
    for values in grid_space(space).values():
        size *= len(values)
    return min(space.budget.trials, size)


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


def trials_table(space: SearchSpace, results, run_dir: Path):
    """One row per trial from a Tune ResultGrid; writes each trial's Arch JSON under ``archs/``."""
    import pandas as pd

    rows = []
    (run_dir / "archs").mkdir(parents=True, exist_ok=True)
    for number, result in enumerate(results):
        config = dict(result.config or {})
        metrics = result.metrics or {}
        row: dict[str, Any] = {"number": number, "trial_id": str(metrics.get("trial_id") or Path(result.path).name),
                               "status": _status(result.error), "error": _error_text(result.error)}
        for key in ("accuracy", "gflops", "params_m", "latency_ms", "train_time_s", "trial_time_s", "train_loss"):
            row[key] = float(metrics[key]) if key in metrics else float("nan")
        row["epochs"] = int(metrics.get("epoch", 0))
        row["cached"] = bool(metrics.get("cached", 0.0))
        try:
            arch = arch_from_params(space, config)
            row["arch_hash"], row["arch_summary"], row["arch_json"] = arch.content_hash, arch.summary(), arch.to_json(None)
            (run_dir / "archs" / f"{arch.content_hash}.json").write_text(arch.to_json())
        except Exception as err:  # a sample whose spec itself is invalid: keep the row, say why
            row["arch_hash"], row["arch_summary"], row["arch_json"] = "", "", ""
            row["status"], row["error"] = "FAILED", row["error"] or f"{type(err).__name__}: {err}"
        for name, value in config.items():
            row[f"param.{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(df, run_dir: Path) -> None:
    # params mix ints and strings across rows of one column: parquet needs one type per column
    out = df.copy()
    for col in [c for c in out.columns if c.startswith("param.")]:
        if out[col].map(type).nunique() > 1:
            out[col] = out[col].astype(str)
    out.to_parquet(run_dir / "trials.parquet", index=False)
    out.to_csv(run_dir / "trials.csv", index=False)


def _write_meta(run_dir: Path, space: SearchSpace, space_path: str, **extra: Any) -> None:
    meta = {
        "name": run_dir.name,
        "space_name": space.name,
        "space_file": space_path,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "objectives": [o.model_dump() for o in space.objectives],
        "task": f"{space.task.name}/{space.task.preset}",
        "budget": space.budget.model_dump(),
        "sampler": space.sampler.model_dump(),
        "constraints": space.constraints.model_dump(),
        **extra,
    }
    path = run_dir / "run.json"
    if path.exists():  # keep what an earlier write recorded (creation time) and update the rest
        meta = {**meta, **{k: v for k, v in json.loads(path.read_text()).items() if k == "created"}}
    path.write_text(json.dumps(meta, indent=2))


def run_search(space_path: str | Path, out_root: str | Path = "reports", address: str | None = None,
               num_cpus: int | None = None, progress: bool = True, run_dir: str | Path | None = None) -> Path:
    """Run a whole search and return the report's path (``<run_dir>/index.html``)."""
    space = load_space(space_path)
    run_dir = Path(run_dir) if run_dir else new_run_dir(space, out_root)
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(space_path, run_dir / "space.yaml")
    _write_meta(run_dir, space, str(space_path), wall_time_s=None)
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)

    import optuna
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from explorer.report import write_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    concurrency = space.budget.concurrency
    cpus = num_cpus or max(1, min(os.cpu_count() or 1, concurrency * space.budget.cpus_per_trial))
    we_started_ray = _init_ray(address, cpus)
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
        searcher = OptunaSearch(space=functools.partial(_define_by_run, space),
                                metric=space.metric_names, mode=space.modes, sampler=_sampler(space),
                                study_name=run_dir.name, storage=storage)
        searcher = ConcurrencyLimiter(searcher, max_concurrent=concurrency)
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, space_data=space.model_dump(mode="json"),
                                 cache_dir=str(run_dir / "cache")),
            {"cpu": space.budget.cpus_per_trial})
        callbacks = [progress_callback(_num_trials(space))] if progress else []
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=_num_trials(space), reuse_actors=True),
            run_config=tune.RunConfig(name="tune", storage_path=str(run_dir), verbose=0, callbacks=callbacks,
                                      failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)),
        )
        results = tuner.fit()
        table = trials_table(space, results, run_dir)
    finally:
        if we_started_ray:
            import ray

            ray.shutdown()
    write_table(table, run_dir)
    _write_meta(run_dir, space, str(space_path), wall_time_s=round(time.perf_counter() - started, 2),
                concurrency=concurrency, address=address or "local")
    return write_report(run_dir)


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
