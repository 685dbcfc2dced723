"""The metrics a search records: one registry (name → direction, label, unit, device, when it is known) that the
space schema, the samplers, the run folder and the report all read, so a metric means the same everywhere.

A metric measured on a device carries the device in its name (``latency_cpu_ms``, ``latency_cuda_ms``,
``throughput_cuda``, …), so a column of the trials table never holds CPU figures in one run and CUDA figures in
another under one label. ``explorer.cost`` computes them under their device-free base names (``latency_ms`` on the
device it is given); ``device_metric`` and ``split_device`` translate.

``objective``: a space may optimise it; ``before_training``: known on the driver before a trial trains (from the
spec, or the per-block latency predictor for ``predicted_latency_*_ms``), so the costaware sampler and the
constraints can use it without a measurement; ``stand_in``: the before-training figure the costaware sampler uses
for a measured objective (``latency_cpu_ms`` ← ``predicted_latency_cpu_ms``), calibrated against the trials'
measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

DEVICES = ("cpu", "cuda")
# base name -> (direction, label, unit) of the metrics measured on a device
_DEVICE_BASES: dict[str, tuple[Literal["max", "min"], str, str]] = {
    "latency_ms": ("min", "latency (ms)", "ms"),
    "predicted_latency_ms": ("min", "predicted latency (ms)", "ms"),
    "throughput": ("max", "throughput (clips/s)", "clips/s"),
    "peak_mem_mb": ("min", "peak memory (MB)", "MB"),
}
DEVICE_BASES = tuple(_DEVICE_BASES)


@dataclass(frozen=True)
class Metric:
    name: str
    mode: Literal["max", "min"]
    label: str
    unit: str
    objective: bool = True
    before_training: bool = False
    device: Optional[str] = None  # cpu or cuda for a metric measured on a device
    base: Optional[str] = None  # explorer.cost's device-free name of a device metric
    stand_in: Optional[str] = None  # the before-training estimate of a measured objective (see module docstring)


def device_metric(base: str, device: str) -> str:
    """The device-carrying name of a device metric: ``latency_ms`` on cuda is ``latency_cuda_ms``, ``throughput``
    on cpu is ``throughput_cpu`` (the device goes before a unit suffix)."""
    if base not in _DEVICE_BASES or device not in DEVICES:
        raise ValueError(f"no device metric {base!r} on {device!r}")
    stem, unit = base.rsplit("_", 1) if base.endswith(("_ms", "_mb")) else (base, "")
    return f"{stem}_{device}_{unit}" if unit else f"{stem}_{device}"


def split_device(name: str) -> tuple[str, Optional[str]]:
    """(base name, device) of a metric: ``latency_cuda_ms`` → (``latency_ms``, ``cuda``); a metric measured on no
    device → (name, None)."""
    metric = METRICS.get(name)
    return (metric.base, metric.device) if metric is not None and metric.base else (name, None)


def _device_metrics() -> list[Metric]:
    out = []
    for base, (mode, label, unit) in _DEVICE_BASES.items():
        for device in DEVICES:
            stand_in = device_metric("predicted_latency_ms", device) if base == "latency_ms" else None
            out.append(
                Metric(
                    device_metric(base, device),
                    mode,
                    f"{device.upper()} {label}",
                    unit,
                    before_training=base == "predicted_latency_ms",
                    device=device,
                    base=base,
                    stand_in=stand_in,
                )
            )
    return out


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "max", "accuracy (%)", "%"),  # validation top-1 in a search (what selection uses)
        Metric("test_accuracy", "max", "test accuracy (%)", "%", objective=False),  # shown beside it, never selected on
        Metric("gflops", "min", "GFLOPs", "GFLOPs", before_training=True),  # fvcore, 1 multiply-accumulate = 1 FLOP
        Metric("params_m", "min", "params (M)", "M", before_training=True),
        # latency_*_ms: measured by the trial (median of timed runs); predicted_latency_*_ms: the per-block lookup
        # table's sum, known before training (what max_latency_ms is checked against)
        *_device_metrics(),
        Metric("train_time_s", "min", "train time (s)", "s", objective=False),
    )
}

# every metric measured on a device, by its device-carrying name
DEVICE_METRICS = tuple(name for name, m in METRICS.items() if m.device)
OBJECTIVE_METRICS = tuple(name for name, m in METRICS.items() if m.objective)
# the direction each objective is better in (the search reports all of them for every trial)
METRIC_MODES = {name: METRICS[name].mode for name in OBJECTIVE_METRICS}
# objectives the costaware sampler can work out on the driver before training: known then, or measured with a
# before-training stand-in that it calibrates against the measured trials
PREDICTABLE_COSTS = tuple(
    name for name in OBJECTIVE_METRICS if METRICS[name].before_training or METRICS[name].stand_in is not None
)
# every table has a CPU latency column, whatever the objectives
DEFAULT_LATENCY = device_metric("latency_ms", "cpu")


def legacy_metric(name: str, device: Optional[str]) -> str:
    """The registry's name for a metric as run folders written before device-carrying names recorded it
    (``{metric: latency_ms, device: cuda}`` → ``latency_cuda_ms``); other names pass through."""
    return device_metric(name, device or "cpu") if name in _DEVICE_BASES else name
