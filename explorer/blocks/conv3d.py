"""3-D convolution baseline (and, with ``kernel_t=1``, a frame-wise 2-D model that cannot see frame order).

A MetaFormer-style block: ``x + DropPath(Conv(LN(x)))`` then ``x + DropPath(Mlp(LN(x)))``, where Conv is a
(depthwise by default) ``kernel_t × kernel_s × kernel_s`` convolution with 'same' padding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from pydantic import Field
from timm.layers import Mlp

from explorer.blocks.layers import DepthwiseConv3d, drop_path_or_identity
from explorer.blocks.registry import BlockContext, MixerOptions, OddInt, register_mixer, register_preset


class Conv3dOptions(MixerOptions):
    kernel_t: OddInt = Field(3, ge=1, description="temporal kernel; 1 makes the block frame-wise")
    kernel_s: OddInt = Field(3, ge=1, description="spatial kernel")
    depthwise: bool = Field(True, description="depthwise (groups = channels) or dense convolution")


class Conv3dMixer(nn.Module):
    """Channels-last wrapper around ``nn.Conv3d`` so it composes with the other grid mixers."""

    def __init__(self, dim: int, kernel_t: int, kernel_s: int, depthwise: bool):
        super().__init__()
        kernel = (kernel_t, kernel_s, kernel_s)
        padding = tuple(k // 2 for k in kernel)
        self.conv = (
            DepthwiseConv3d(dim, dim, kernel, padding=padding)
            if depthwise
            else nn.Conv3d(dim, dim, kernel, padding=padding)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        return self.conv(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)


class Conv3dBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, opts: Conv3dOptions):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mixer = Conv3dMixer(dim, opts.kernel_t, opts.kernel_s, opts.depthwise)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))
        self.drop_path = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_mixer("conv3d", Conv3dOptions)
def build_conv3d_block(ctx: BlockContext, opts: Conv3dOptions) -> nn.Module:
    """Depthwise 3-D convolution + MLP (kernel_t=1: frame-wise 2-D baseline)."""
    return Conv3dBlock(ctx.dim, ctx.mlp_ratio, ctx.drop_path, opts)


def _tiny(kernel_t: int) -> dict:
    mixer = {"kind": "conv3d", "options": {"kernel_t": kernel_t}}
    stages = [{"depth": 1, "width": w, "mixer": mixer} for w in (32, 64)]
    return {
        "input": {"frames": 8, "resolution": 32, "in_chans": 3, "num_classes": 12},
        "stages": stages,
        "stem": {"kind": "conv", "patch": 4},
    }


@register_preset("conv3d_tiny")
def conv3d_tiny() -> dict:
    """3-D convolution baseline for 8×32² synthetic clips."""
    return _tiny(3)


@register_preset("frame2d_tiny")
def frame2d_tiny() -> dict:
    """Frame-wise 2-D baseline (temporal kernel 1 everywhere, mean over frames): blind to frame order."""
    return _tiny(1)
