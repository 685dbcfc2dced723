"""The search interface: Cost, METRICS, measure, predicted latency, objective_metrics and the full CostReport."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch.nn as nn

from explorer.arch import Arch
from explorer.cost.flops import FlopReport, count_flops, flop_breakdown
from explorer.cost.memory import MemoryStats, peak_memory
from explorer.cost.params import count_params, params_by_part
from explorer.cost.shape_flops import counting_device, counting_input, flop_breakdown_fast, meta_model
from explorer.cost.timing import LatencyStats, check_device, example_input, latency_stats, measure_latency, throughput
from explorer.metrics import DEVICE_BASES

# figures `objective_metrics` can compute on the device it is given: the registry's metrics by their device-free
# names (a search records them as explorer.metrics.device_metric(name, device))
METRICS = ("params_m", "gflops", *DEVICE_BASES)


@dataclass(frozen=True)
class Cost:
    params: int
    gflops: float
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    threads: int | None = None
    device: str = "cpu"

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def metrics(self) -> dict[str, float]:
        """The figures a search reports as objectives."""
        out = {"params_m": self.params_m, "gflops": self.gflops}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params_m": self.params_m}


def measure(
    arch: Arch, model: nn.Module | None = None, latency: bool = True, threads: int = 1, repeats: int = 10
) -> Cost:
    """Params, GFLOPs and (optionally) batch-1 CPU latency of ``arch``."""
    from explorer.models import build

    model = model if model is not None else build(arch)
    x = example_input(arch)
    flops = count_flops(model, x)
    lat = iqr = None
    if latency:
        lat, iqr = measure_latency(model, x, threads=threads, repeats=repeats)
    return Cost(count_params(model), flops / 1e9, lat, iqr, threads if latency else None, "cpu")


def predict_latency_ms(
    arch: Arch, device: str = "cpu", table=None, model: nn.Module | None = None, threads: int = 1
) -> float:
    """Batch-1 latency predicted by the per-block lookup table of ``device`` (``explorer.cost.predictor``); keys missing
    from the table are measured on demand and added to it, so this never fails for a buildable arch."""
    from explorer.cost.predictor import predict  # not at the top: importing explorer.cost leaves the predictor out

    return predict(arch, device=device, table=table, model=model, threads=threads).total_ms


def objective_metrics(
    arch: Arch,
    model: nn.Module | None = None,
    names: list[str] | tuple[str, ...] = METRICS,
    device: str = "cpu",
    threads: int = 1,
    predictor=None,
    repeats: int = 10,
    batch: int = 16,
) -> dict[str, float]:
    """Only the requested figures among ``METRICS``: ``params_m``, ``gflops`` (fvcore, batch 1), ``latency_ms``
    (measured median, batch 1, on ``device``), ``predicted_latency_ms`` (lookup table ``predictor``, a
    ``LatencyTable``; the device's default table when None), ``throughput`` (clips/s at ``batch``) and
    ``peak_mem_mb`` (peak of one inference forward at batch 1)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"objective metrics {unknown} are unknown; expected any of {', '.join(METRICS)}")
    check_device(device)
    from explorer.models import build

    model = model if model is not None else build(arch)
    out: dict[str, float] = {}
    if "params_m" in names:
        out["params_m"] = count_params(model) / 1e6
    if "gflops" in names:
        out["gflops"] = count_flops(model, example_input(arch)) / 1e9
    if "predicted_latency_ms" in names:
        out["predicted_latency_ms"] = predict_latency_ms(arch, device, predictor, model, threads)
    if "latency_ms" in names:
        out["latency_ms"] = latency_stats(model, example_input(arch), device, threads, repeats=repeats).median_ms
    if "throughput" in names:
        out["throughput"] = throughput(model, arch, device, batch, threads)
    if "peak_mem_mb" in names:
        out["peak_mem_mb"] = peak_memory(model, arch, device).inference_mb
    return out


@dataclass
class CostReport:
    """Everything `explorer cost` shows: params (total and per part), FLOPs breakdowns, and the optional latency,
    throughput, memory and predicted-latency figures."""

    arch_hash: str
    params: int
    params_by_part: dict[str, int]
    flops: FlopReport
    latency: LatencyStats | None = None
    throughput: float | None = None
    throughput_batch: int | None = None
    memory: MemoryStats | None = None
    predicted_latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch_hash,
            "params": self.params,
            "params_m": self.params / 1e6,
            "params_by_part": self.params_by_part,
            "gflops": self.flops.gflops,
            "flops_by_part": self.flops.by_part,
            "flops_by_operator": self.flops.by_operator,
            "elementwise_gflops": None if self.flops.elementwise is None else self.flops.elementwise / 1e9,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "throughput_clips_s": self.throughput,
            "throughput_batch": self.throughput_batch,
            "memory": None if self.memory is None else self.memory.to_dict(),
            "predicted_latency_ms": self.predicted_latency_ms,
            **self.extra,
        }


def cost_report(
    arch: Arch,
    model: nn.Module | None = None,
    latency: bool = True,
    device: str = "cpu",
    threads: int = 1,
    repeats: int = 10,
    precision: str = "fp32",
    channels_last: bool = False,
    elementwise: bool = True,
    throughput_batch: int | None = None,
    memory: bool = False,
    predict: bool = False,
    table=None,
    clock: str | None = None,
) -> CostReport:
    """The full cost of ``arch`` (see ``CostReport``); the optional parts only when asked. FLOPs are counted without
    fvcore's trace unless the element-wise figure is asked for (it has handles only fvcore's trace applies); with
    nothing to time, a paper-size model is not even allocated (``explorer.cost.shape_flops``)."""
    from explorer.models import build

    check_device(device)
    runs_for_real = latency or throughput_batch or memory or predict or elementwise
    if model is None:
        model = build(arch) if runs_for_real or counting_device(arch) == "cpu" else meta_model(arch)
    on_meta = next(model.parameters()).is_meta
    x = counting_input(arch, "meta") if on_meta else example_input(arch)
    flops = flop_breakdown(model, x, elementwise=True) if elementwise else flop_breakdown_fast(model, x)
    report = CostReport(arch.content_hash, count_params(model), params_by_part(model), flops)
    if predict:
        report.predicted_latency_ms = predict_latency_ms(arch, device, table, model, threads)
    if latency:
        report.latency = latency_stats(
            model, x, device, threads, repeats=repeats, precision=precision, channels_last=channels_last, clock=clock
        )
    if throughput_batch:
        report.throughput = throughput(
            model, arch, device, throughput_batch, threads, precision=precision, channels_last=channels_last
        )
        report.throughput_batch = throughput_batch
    if memory:
        report.memory = peak_memory(model, arch, device)
    return report
