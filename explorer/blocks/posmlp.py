"""PosMLP-Video (Zhou et al., IJCV 2024): positional gating units with learnable relative-position token mixing.

Spec: ``docs/seed_blocks.md`` (PosMLP-Video). Read top-down: options → LRPE operator → gating units
(PoSGU spatial-window, PoTGU temporal, PoSTGU joint window) → positional gated layer → blocks.

``Layer(x) = W2 · GU(GELU(W1 · LN(x)))`` with W1: C→2C, W2: C→C, and no FFN (``mlp_ratio`` of the stage is not
used by this mixer). Arrangements of the gated layers in a block:

- ``parallel`` (released): ``x + DropPath(Layer_S(x) + Layer_T(x))``;
- ``spatial_temporal`` / ``temporal_spatial`` (serial): ``x ← x + DropPath(Layer_A(x))`` then the same with
  Layer_B, each with its own residual;
- ``joint``: ``x + DropPath(Layer_ST(x))`` with PoSTGU over T_w×w×w windows.

Only ``parallel`` is in the released code; the other three are our reading of the paper's abstract (three
factorised block types and a joint unit) — the spec marks them INFERRED.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn
from einops import rearrange
from pydantic import Field

from explorer.blocks.layers import drop_path_or_identity, init_linear
from explorer.blocks.registry import (
    DIVIDES_WIDTH,
    BlockContext,
    InvalidCombination,
    MixerOptions,
    register_mixer,
    register_preset,
)


class PosMLPOptions(MixerOptions):
    arrangement: Literal["parallel", "spatial_temporal", "temporal_spatial", "joint"] = Field(
        "parallel",
        description="parallel = released PoSGU ‖ PoTGU with one residual; spatial_temporal / "
        "temporal_spatial = serial gated layers, each with its own residual; joint = PoSTGU",
    )
    groups: int = Field(
        8,
        ge=1,
        description="channel groups g (interleaved: channel c uses table column c mod g)",
        json_schema_extra=DIVIDES_WIDTH,
    )
    window: int = Field(14, ge=1, description="spatial window w of PoSGU/PoSTGU (clamped to the stage's size)")
    temporal_window: Optional[int] = Field(
        None, ge=1, description="PoSTGU temporal window T_w (joint only; must divide T'); None = all T' frames"
    )


def relative_index(coords: torch.Tensor, extents: tuple[int, ...]) -> torch.Tensor:
    """Row of the bias table for every token pair: mixed radix over (p_m − p_n + e − 1) with radix 2e − 1.

    For a w×w window this is Swin's ``(Δh + w − 1)(2w − 1) + (Δw + w − 1)``; for time, ``Δt + T − 1``.
    """
    rel = coords[:, None, :] - coords[None, :, :]  # (N, N, d): p_m − p_n
    index = torch.zeros(rel.shape[:2], dtype=torch.long)
    for axis, extent in enumerate(extents):
        index = index * (2 * extent - 1) + rel[..., axis] + extent - 1
    return index


class LearnedRelativePositionMixing(nn.Module):
    """LRPE: ``y[m, c] = Σ_n P_{s(c)}[m, n] · u[n, c] + β[m]`` with ``P_s[m, n] = B[idx(p_m − p_n), s]``.

    B ∈ R^{R×g} and β ∈ R^N start at zero (as released: every block is the identity at init).
    """

    def __init__(self, extents: tuple[int, ...], groups: int):
        super().__init__()
        grids = torch.meshgrid(*[torch.arange(e) for e in extents], indexing="ij")
        coords = torch.stack([g.flatten() for g in grids], dim=-1)  # row-major token order
        self.groups = groups
        self.num_tokens = coords.shape[0]
        rows = 1
        for e in extents:
            rows *= 2 * e - 1
        self.register_buffer("index", relative_index(coords, extents), persistent=False)
        self.table = nn.Parameter(torch.zeros(rows, groups))
        self.token_bias = nn.Parameter(torch.zeros(self.num_tokens))

    def no_weight_decay(self) -> set[str]:
        # a position-encoding table: decaying it pulls every relative offset towards "no mixing"
        return {"table"}

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # (B', N, C)
        b, n, c = u.shape
        g = self.groups
        p = self.table[self.index].permute(2, 0, 1)  # P[s, m, n]
        # One GEMM per group, (N × N) @ (N × B'·C/g): g large matmuls instead of B'·g tiny ones. The long operand
        # on the right is the release's own product (outputs equal to the bit) and the CPU's batched GEMM runs it
        # faster at proxy shapes (PoTGU's forward product: 6.9 instead of 13 ms in a profile of five training steps,
        # experiments/block_speed/README.md); fvcore counts B'·C·N² either way.
        u = u.reshape(b, n, c // g, g).permute(3, 1, 0, 2).reshape(g, n, b * (c // g))
        y = torch.matmul(p, u).reshape(g, n, b, c // g)
        return y.permute(2, 1, 3, 0).reshape(b, n, c) + self.token_bias[:, None]


class PoSGU(nn.Module):
    """Spatial gating unit: LRPE inside non-overlapping w×w windows of each frame, gating ``u`` by ``v``."""

    def __init__(self, dim: int, window: int, groups: int):
        super().__init__()
        self.window = window
        self.mix = LearnedRelativePositionMixing((window, window), groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, 2C) -> (B, T, H, W, C)
        u, v = z.chunk(2, dim=-1)
        b, t, h, w, _ = u.shape
        win = self.window
        u = rearrange(u, "b t (nh wh) (nw ww) c -> (b t nh nw) (wh ww) c", wh=win, ww=win)
        u = self.mix(u)
        u = rearrange(u, "(b t nh nw) (wh ww) c -> b t (nh wh) (nw ww) c", b=b, t=t, nh=h // win, wh=win)
        return u * v


class PoTGU(nn.Module):
    """Temporal gating unit: LRPE over all T frames at each spatial location."""

    def __init__(self, dim: int, frames: int, groups: int):
        super().__init__()
        self.mix = LearnedRelativePositionMixing((frames,), groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u, v = z.chunk(2, dim=-1)
        b, t, h, w, _ = u.shape
        u = rearrange(u, "b t h w c -> (b h w) t c")
        u = rearrange(self.mix(u), "(b h w) t c -> b t h w c", b=b, h=h, w=w)
        return u * v


class PoSTGU(nn.Module):
    """Joint spatio-temporal gating unit: LRPE inside non-overlapping T_w×w×w windows, table
    (2T_w−1)(2w−1)²×g, cost (T_w·w²)²·C per window."""

    def __init__(self, dim: int, temporal_window: int, window: int, groups: int):
        super().__init__()
        self.temporal_window, self.window = temporal_window, window
        self.mix = LearnedRelativePositionMixing((temporal_window, window, window), groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u, v = z.chunk(2, dim=-1)
        b, t, h, w, _ = u.shape
        tw, win = self.temporal_window, self.window
        u = rearrange(u, "b (nt tw) (nh wh) (nw ww) c -> (b nt nh nw) (tw wh ww) c", tw=tw, wh=win, ww=win)
        u = rearrange(
            self.mix(u),
            "(b nt nh nw) (tw wh ww) c -> b (nt tw) (nh wh) (nw ww) c",
            b=b,
            nt=t // tw,
            nh=h // win,
            tw=tw,
            wh=win,
        )
        return u * v


class PositionalGatedLayer(nn.Module):
    """``W2 · GU(GELU(W1 · LN(x)))`` with W1: C→2C and W2: C→C (the video code's fixed ratio 2)."""

    def __init__(self, dim: int, unit: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * dim)
        self.act = nn.GELU()
        self.unit = unit
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.unit(self.act(self.fc1(self.norm(x)))))


class PosMLPParallelBlock(nn.Module):
    """The released PosMLP-Video block: ``x + DropPath(Layer_S(x) + Layer_T(x))``."""

    def __init__(self, dim: int, grid: tuple[int, int, int], window: int, groups: int, drop_path: float = 0.0):
        super().__init__()
        frames = grid[0]
        self.spatial = PositionalGatedLayer(dim, PoSGU(dim, window, groups))
        self.temporal = PositionalGatedLayer(dim, PoTGU(dim, frames, groups))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.spatial(x) + self.temporal(x))


class PosMLPSerialBlock(nn.Module):
    """Serial arrangement: ``x ← x + DropPath(Layer_A(x))``, ``x ← x + DropPath(Layer_B(x))``."""

    def __init__(
        self,
        dim: int,
        grid: tuple[int, int, int],
        window: int,
        groups: int,
        spatial_first: bool,
        drop_path: float = 0.0,
    ):
        super().__init__()
        spatial = PositionalGatedLayer(dim, PoSGU(dim, window, groups))
        temporal = PositionalGatedLayer(dim, PoTGU(dim, grid[0], groups))
        self.first, self.second = (spatial, temporal) if spatial_first else (temporal, spatial)
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.first(x))
        return x + self.drop_path(self.second(x))


class PosMLPJointBlock(nn.Module):
    """Joint arrangement: ``x + DropPath(Layer_ST(x))`` with a PoSTGU gated layer."""

    def __init__(self, dim: int, temporal_window: int, window: int, groups: int, drop_path: float = 0.0):
        super().__init__()
        self.joint = PositionalGatedLayer(dim, PoSTGU(dim, temporal_window, window, groups))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.joint(x))


def stage_window(window: int, grid: tuple[int, int, int]) -> int:
    """The window actually used: clamped to the frame, and it must tile it exactly."""
    _, h, w = grid
    win = min(window, h, w)
    if h % win or w % win:
        raise InvalidCombination(f"posmlp window {win} does not tile the {h}x{w} grid")
    return win


def stage_temporal_window(temporal_window: int | None, frames: int) -> int:
    tw = frames if temporal_window is None else temporal_window
    if frames % tw:
        raise InvalidCombination(f"posmlp temporal_window {tw} does not divide the {frames} frames of the stage")
    return tw


@register_mixer("posmlp", PosMLPOptions)
def build_posmlp_block(ctx: BlockContext, opts: PosMLPOptions) -> nn.Module:
    """PosMLP-Video positional gating units (PoSGU, PoTGU, PoSTGU) in parallel, serial or joint blocks."""
    if ctx.dim % opts.groups:
        raise InvalidCombination(f"posmlp groups {opts.groups} do not divide width {ctx.dim}")
    win = stage_window(opts.window, ctx.grid)
    if opts.arrangement == "parallel":
        return PosMLPParallelBlock(ctx.dim, ctx.grid, win, opts.groups, ctx.drop_path)
    if opts.arrangement == "joint":
        tw = stage_temporal_window(opts.temporal_window, ctx.grid[0])
        return PosMLPJointBlock(ctx.dim, tw, win, opts.groups, ctx.drop_path)
    spatial_first = opts.arrangement == "spatial_temporal"
    return PosMLPSerialBlock(ctx.dim, ctx.grid, win, opts.groups, spatial_first, ctx.drop_path)


# ---------------------------------------------------------------------------------------------------- presets


def posmlp_video_spec(frames: int, resolution: int, num_classes: int, dims, depths, windows, groups) -> dict:
    stages = [
        {"depth": d, "width": c, "mixer": {"kind": "posmlp", "options": {"groups": g, "window": w}}}
        for d, c, w, g in zip(depths, dims, windows, groups)
    ]
    return {
        "input": {"frames": frames, "resolution": resolution, "in_chans": 3, "num_classes": num_classes},
        "stem": {"kind": "conv", "patch": 4, "temporal_kernel": 1, "temporal_stride": 1},
        "stages": stages,
    }


@register_preset("posmlp_video_72d")
def posmlp_video_72d() -> dict:
    """The released 72-dim PosMLP-Video (SSV1 config, 16×224², 174 classes): 13,509,537 params."""
    return posmlp_video_spec(16, 224, 174, (72, 144, 288, 576), (3, 4, 9, 3), (14, 14, 14, 7), (8, 16, 32, 64))


@register_preset("posmlp_tiny")
def posmlp_tiny() -> dict:
    """Two small stages for 8×32² synthetic clips."""
    return posmlp_video_spec(8, 32, 12, (32, 64), (1, 1), (8, 4), (4, 8))
