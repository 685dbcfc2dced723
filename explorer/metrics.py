"""The metrics a search records: one registry (name → direction, label, unit, when it is known) that the space
schema, the samplers, the run folder and the report all read, so a metric means the same everywhere.

``objective``: a space may optimise it; ``before_training``: worked out on the driver before a trial trains (from
the spec, or the per-block latency predictor for ``latency_ms``), so the costaware sampler and the constraints can
use it; ``device``: measured on the objective's device (``cpu`` or ``cuda``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Metric:
    name: str
    mode: Literal["max", "min"]
    label: str
    unit: str
    objective: bool = True
    before_training: bool = False
    device: bool = False


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "max", "accuracy (%)", "%"),  # validation top-1 in a search (what selection uses)
        Metric("test_accuracy", "max", "test accuracy (%)", "%", objective=False),  # shown beside it, never selected on
        Metric("gflops", "min", "GFLOPs", "GFLOPs", before_training=True),  # fvcore, 1 multiply-accumulate = 1 FLOP
        Metric("params_m", "min", "params (M)", "M", before_training=True),
        # measured on the objective's device by the trial; the costaware sampler and max_latency_ms use the predictor's
        # figure for the same device (predicted_latency_ms)
        Metric("latency_ms", "min", "latency (ms)", "ms", before_training=True, device=True),
        Metric("predicted_latency_ms", "min", "predicted latency (ms)", "ms", before_training=True, device=True),
        Metric("throughput", "max", "throughput (clips/s)", "clips/s", device=True),
        Metric("peak_mem_mb", "min", "peak memory (MB)", "MB", device=True),
        Metric("train_time_s", "min", "train time (s)", "s", objective=False),
    )
}

OBJECTIVE_METRICS = tuple(name for name, m in METRICS.items() if m.objective)
# the direction each objective is better in (the search reports all of them for every trial)
METRIC_MODES = {name: METRICS[name].mode for name in OBJECTIVE_METRICS}
# objectives the costaware sampler and the constraints work out on the driver before training
PREDICTABLE_COSTS = tuple(name for name in OBJECTIVE_METRICS if METRICS[name].before_training)
