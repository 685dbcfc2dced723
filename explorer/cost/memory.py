"""Peak memory of an inference forward and a training step: the CPU allocation tracker, MemoryStats, peak_memory."""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from explorer.arch import Arch
from explorer.cost.flops import eval_mode
from explorer.cost.timing import check_device, example_input


class _AllocationTracker(torch.utils._python_dispatch.TorchDispatchMode):
    """Live bytes of the tensors created by the ops run under it (storages that are no op's input, i.e. not views
    of weights or inputs), freed when Python drops their storage. The CPU has no allocator statistics, so this is
    the best-effort CPU figure: it misses an op's internal scratch buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._alive: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._alive.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        inputs = {
            a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in inputs or key in self._alive:
                continue
            self._alive.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key, nbytes)
        return out


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def _step(model: nn.Module, x: torch.Tensor, train: bool) -> None:
    """One inference forward, or one training step's forward + backward (gradients, no optimiser state)."""
    if train:
        model.train()
        model(x).float().logsumexp(dim=-1).mean().backward()
        model.zero_grad(set_to_none=True)
    else:
        with eval_mode(model), torch.inference_mode():
            model(x)


@dataclass(frozen=True)
class MemoryStats:
    """Peak memory (MB, 2^20 bytes) of one inference forward and one training step (forward + backward), with the
    method that produced it (``method``)."""

    inference_mb: float
    train_mb: float
    batch: int
    device: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_memory(model: nn.Module, arch: Arch, device: str = "cpu", batch: int = 1) -> MemoryStats:
    """Peak memory of inference and of a training step at ``batch``. CUDA: ``torch.cuda.max_memory_allocated``
    (everything the caching allocator handed out, weights included). CPU: weights + buffers + the peak of live
    tensors created during the pass (``_AllocationTracker``; best effort, op-internal scratch is not seen)."""
    check_device(device)
    model.to(device)
    x = example_input(arch, batch).to(device)
    was_training = model.training
    figures = []
    try:
        for train in (False, True):
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                _step(model, x, train)
                torch.cuda.synchronize()
                figures.append(torch.cuda.max_memory_allocated() / 2**20)
            else:
                tracker = _AllocationTracker()
                with tracker:
                    _step(model, x, train)
                figures.append((_state_bytes(model) + tracker.peak) / 2**20)
    finally:
        model.train(was_training)
    method = (
        "torch.cuda.max_memory_allocated"
        if device == "cuda"
        else "cpu best effort: weights + buffers + peak live tensors (dispatch-level tracker)"
    )
    return MemoryStats(figures[0], figures[1], batch, device, method)
