"""fvcore's FLOP count without fvcore's trace: the model runs once under a ``TorchFunctionMode`` that hands every op
fvcore counts to fvcore's own handle, fed the shapes the op saw. For the papers' input sizes the model is built on
PyTorch's ``meta`` device (shapes, no storage: nothing is computed or initialised); for small proxy clips a plain
CPU forward pass is cheaper. Either way nothing is traced, so an architecture is costed in milliseconds where
``count_flops`` (a forward pass under ``torch.jit.trace``) takes tenths of a second, or seconds at 224 px. The
costaware sampler's candidates, the constraints and ``explorer inspect`` use this; a trial still reports fvcore's.

Equal to ``count_flops`` by construction (the same handles on the same shapes); ``tests/test_shape_flops.py``
checks it on every preset and 1,000 random architectures of the unified space. A forward pass that needs tensor
values, not just shapes (none today), raises ``ShapeCountError`` on the meta device; ``fast_costs`` then counts it
in a CPU forward pass.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from explorer.cost.flops import FlopReport, eval_mode, quiet_fvcore_import, sdpa_flops
from explorer.cost.params import count_params, ordered, part_of
from explorer.cost.timing import pinned_threads


class ShapeCountError(RuntimeError):
    """The model's forward could not run on shapes alone (it needs tensor values)."""


@dataclass
class _Value:
    """The piece of ``torch._C.Value`` that fvcore's handles read: a tensor's complete shape, a constant's value, and
    for a list (einsum's operands) the node that built it."""

    value: Any

    def isCompleteTensor(self) -> bool:  # noqa: N802 (torch._C.Value's name)
        return isinstance(self.value, torch.Tensor)

    def type(self) -> "_Value":
        return self

    def sizes(self) -> list[int]:
        return list(self.value.shape)

    def toIValue(self) -> Any:  # noqa: N802
        return self.value

    def node(self) -> "_Value":
        return self

    def inputs(self) -> list["_Value"]:
        return [_Value(v) for v in self.value]


# func -> (fvcore op name, the op's jit inputs from the Python call's (args, kwargs))
_Inputs = Callable[[tuple, dict], Sequence[Any]]


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _linear(a: tuple, k: dict) -> list:
    return [a[0], _arg(a, k, 1, "weight"), _arg(a, k, 2, "bias")]


def _pair(a: tuple, k: dict) -> list:
    return [a[0], _arg(a, k, 1, "other", k.get("mat2"))]


def _rpair(a: tuple, k: dict) -> list:  # Tensor.__rmatmul__(self, other) is other @ self
    return [a[1], a[0]]


def _addmm(a: tuple, k: dict) -> list:
    return [a[0], _arg(a, k, 1, "mat1"), _arg(a, k, 2, "mat2")]


def _einsum(a: tuple, k: dict) -> list:
    operands = a[1] if len(a) == 2 and isinstance(a[1], (list, tuple)) else a[1:]
    return [a[0], list(operands)]


def _conv(transposed: bool) -> _Inputs:
    # aten::_convolution(input, weight, bias, stride, padding, dilation, transposed, ...): 12 inputs, [6] transposed
    return lambda a, k: [a[0], _arg(a, k, 1, "weight"), *[None] * 4, transposed, *[None] * 5]


def _layer_norm(a: tuple, k: dict) -> list:  # aten::layer_norm(input, shape, weight, bias, eps, cudnn)
    return [a[0], _arg(a, k, 1, "normalized_shape"), _arg(a, k, 2, "weight"), _arg(a, k, 3, "bias"), None, None]


def _group_norm(a: tuple, k: dict) -> list:  # aten::group_norm(input, groups, weight, bias, eps, cudnn)
    return [a[0], _arg(a, k, 1, "num_groups"), _arg(a, k, 2, "weight"), _arg(a, k, 3, "bias"), None, None]


def _batch_norm(a: tuple, k: dict) -> list:
    # F.batch_norm(input, mean, var, weight, bias, training, ...) -> aten::batch_norm(input, weight, bias, mean,
    # var, training, momentum, eps, cudnn)
    return [
        a[0],
        _arg(a, k, 3, "weight"),
        _arg(a, k, 4, "bias"),
        a[1],
        a[2],
        bool(_arg(a, k, 5, "training", False)),
        None,
        None,
        None,
    ]


def _instance_norm(a: tuple, k: dict) -> list:
    # F.instance_norm(input, mean, var, weight, bias, ...) -> aten::instance_norm(input, weight, bias, ...)
    return [a[0], _arg(a, k, 3, "weight"), _arg(a, k, 4, "bias")]


def _first(a: tuple, k: dict) -> list:
    return list(a[:3])


@functools.cache
def _ops() -> dict[Any, tuple[str, _Inputs]]:
    t = torch.Tensor
    ops: dict[Any, tuple[str, _Inputs]] = {
        F.linear: ("aten::linear", _linear),
        torch.matmul: ("aten::matmul", _pair),
        t.matmul: ("aten::matmul", _pair),
        t.__matmul__: ("aten::matmul", _pair),
        t.__rmatmul__: ("aten::matmul", _rpair),
        torch.mm: ("aten::mm", _pair),
        t.mm: ("aten::mm", _pair),
        torch.bmm: ("aten::bmm", _pair),
        t.bmm: ("aten::bmm", _pair),
        torch.addmm: ("aten::addmm", _addmm),
        torch.einsum: ("aten::einsum", _einsum),
        F.layer_norm: ("aten::layer_norm", _layer_norm),
        F.group_norm: ("aten::group_norm", _group_norm),
        F.batch_norm: ("aten::batch_norm", _batch_norm),
        F.instance_norm: ("aten::instance_norm", _instance_norm),
        F.adaptive_avg_pool2d: ("aten::adaptive_avg_pool2d", _first),
        F.scaled_dot_product_attention: ("aten::scaled_dot_product_attention", _first),
    }
    for conv in (F.conv1d, F.conv2d, F.conv3d, torch.conv1d, torch.conv2d, torch.conv3d):
        ops[conv] = ("aten::_convolution", _conv(False))
    for conv in (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d):
        ops[conv] = ("aten::_convolution", _conv(True))
    return ops


# ops whose count fvcore leaves to a handle it has no default for: a wrong zero, refused rather than returned
_REFUSED = {F.interpolate: "F.interpolate (fvcore counts upsample_*2d by mode)", F.grid_sample: "F.grid_sample"}


class _Counter(TorchFunctionMode):
    """Sums fvcore's count of every op it sees, also per fvcore operator name and per backbone part (``part``: the
    part whose forward is running, set by hooks; None outside every part)."""

    def __init__(self, handles: dict[str, Callable]):
        super().__init__()
        self.handles = handles
        self.ops = _ops()
        self.total = 0
        self.part: str | None = None
        self.by_part: dict[str, int] = defaultdict(int)
        self.by_operator: dict[str, int] = defaultdict(int)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _REFUSED:
            raise ShapeCountError(f"{_REFUSED[func]} is not counted on shapes")
        op = self.ops.get(func)
        out = func(*args, **kwargs)
        if op is not None and self.handles.get(op[0]) is not None:
            inputs = [_Value(v) for v in op[1](args, kwargs)]
            outputs = [_Value(o) for o in (out if isinstance(out, tuple) else (out,))]
            counts = self.handles[op[0]](inputs, outputs)
            # fvcore's naming: a handle's Counter keys (conv), else the op without its namespace (linear)
            counts = counts if hasattr(counts, "items") else {op[0].split("::", 1)[1]: counts}
            for name, flops in counts.items():
                self.total += int(flops)
                self.by_operator[name] += int(flops)
                if self.part is not None:
                    self.by_part[self.part] += int(flops)
        return out


@functools.cache
def _handles() -> dict[str, Callable]:
    quiet_fvcore_import()
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS  # fvcore's defaults are public only as this table

    return {**_DEFAULT_SUPPORTED_OPS, "aten::scaled_dot_product_attention": sdpa_flops}


# Up to this many input voxels (frames x height x width) a real forward pass is cheaper than the meta device's per-op
# Python overhead (measured on the proxy's 8x32x32 clips: a real build and forward about 5x faster than fvcore's
# trace, the meta device slower than it); above, as for the papers' 16x224x224, the meta device wins by 10x.
REAL_FORWARD_MAX_VOXELS = 64 * 64 * 16


def meta_model(arch: Any) -> torch.nn.Module:
    """The architecture's model on the meta device: shapes and no storage, nothing initialised."""
    from explorer.models import build

    with torch.device("meta"):
        return build(arch)


def _count(model: torch.nn.Module, inputs: torch.Tensor, parts: dict[str, torch.nn.Module] | None = None) -> _Counter:
    counter = _Counter(_handles())
    try:
        with eval_mode(model), torch.no_grad(), _part_hooks(counter, parts or {}), counter:
            model(inputs)
    except (NotImplementedError, RuntimeError) as err:
        if not inputs.is_meta:
            raise
        # an op that needs values (e.g. .item()) cannot run on meta tensors
        raise ShapeCountError(f"the forward pass needs tensor values: {err}") from err
    return counter


@contextmanager
def _part_hooks(counter: _Counter, parts: dict[str, torch.nn.Module]) -> Iterator[None]:
    """While a part's forward runs, the counter credits that part."""

    def enter(part: str):
        return lambda module, args: setattr(counter, "part", part)

    def leave(module, args, out) -> None:
        counter.part = None

    handles = [
        h
        for part, module in parts.items()
        for h in (module.register_forward_pre_hook(enter(part)), module.register_forward_hook(leave))
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _backbone_parts(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The modules ``flop_breakdown`` sums per part, by the part they belong to: the model's children and the
    entries of ``stages`` and ``downs`` (never nested in one another, so one part runs at a time)."""
    parts: dict[str, torch.nn.Module] = {}
    for name, child in model.named_children():
        if name in ("stages", "downs"):
            parts.update({f"{name}.{i}": m for i, m in child.named_children()})
        else:
            parts[name] = child
    return parts


def count_flops_fast(model: torch.nn.Module, inputs: torch.Tensor) -> int:
    """fvcore's FLOPs of one forward pass of ``model`` on ``inputs`` (eval mode, as ``count_flops``), on real or meta
    tensors alike, without a trace."""
    return _count(model, inputs).total


def flop_breakdown_fast(model: torch.nn.Module, inputs: torch.Tensor) -> FlopReport:
    """``flop_breakdown`` (total, per part, per operator; no element-wise figure) without a trace."""
    parts = _backbone_parts(model)
    counter = _count(model, inputs, parts)
    by_part = dict.fromkeys((part_of(name) for name in parts), 0)
    for name, flops in counter.by_part.items():
        by_part[part_of(name)] += flops
    kept = {k: v for k, v in ordered(by_part).items() if v or k in ("stem", "head")}
    return FlopReport(counter.total, kept, {k: v for k, v in counter.by_operator.items() if v})


def counting_device(arch: Any) -> str:
    """Where counting ``arch`` is cheapest: ``cpu`` for clips up to ``REAL_FORWARD_MAX_VOXELS``, else ``meta``."""
    i = arch.input
    return "cpu" if i.frames * i.resolution**2 <= REAL_FORWARD_MAX_VOXELS else "meta"


def counting_input(arch: Any, device: str) -> torch.Tensor:
    i = arch.input
    return torch.randn(1, i.in_chans, i.frames, i.resolution, i.resolution, device=device)


@dataclass(frozen=True)
class _StageCost:
    flops: int
    params: int
    out: tuple[int, ...]  # the shape the stage hands on
    tokens: tuple[int, ...] | None  # the global tokens' shape after it (Mobile-Former), else None


# Stages recur across the architectures a space samples (300 unified-space samples hold 754 stages, 338 of them
# distinct), so each distinct stage is built and counted once per process. Keyed by everything its cost depends on:
# its spec, its token grid, the width and shapes that enter it, and whether it is the first stage.
_STAGE_MEMO: dict[str, _StageCost] = {}
STAGE_MEMO_MAX = 20_000


def _stage_key(arch: Any, i: int, grid: tuple, x: torch.Tensor, z: torch.Tensor | None) -> str:
    from explorer.arch import to_dict
    from explorer.models import stem_width

    in_width = arch.stages[i - 1].width if i else stem_width(arch)
    return json.dumps(
        [i == 0, in_width, list(grid), list(x.shape), None if z is None else list(z.shape), to_dict(arch.stages[i])],
        sort_keys=True,
        default=str,
    )


def _count_stage(
    arch: Any, i: int, grid: tuple, rates: list[float], x: torch.Tensor, z: torch.Tensor | None
) -> _StageCost:
    from explorer.models import make_stage, run_stage

    down, stage = make_stage(arch, i, grid, rates)
    both = torch.nn.ModuleList([down, stage])
    counter = _Counter(_handles())
    with eval_mode(both), torch.no_grad(), counter:
        y, _, z = run_stage(down, stage, x, None, z)
    return _StageCost(counter.total, count_params(both), tuple(y.shape), None if z is None else tuple(z.shape))


def staged_costs(arch: Any) -> tuple[int, int]:
    """(fvcore FLOPs, parameter count) of ``arch`` counted part by part in CPU forward passes: the stem, global
    tokens and head of a model built without stages, then each stage alone on an input of the shape the one before
    it hands on, memoised (``_STAGE_MEMO``). Equal to counting the whole model: no op's count depends on the values
    it sees, and the stage's output shape is all the next stage needs."""
    from explorer.arch import stage_grids
    from explorer.models import VideoBackbone, drop_path_rates

    shell = VideoBackbone(arch, stages=False)
    counter = _Counter(_handles())
    flops = params = 0
    with eval_mode(shell), torch.no_grad():
        with counter:
            x = shell.stem(counting_input(arch, "cpu"))
        z = shell.global_tokens(1) if shell.global_tokens is not None else None
        for i, (grid, rates) in enumerate(zip(stage_grids(arch), drop_path_rates(arch))):
            key = _stage_key(arch, i, grid, x, z)
            cost = _STAGE_MEMO.get(key)
            if cost is None:
                cost = _count_stage(arch, i, grid, rates, x, z)
                if len(_STAGE_MEMO) >= STAGE_MEMO_MAX:
                    _STAGE_MEMO.clear()
                _STAGE_MEMO[key] = cost
            flops, params = flops + cost.flops, params + cost.params
            x = torch.randn(cost.out)
            z = None if cost.tokens is None else torch.randn(cost.tokens)
        with counter:  # no stage's token state: pooling with token sizes is element-wise, which fvcore leaves out
            shell.forward_head(x, tokens=z)
    return flops + counter.total, params + count_params(shell)


def fast_costs(arch: Any, device: str | None = None) -> tuple[int, int]:
    """(fvcore FLOPs, parameter count) of an architecture without fvcore's trace; ``device`` ``"meta"`` or
    ``"cpu"`` forces where the forward pass runs (default: ``counting_device``). On the CPU the model is counted
    stage by stage (``staged_costs``). A model whose forward pass needs tensor values is counted on the CPU instead
    of on the meta device."""
    with pinned_threads(1):  # small models: more threads cost more in handovers than they save
        if (device or counting_device(arch)) == "meta":
            try:
                model = meta_model(arch)
                return count_flops_fast(model, counting_input(arch, "meta")), count_params(model)
            except ShapeCountError:
                pass
        return staged_costs(arch)
