"""Small pieces every family shares (timm's layers cover the rest)."""

from __future__ import annotations

import torch.nn as nn
from timm.layers import DropPath, trunc_normal_


def init_linear(m: nn.Module) -> None:
    """timm / PySlowFast init used by every released family: truncated-normal (σ = 0.02) Linear weights, zero
    biases; LayerNorm keeps (1, 0). Apply with ``module.apply(init_linear)``."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def drop_path_or_identity(rate: float) -> nn.Module:
    """Stochastic depth at ``rate``; an Identity when it is 0, so eval-time graphs and FLOP counts stay clean."""
    return DropPath(rate) if rate > 0 else nn.Identity()
