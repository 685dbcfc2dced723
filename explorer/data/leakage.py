"""Leakage checks for proxy tasks (docs/proxy_tasks.md, leakage checks): bounds of frame-order-agnostic models,
frame shuffling, and the statistical test "is this accuracy above what an order-blind model can reach?".

A temporal task is only a temporal task if a model that ignores frame order cannot beat a known bound:
chance (1/6) on T-ord, where every class has the same multiset of frames, and 1/2 on T-rev, where a class and
its time reversal differ only in order (the *direction accuracy given the primitive*). A generator bug that
lets frames leak the class (e.g. unequal event durations) shows up as an order-blind model beating its bound.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "ORDER_AGNOSTIC_BOUND",
    "direction_accuracy",
    "exceeds_bound",
    "frame_bag_features",
    "frame_bag_probe",
    "frame_sequence_features",
    "frame_sequence_probe",
    "linear_probe",
    "order_agnostic_bound",
    "shuffle_frames",
    "upper_limit",
]

# best accuracy of any frame-order-agnostic model, per synthvid task (None: no order-blind bound, e.g. A)
ORDER_AGNOSTIC_BOUND: dict[str, float | None] = {"trev": 0.5, "tord": 1 / 6, "a": None, "c": None}


def order_agnostic_bound(task: str) -> float | None:
    """The accuracy an order-blind model cannot beat: T-ord 1/6 (its 12-way T-rev bound, 1/2, is on the
    direction bit -- see ``direction_accuracy``)."""
    if task not in ORDER_AGNOSTIC_BOUND:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(ORDER_AGNOSTIC_BOUND)}")
    return ORDER_AGNOSTIC_BOUND[task]


def direction_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """T-rev's pure temporal bit: given the true primitive p, does the model prefer class 2p + d over its reversal
    2p + 1 - d? 0.5 for any order-agnostic model."""
    pair = logits.view(len(logits), -1, 2)[torch.arange(len(labels)), labels // 2]  # (N, 2) logits of the pair
    return float((pair.argmax(-1) == labels % 2).float().mean())


def shuffle_frames(clips: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(N, C, T, H, W) clips with each clip's frames in an independent random order (the frame multiset kept)."""
    n, _, t = clips.shape[:3]
    gen = torch.Generator().manual_seed(seed)
    order = torch.argsort(torch.rand(n, t, generator=gen), dim=1)
    index = order[:, None, :, None, None].expand_as(clips)
    return torch.gather(clips, 2, index)


def upper_limit(bound: float, n: int, sigmas: float = 3.0) -> float:
    """bound + sigmas * binomial standard error on n test clips: what an order-blind model may reach by luck."""
    return bound + sigmas * math.sqrt(bound * (1.0 - bound) / max(n, 1))


def exceeds_bound(accuracy: float, bound: float, n: int, sigmas: float = 3.0) -> bool:
    """True when ``accuracy`` on n clips is significantly above ``bound`` (> bound + 3 sigma): order is used, or,
    for an order-blind model, the task leaks."""
    return accuracy > upper_limit(bound, n, sigmas)


def _change_cells(clips: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(N, T, gh, gw): each frame's absolute difference to the clip's per-pixel median frame (what moved or changed,
    background removed), summed over channels and pooled to a coarse grid."""
    x = clips.float() / 255.0  # (N, C, T, H, W)
    change = (x - x.median(dim=2, keepdim=True).values).abs().sum(dim=1)  # (N, T, H, W)
    return F.adaptive_avg_pool2d(change, grid)


def frame_bag_features(clips: torch.Tensor, grid: tuple[int, int] = (8, 6)) -> torch.Tensor:
    """Order-agnostic clip features: the change cells of ``_change_cells``, then their mean and mean square over
    frames. Every step is a symmetric function of the set of frames, so no feature can depend on their order."""
    cells = _change_cells(clips, grid)
    return torch.cat([cells.mean(dim=1).flatten(1), cells.pow(2).mean(dim=1).flatten(1)], dim=1)


def frame_sequence_features(clips: torch.Tensor, grid: tuple[int, int] = (2, 6)) -> torch.Tensor:
    """The order-*aware* counterpart (a positive control): the same change cells, concatenated frame by frame, so a
    linear model on them sees where *and when* something changed."""
    return _change_cells(clips, grid).flatten(1)


def linear_probe(
    train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, num_classes: int, iterations: int = 200
) -> torch.Tensor:
    """Test-set logits of an L2-regularised softmax regression on standardised features (L-BFGS)."""
    mean, std = train_f.mean(0), train_f.std(0) + 1e-6
    train_f, test_f = (train_f - mean) / std, (test_f - mean) / std
    weight = torch.zeros(train_f.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(train_f @ weight + bias, train_y) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return test_f @ weight + bias


def frame_bag_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int, iterations: int = 200
) -> torch.Tensor:
    """Test-set logits of a softmax regression on ``frame_bag_features`` (L-BFGS, a second or two on the CPU).

    A cheap, strong frame-order-agnostic model: a leak through the frame multiset (unequal event durations, a
    class-dependent nuisance) is found by it within seconds, where a frame-averaging CNN needs many epochs.
    """
    return linear_probe(frame_bag_features(train_x), train_y, frame_bag_features(test_x), num_classes, iterations)


def frame_sequence_probe(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int, iterations: int = 200
) -> torch.Tensor:
    """Test-set logits of a softmax regression on ``frame_sequence_features``: shows that a task's label is in the
    pixels' order at all (T-ord: ~100 % where every order-blind model is at chance)."""
    return linear_probe(
        frame_sequence_features(train_x), train_y, frame_sequence_features(test_x), num_classes, iterations
    )
