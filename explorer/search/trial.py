"""What runs inside a Ray worker: one trial (train or replay), its cost, constraints and failure status."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.metrics import device_metric, split_device
from explorer.space import SearchSpace, arch_from_params, parse_space

if TYPE_CHECKING:  # explorer.train imports torch, which a Ray worker loads only when it trains
    from explorer.train import TrainConfig


class Infeasible(RuntimeError):
    """The sampled architecture breaks a constraint; raised before any training. ``constraint`` names the limit and
    ``excess`` is by how much the sample exceeds it, relative to the limit (what Optuna's samplers rank infeasible
    trials by)."""

    def __init__(self, message: str, constraint: str = "", excess: float = 0.0):
        super().__init__(message)
        self.constraint, self.excess = constraint, excess


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
    return next((o.device for o in space.objectives if o.device and "latency" in o.metric), "cpu")


def check_constraints(space: SearchSpace, metrics: dict[str, float], arch=None, model=None) -> None:
    """Raise ``Infeasible`` before any training when a sample breaks a limit. ``max_latency_ms`` is checked with the
    latency predictor (a per-block lookup table of the device, filled on demand), not a measurement."""
    limits = {"max_gflops": "gflops", "max_params_m": "params_m"}
    for key, metric in limits.items():
        limit = getattr(space.constraints, key)
        if limit is not None and metrics[metric] > limit:
            raise Infeasible(
                f"{metric} {metrics[metric]:.4g} exceeds {key} {limit:g}", key, metrics[metric] / limit - 1
            )
    limit = getattr(space.constraints, "max_latency_ms", None)
    if limit is not None and arch is not None:
        from explorer.cost import predict_latency_ms

        device = _latency_device(space)
        predicted = metrics.get(device_metric("predicted_latency_ms", device)) or predict_latency_ms(
            arch, device=device, model=model, threads=space.budget.cpus_per_trial
        )
        if predicted > limit:
            raise Infeasible(
                f"predicted {device} latency {predicted:.4g} ms exceeds max_latency_ms {limit:g}",
                "max_latency_ms",
                predicted / limit - 1,
            )


def trial_cost(space: SearchSpace, arch, model, threads: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Every cost objective of the space on its device, plus the table's standard columns (params, GFLOPs, CPU
    latency) and a per-part breakdown for the report's cards.

    The constraints that need no measurement (params, GFLOPs, predicted latency) are checked first: a sample that
    breaks one raises ``Infeasible`` before anything is timed (a timed infeasible sample was seconds of a worker
    spent on a number nobody uses)."""
    from explorer.cost import example_input, flop_breakdown, objective_metrics, params_by_part

    flops = flop_breakdown(model, example_input(arch))
    parts = params_by_part(model)
    metrics: dict[str, float] = {"params_m": sum(parts.values()) / 1e6, "gflops": flops.gflops}
    check_constraints(space, metrics, arch, model)
    by_device: dict[str, set[str]] = {}
    for objective in space.objectives:
        base, device = split_device(objective.metric)
        if device is not None:
            by_device.setdefault(device, set()).add(base)
    if "latency_ms" not in by_device.get("cuda", ()):  # the CPU latency column, unless the run times on CUDA
        by_device.setdefault("cpu", set()).add("latency_ms")
    for device, names in by_device.items():
        measured = objective_metrics(arch, model, sorted(names), device=device, threads=threads, repeats=5)
        metrics.update({device_metric(base, device): value for base, value in measured.items()})
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
    _guarded(config, parse_space(space_data), Path(cache_dir), seed=None)


def run_audit_trial(config: dict[str, Any], space_data: dict[str, Any], cache_dir: str) -> None:
    """One retraining of the front audit: ``config["job"]`` holds the audited trial's Arch (``arch_json``), the
    training ``seed`` and the ``epochs``; otherwise exactly the search's recipe, failures recorded the same way."""
    from explorer.arch import Arch

    job = config["job"]
    space = with_epochs(parse_space(space_data), int(job["epochs"]))
    _guarded({}, space, Path(cache_dir), seed=int(job["seed"]), arch=Arch.from_json(job["arch_json"]))


def with_epochs(space: SearchSpace, epochs: int) -> SearchSpace:
    """The space with another training length (the audit's reference budget)."""
    if epochs == space.budget.epochs:
        return space
    return space.model_copy(update={"budget": space.budget.model_copy(update={"epochs": epochs})})


def _guarded(config: dict[str, Any], space: SearchSpace, cache: Path, seed: int | None, arch=None) -> None:
    from ray import tune

    started = time.perf_counter()
    node_ip = _node_ip()
    where = {"node_ip": node_ip, "attempt": _attempt(cache, tune.get_context().get_trial_id(), node_ip)}
    try:
        _train_or_replay(config, space, cache, started, where, seed, arch)
    except Exception as err:  # noqa: BLE001 - every failure is recorded with its reason
        # every objective NaN: Optuna records the trial as failed, Tune as finished
        constraint = (
            {"constraint": err.constraint, "constraint_excess": err.excess} if isinstance(err, Infeasible) else {}
        )
        tune.report(
            {
                **{m: float("nan") for m in space.metric_names},
                **where,
                "trial_status": status_of(err),
                "trial_error": error_text(err),
                "trial_time_s": time.perf_counter() - started,
                **constraint,
            }
        )


def trial_resources(space: SearchSpace) -> dict[str, float]:
    """What one trial asks Ray for: its CPUs, and its GPU share when it has one."""
    gpus = float(getattr(space.budget, "gpus_per_trial", 0) or 0)
    return {"cpu": space.budget.cpus_per_trial, **({"gpu": gpus} if gpus else {})}


def _trial_device(space: SearchSpace) -> str:
    """CUDA when the trial was given a GPU share (Ray sets CUDA_VISIBLE_DEVICES to it), else the CPU."""
    import torch

    gpus = float(getattr(space.budget, "gpus_per_trial", 0) or 0)
    return "cuda" if gpus > 0 and torch.cuda.is_available() else "cpu"


def train_config(space: SearchSpace, threads: int, seed: int | None = None) -> TrainConfig:
    """The one recipe every trial of ``space`` is trained with (explorer.train.TrainConfig), from its budget;
    ``seed`` (init and batch order) defaults to the task's."""
    from explorer.train import RELEASE_GAIN, TrainConfig

    budget = space.budget
    return TrainConfig(
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        lr=budget.lr,
        warmup_frac=budget.warmup,
        seed=space.task.seed if seed is None else seed,
        threads=threads,
        device=_trial_device(space),
        init_gain=RELEASE_GAIN if budget.init == "width_scaled" else None,
    )


def _train_or_replay(
    config: dict[str, Any],
    space: SearchSpace,
    cache: Path,
    started: float,
    where: dict[str, Any],
    seed: int | None = None,
    arch=None,
) -> None:
    """Build the sampled Arch, measure its cost (before training, so infeasible samples cost nothing and every
    report carries every objective), then train and report after every epoch.

    Samplers propose the same architecture twice in small spaces; training is deterministic per seed, so a trial
    whose Arch hash already finished in this run replays that trial's reports instead of training again (the
    cache lives in the run folder: on a cluster without a shared file system, workers simply train). An audit's
    retraining (``seed`` and its ``arch`` given) is cached under its seed and length, apart from the search's."""
    import torch
    from ray import tune

    from explorer.models import build
    from explorer.train import train_epochs

    threads = space.budget.cpus_per_trial
    torch.set_num_threads(threads)
    arch = arch if arch is not None else arch_from_params(space, config)
    key = arch.content_hash if seed is None else f"{arch.content_hash}.s{seed}.e{space.budget.epochs}"
    cached = _cached_reports(cache, key)
    if cached is not None:
        for report in cached:
            tune.report(
                {**report, **where, "cached": 1.0, "train_time_s": 0.0, "trial_time_s": time.perf_counter() - started}
            )
        return
    torch.manual_seed(space.task.seed if seed is None else seed)
    model = build(arch)
    cost, breakdown = trial_cost(space, arch, model, threads)  # raises Infeasible before any timing
    data = _task_data(space)
    train_cfg = train_config(space, threads, seed)
    reports = []
    for result in train_epochs(model, data, train_cfg):
        reports.append(
            {
                "accuracy": result.accuracy,
                "val_accuracy": result.accuracy,
                "test_accuracy": result.test_accuracy,
                **cost,
                "cost_json": json.dumps(breakdown),
                "train_loss": result.train_loss,
                "epoch": result.epoch,
                "train_time_s": result.train_time_s,
                "cached": 0.0,
            }
        )
        tune.report({**reports[-1], **where, "trial_time_s": time.perf_counter() - started})
    _store_reports(cache, key, reports)


def error_text(error: BaseException | None) -> str:
    """The original exception as 'Type: message' (Ray wraps it with a remote traceback)."""
    if error is None:
        return ""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}".strip()


def status_of(error: BaseException | None) -> str:
    if error is None:
        return "COMPLETE"
    return "INFEASIBLE" if isinstance(getattr(error, "cause", None) or error, Infeasible) else "FAILED"
