"""Proxy training of one ``Arch`` on one task: a short, seeded run reporting held-out top-1 after every epoch."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import trunc_normal_

from explorer.arch import Arch

# synthvid clips are uint8; this maps [0, 255] to roughly zero mean, unit scale
_MEAN, _STD = 127.5, 64.0


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_frac: float = 0.1
    warmup_steps: int | None = None  # when set, the warm-up length in optimiser steps (overrides warmup_frac)
    # timm's parameter groups: no decay on 1-D parameters (norms, biases) and on what the model's
    # no_weight_decay() names (position embeddings, LRPE tables, global-token embeddings)
    filter_decay: bool = False
    clip_grad: float | None = None  # clip the gradients' global L2 norm to this value
    # None: train the model as built (the releases' init: Linear weights at σ = 0.02). A gain g: every Linear weight
    # that does not start at zero by design is drawn anew at σ = g/√fan_in (see width_scaled_init)
    init_gain: float | None = None
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int = 1  # torch intra-op threads: the trial's CPU share
    device: str = "cpu"  # "cuda" when the trial holds a GPU
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU, where bf16 is slower for these small models)


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    # top-1 in [0, 1] that selection uses: on the validation split when the data has one, else on the test split
    accuracy: float
    train_loss: float
    train_time_s: float  # cumulative time spent training and evaluating, data generation excluded
    test_accuracy: float | None = None  # on the test split, reported beside a validation accuracy


def to_input(clips: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 clips (moved as uint8: a quarter of the bytes) to normalised float on ``device``, channels-last.

    The same values in the channels-last layout, where the CPU's 3-D convolutions are faster: 12–21 % more
    training clips/s for every tiny preset (experiments/proxy_recipe/README.md, training-loop speed).
    """
    x = (clips.to(device, non_blocking=True).float() - _MEAN) / _STD
    return x.contiguous(memory_format=torch.channels_last_3d) if x.dim() == 5 else x


def _autocast(device: str, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.startswith("cuda"))


def check_input(arch: Arch, x: torch.Tensor, num_classes: int) -> None:
    """The spec must describe the clips it is trained on; say which field disagrees."""
    _, c, t, h, w = x.shape
    want = arch.input
    if (want.in_chans, want.frames, want.resolution, want.num_classes) != (c, t, h, num_classes) or h != w:
        raise ValueError(f"arch input {want} does not match the task's clips {c}x{t}x{h}x{w}, {num_classes} classes")


@torch.inference_mode()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128, device: str = "cpu", amp: bool = True
) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        with _autocast(device, amp):
            logits = model(to_input(x[i : i + batch_size], device))
        correct += int((logits.argmax(-1).cpu() == y[i : i + batch_size]).sum())
    return correct / max(len(x), 1)


def _lr_at(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to zero: a multiplier of the base learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * progress))


# σ·√fan_in of the releases' σ = 0.02 at the width it was tuned at (768, ViT-B); with σ = gain/√fan_in a branch
# starts equally strong, relative to the residual stream, at every width
RELEASE_GAIN = 0.02 * 768**0.5


@torch.no_grad()
def width_scaled_init(model: nn.Module, gain: float = RELEASE_GAIN) -> None:
    """Redraw every Linear weight at truncated-normal σ = gain/√fan_in; weights that are exactly zero (zero-init
    parts such as gates and motion projections, there by design) stay zero, biases and norms are left alone.

    Why: σ = 0.02 suits width 768, but at the proxy's widths (16–64) it is 3–7× below 0.55/√fan_in, so every
    residual branch starts near zero and the network begins as *stem → pool → linear head*: on T-rev (6 epochs,
    seeds 0/1) PosMLP-Video reached 54/45 % at σ = 0.02 and 70/75 % with this init (experiments/proxy_recipe).
    """
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.weight.abs().max() > 0:
            trunc_normal_(module.weight, std=gain / module.in_features**0.5)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW through timm's factory, which builds the decay / no-decay parameter groups when ``filter_decay``."""
    from timm.optim import create_optimizer_v2

    # given the module, timm also reads its no_weight_decay(); without filtering, every parameter decays
    params = model if cfg.filter_decay else model.parameters()
    return create_optimizer_v2(
        params, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay, filter_bias_and_bn=cfg.filter_decay
    )


def warmup_length(cfg: TrainConfig, total: int) -> int:
    return (
        max(min(cfg.warmup_steps, total), 1) if cfg.warmup_steps is not None else max(int(total * cfg.warmup_frac), 1)
    )


def train_epochs(model: nn.Module, data, cfg: TrainConfig) -> Iterator[EpochResult]:
    """Train ``model`` on ``data`` (a ``ProxyData``), yielding held-out accuracy after every epoch: validation
    accuracy (and test accuracy beside it) when ``data`` has a validation split, else test accuracy.

    Raises ``FloatingPointError`` when the loss stops being finite, so a search records the trial as failed.
    """
    if hasattr(model, "arch"):  # a VideoBackbone carries its spec: catch a spec/task mismatch up front
        check_input(model.arch, data.train_x, data.num_classes)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    if cfg.init_gain is not None:
        width_scaled_init(model, cfg.init_gain)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(cfg.device)
    opt = make_optimizer(model, cfg)
    n = len(data.train_x)
    steps_per_epoch = max(n // cfg.batch_size, 1)  # drop the ragged last batch (BatchNorm on tiny batches)
    total = steps_per_epoch * cfg.epochs
    warmup = warmup_length(cfg, total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_at(s, total, warmup))
    elapsed = 0.0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            with _autocast(cfg.device, cfg.amp):
                logits = model(to_input(data.train_x[idx], cfg.device))
            loss = F.cross_entropy(
                logits.float(), data.train_y[idx].to(cfg.device), label_smoothing=cfg.label_smoothing
            )
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}, step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            opt.step()
            sched.step()
            loss_sum += loss.item()
        test_acc = evaluate(model, data.test_x, data.test_y, device=cfg.device, amp=cfg.amp)
        val_x = getattr(data, "val_x", None)
        acc = test_acc if val_x is None else evaluate(model, val_x, data.val_y, device=cfg.device, amp=cfg.amp)
        elapsed += time.perf_counter() - start
        yield EpochResult(
            epoch, acc, loss_sum / steps_per_epoch, elapsed, test_accuracy=None if val_x is None else test_acc
        )


def train_arch(
    arch: Arch, data, cfg: TrainConfig, on_epoch: Callable[[EpochResult], None] | None = None
) -> list[EpochResult]:
    """Build ``arch`` (seeded) and train it; ``on_epoch`` sees every epoch's result (a search reports it)."""
    from explorer.models import build

    torch.manual_seed(cfg.seed)
    model = build(arch)
    results = []
    for result in train_epochs(model, data, cfg):
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return results
