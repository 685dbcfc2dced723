"""fvcore FLOPs: the analysis with our op handles (SDPA, element-wise), count_flops and the per-part breakdown.

FLOPs use fvcore's convention, the one of every video paper's GFLOPs column, with handles for the work-carrying ops
fvcore leaves at 0 (``F.scaled_dot_product_attention``). Element-wise ops (add, mul, GELU, softmax, ...) are uncounted
by that convention; ``flop_breakdown(elementwise=True)`` reports them as a separate figure (one FLOP per output
element).
"""

from __future__ import annotations

import math
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from explorer.cost.params import ordered, part_of


def sdpa_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore counts F.scaled_dot_product_attention as 0: Q·Kᵀ and A·V are B·h·Nq·Nk·(d_qk + d_v) MACs."""
    from fvcore.nn.jit_handles import get_shape

    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    v = get_shape(inputs[2])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _output_numel(inputs: list[Any], outputs: list[Any]) -> int:
    """One FLOP per output element: the 'elementwise' figure for add/mul/activations/softmax/reductions."""
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(outputs[0])
    return math.prod(shape) if shape else 1


def _input_numel(inputs: list[Any], outputs: list[Any]) -> int:
    """One FLOP per input element, for reductions (mean, sum) whose output is smaller than the work."""
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(inputs[0])
    return math.prod(shape) if shape else 1


# element-wise ops our blocks emit (uncounted by the papers' convention, so kept out of `gflops`)
ELEMENTWISE_OPS: dict[str, Callable[[list[Any], list[Any]], int]] = {
    **{
        f"aten::{op}": _output_numel
        for op in (
            "add",
            "add_",
            "sub",
            "sub_",
            "rsub",
            "mul",
            "mul_",
            "div",
            "div_",
            "neg",
            "exp",
            "log",
            "sqrt",
            "rsqrt",
            "pow",
            "gelu",
            "gelu_",
            "relu",
            "relu_",
            "hardtanh",
            "hardtanh_",
            "sigmoid",
            "sigmoid_",
            "silu",
            "silu_",
            "hardswish",
            "hardswish_",
            "hardsigmoid",
            "tanh",
            "softmax",
            "log_softmax",
            "clamp",
            "clamp_",
            "clamp_min",
            "maximum",
            "minimum",
            "where",
            "abs",
            "addcmul",
            "lerp",
        )
    },
    **{f"aten::{op}": _input_numel for op in ("mean", "sum", "amax", "max", "norm", "linalg_vector_norm")},
}


def quiet_fvcore_import() -> None:
    """Call before importing fvcore: its jit handles module scripts functions at import, which torch now calls
    deprecated, a warning users can do nothing about."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)


def _analysis(model: nn.Module, inputs: Any, elementwise: bool = False):
    quiet_fvcore_import()
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flops)
    if elementwise:
        analysis.set_op_handle(**ELEMENTWISE_OPS)
    analysis.unsupported_ops_warnings(False)  # element-wise ops: uncounted by convention
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, inputs: Any) -> int:
    """fvcore FLOPs of one forward pass (model put in eval mode for the count, then restored)."""
    with eval_mode(model), torch.no_grad():
        return int(_analysis(model, inputs).total())


@dataclass(frozen=True)
class FlopReport:
    """fvcore FLOPs of one forward pass: ``total`` (MACs, the papers' convention), ``by_part`` (stem, stages.N,
    head; sums to total), ``by_operator`` (fvcore op names, e.g. ``conv``, ``linear``, ``scaled_dot_product_attention``)
    and, when asked, ``elementwise`` (one FLOP per element of add/mul/activation/softmax outputs, not in ``total``)."""

    total: int
    by_part: dict[str, int]
    by_operator: dict[str, int]
    elementwise: int | None = None

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    def top_operators(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.by_operator.items(), key=lambda kv: -kv[1])[:n]


def flop_breakdown(model: nn.Module, inputs: Any, elementwise: bool = False) -> FlopReport:
    """Total, per-part and per-operator fvcore FLOPs; with ``elementwise`` also the element-wise figure (a second
    trace with the element-wise handles added, so the headline count stays the papers' convention)."""
    with eval_mode(model), torch.no_grad():
        analysis = _analysis(model, inputs)
        by_module = analysis.by_module()
        total = int(analysis.total())
        by_operator = {k: int(v) for k, v in analysis.by_operator().items() if v}
        ew = None
        if elementwise:
            ew = int(_analysis(model, inputs, elementwise=True).total()) - total
    by_part: dict[str, int] = defaultdict(int)
    for name, flops in by_module.items():
        # top-level children only: by_module also lists every ancestor, which would count flops twice
        if name and "." not in name or (name.count(".") == 1 and name.split(".")[0] in ("stages", "downs")):
            if name in ("stages", "downs"):
                continue
            by_part[part_of(name)] += int(flops)
    parts = {k: v for k, v in ordered(dict(by_part)).items() if v or k in ("stem", "head")}
    return FlopReport(total, parts, by_operator, ew)
