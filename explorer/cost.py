"""Cost of a model: exact params, fvcore FLOPs (1 multiply-accumulate = 1 FLOP) and CPU latency.

FLOPs use fvcore's convention, the one of every video paper's GFLOPs column. Latency is the median of repeated
batch-1 forward passes after warm-up with the thread count pinned (and reported, because it changes the answer).
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import torch
import torch.nn as nn

from explorer.arch import Arch


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


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sdpa_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore counts F.scaled_dot_product_attention as 0: Q·Kᵀ and A·V are 2·B·h·Nq·Nk·d MACs."""
    from fvcore.nn.jit_handles import get_shape

    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    v = get_shape(inputs[2])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops(model: nn.Module, inputs: torch.Tensor) -> int:
    """fvcore FLOPs of one forward pass (model put in eval mode for the count, then restored)."""
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, inputs)
        analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flops)
        analysis.unsupported_ops_warnings(False)  # element-wise ops: uncounted by convention
        analysis.uncalled_modules_warnings(False)
        with torch.no_grad():
            return int(analysis.total())
    finally:
        model.train(was_training)


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: nn.Module, inputs: torch.Tensor, threads: int = 1, warmup: int = 3,
                    repeats: int = 10) -> tuple[float, float]:
    """Median and inter-quartile range (ms) of ``repeats`` forward passes after ``warmup`` on the CPU."""
    was_training = model.training
    model.eval()
    times = []
    try:
        with pinned_threads(threads), torch.inference_mode():
            for _ in range(warmup):
                model(inputs)
            for _ in range(repeats):
                start = time.perf_counter()
                model(inputs)
                times.append((time.perf_counter() - start) * 1e3)
    finally:
        model.train(was_training)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return statistics.median(times), quartiles[2] - quartiles[0]


def example_input(arch: Arch, batch: int = 1) -> torch.Tensor:
    i = arch.input
    return torch.randn(batch, i.in_chans, i.frames, i.resolution, i.resolution)


def measure(arch: Arch, model: nn.Module | None = None, latency: bool = True, threads: int = 1,
            repeats: int = 10) -> Cost:
    """Params, GFLOPs and (optionally) batch-1 CPU latency of ``arch``."""
    from explorer.models import build

    model = model if model is not None else build(arch)
    x = example_input(arch)
    flops = count_flops(model, x)
    lat = iqr = None
    if latency:
        lat, iqr = measure_latency(model, x, threads=threads, repeats=repeats)
    return Cost(count_params(model), flops / 1e9, lat, iqr, threads if latency else None, "cpu")
