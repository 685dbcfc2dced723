"""Parameter counts: the total, the backbone part a name belongs to, and params per part."""

from __future__ import annotations

from collections import defaultdict

import torch.nn as nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def part_of(name: str) -> str:
    """The backbone part a parameter/module name belongs to: ``stem``, ``stages.N`` (``downs.N`` is the
    downsampling in front of stage N, so it counts there), ``global_tokens`` or ``head``."""
    if not name:
        return "model"
    parts = name.split(".")
    if parts[0] in ("stages", "downs") and len(parts) > 1:
        return f"stages.{parts[1]}"
    if parts[0] in ("norm", "head", "head_drop"):
        return "head"
    return parts[0]


def ordered(counts: dict[str, int | float]) -> dict[str, int | float]:
    """stem, stages.0, stages.1, ..., then the rest (global_tokens, head) — the order of the forward pass."""

    def rank(key: str) -> tuple[int, int, str]:
        if key == "stem":
            return (0, 0, key)
        if key.startswith("stages."):
            return (1, int(key.split(".")[1]), key)
        return (2 if key != "head" else 3, 0, key)

    return {k: counts[k] for k in sorted(counts, key=rank)}


def params_by_part(model: nn.Module) -> dict[str, int]:
    """Exact parameter count per backbone part (``part_of``); the values sum to ``count_params(model)``."""
    out: dict[str, int] = defaultdict(int)
    for name, p in model.named_parameters():
        out[part_of(name)] += p.numel()
    return ordered(dict(out))
