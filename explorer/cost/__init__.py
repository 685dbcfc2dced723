"""Cost of a model: exact params, fvcore FLOPs (1 multiply-accumulate = 1 FLOP), latency, throughput, peak memory.

The package re-exports the names of its modules, so ``from explorer.cost import X`` works for all of them:
``params`` (counts per part), ``flops`` (fvcore analysis and breakdowns), ``shape_flops`` (fvcore's count
without its trace, for costing many candidates), ``timing`` (latency measurement and its
clocks), ``memory`` (peak memory), ``report`` (the search interface: ``Cost``, ``objective_metrics``,
``cost_report``) and ``predictor`` (the per-device latency lookup table; import it from ``explorer.cost.predictor``,
it is left out here so that importing ``explorer.cost`` does not load it).

Breakdowns name the backbone's parts: ``stem``, ``stages.N`` (stage N with the downsampling layer in front of it),
``global_tokens`` (Mobile-Former's learned token set) and ``head`` (final norm, pooling, classifier).
"""

from explorer.cost.flops import ELEMENTWISE_OPS, FlopReport, count_flops, eval_mode, flop_breakdown, sdpa_flops
from explorer.cost.memory import MemoryStats, peak_memory
from explorer.cost.params import count_params, ordered, params_by_part, part_of
from explorer.cost.report import METRICS, Cost, CostReport, cost_report, measure, objective_metrics, predict_latency_ms
from explorer.cost.shape_flops import REAL_FORWARD_MAX_VOXELS, ShapeCountError, count_flops_fast, fast_costs
from explorer.cost.timing import (
    AMP_DTYPES,
    CLOCKS,
    DEFAULT_CPU_CLOCK,
    DEVICES,
    NOISY_CV,
    REFERENCE_PRESET,
    LatencyStats,
    check_device,
    example_input,
    latency_stats,
    measure_latency,
    measure_reference_ms,
    pinned_threads,
    reference_call,
    reference_ms,
    reference_speed_path,
    resolve_clock,
    summary,
    throughput,
    time_callable,
    to_channels_last,
)

__all__ = [
    "AMP_DTYPES",
    "CLOCKS",
    "DEFAULT_CPU_CLOCK",
    "DEVICES",
    "ELEMENTWISE_OPS",
    "METRICS",
    "NOISY_CV",
    "REAL_FORWARD_MAX_VOXELS",
    "REFERENCE_PRESET",
    "Cost",
    "CostReport",
    "FlopReport",
    "LatencyStats",
    "MemoryStats",
    "ShapeCountError",
    "check_device",
    "cost_report",
    "count_flops",
    "count_flops_fast",
    "count_params",
    "eval_mode",
    "example_input",
    "fast_costs",
    "flop_breakdown",
    "latency_stats",
    "measure",
    "measure_latency",
    "measure_reference_ms",
    "objective_metrics",
    "ordered",
    "params_by_part",
    "part_of",
    "peak_memory",
    "pinned_threads",
    "predict_latency_ms",
    "reference_call",
    "reference_ms",
    "reference_speed_path",
    "resolve_clock",
    "sdpa_flops",
    "summary",
    "throughput",
    "time_callable",
    "to_channels_last",
]
