"""MorphMLP (Zhang et al., ECCV 2022): chunked token-mixing FCs that grow the receptive field stage by stage.

Spec: ``docs/seed_blocks.md`` (MorphMLP). Read top-down: options → chunked FC operator →
MorphFC_s (height/width/channel branches + clip-level re-weighting; the stage-4 full-frame "S2" form) →
MorphFC_t → block.

Notation: C channels, chunk length L (``chunk_len``; it also sets the L channel groups of S = C/L channels, so each
chunk FC is exactly C×C), T' frames of the stage, G temporal groups of S_t = C/G channels.

The released block is ::

    x_t = x + FC_t(LN_t(x))                      # no drop-path
    x'  = x + DropPath(FC_s(LN_1(x_t)))          # residual base is x, not x_t (``spatial_residual="input"``)
    out = x' + DropPath(MLP(LN_2(x')))           # MLP: C → rC → C, r = the stage's mlp_ratio (released: 3)
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn
from pydantic import Field
from timm.layers import Mlp

from explorer.blocks.layers import drop_path_or_identity, init_linear
from explorer.blocks.registry import (
    DIVIDES_WIDTH,
    BlockContext,
    InvalidCombination,
    MixerOptions,
    register_mixer,
    register_preset,
)


class MorphMLPOptions(MixerOptions):
    chunk_len: int = Field(
        14,
        ge=1,
        description="chunk length L: tokens per chunk along a row (width branch) and a column (height branch), "
        "also the number of channel groups; must divide the width C and the H·W tokens of a frame. "
        "L = H·W selects the two-branch full-frame form of the released stage 4",
        json_schema_extra=DIVIDES_WIDTH,
    )
    temporal_groups: Optional[int] = Field(
        None,
        ge=1,
        description="temporal groups G of MorphFC_t: each location mixes a T'·C/G vector (G contiguous channel "
        "groups over all T' frames); None = G = T' so that the temporal FC is C×C (16-frame release)",
        json_schema_extra=DIVIDES_WIDTH,
    )
    reweight: bool = Field(
        True,
        description="clip-level re-weighting of the spatial branches (softmax over branches per channel); "
        "False sums the branches",
    )
    spatial_residual: Literal["input", "temporal"] = Field(
        "input",
        description="what the spatial branch is added to: 'input' = the block input x (released code), "
        "'temporal' = x_t = x + FC_t(LN(x)) (a purely sequential temporal→spatial block)",
    )


class ChunkFC(nn.Module):
    """One Linear C→C shared by every (chunk of L consecutive tokens, channel group) pair of a frame.

    The frame's H·W tokens are flattened in ``order`` (``row``: raster, ``column``: H↔W transposed first) and cut
    into H·W/L chunks; channels into L contiguous groups of S = C/L. The vector of a (chunk q, group k) pair is
    ordered token-in-chunk major, channel-in-group minor, ``v[i·S + j] = x[token qL + i, channel kS + j]``, and
    ``W`` maps it to the vector that is scattered back the same way.
    """

    def __init__(self, dim: int, chunk_len: int, order: Literal["row", "column"] = "row"):
        super().__init__()
        self.chunk_len = chunk_len
        self.order = order
        self.fc = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B', H, W, C) -> (B', H, W, C)
        if self.order == "row":
            return self._mix_rows(x)
        b, h, w, c = x.shape
        length, s = self.chunk_len, c // self.chunk_len
        # Column order in one gather each way where the chunks align with columns (every released stage).
        if h % length == 0:  # a chunk is an L-long piece of a column
            x = x.reshape(b, h // length, length, w, length, s)  # (B', h-chunk, i, w, group, S)
            perm, inverse = (0, 3, 1, 4, 2, 5), (0, 2, 4, 1, 3, 5)
        elif length % h == 0:  # a chunk is L/H full columns
            m = length // h
            x = x.reshape(b, h, w // m, m, length, s)  # (B', h, w-chunk, column-in-chunk, group, S)
            perm, inverse = (0, 2, 4, 3, 1, 5), (0, 4, 1, 3, 2, 5)
        else:  # chunks straddle columns: transpose, then cut as rows
            return self._mix_rows(x.transpose(1, 2)).transpose(1, 2)
        chunks = x.permute(perm)  # (B', ..., group, <L tokens x S>)
        y = self.fc(chunks.reshape(b, -1, length, c)).reshape(chunks.shape)
        return y.permute(inverse).reshape(b, h, w, c)

    def _mix_rows(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        length, n = self.chunk_len, h * w
        shape = (b, n // length, length, length, c // length)  # (B', chunk, token, group, S)
        chunks = x.reshape(shape).transpose(2, 3).reshape(b, n // length, length, c)  # (B', chunk, group, L·S)
        return self.fc(chunks).reshape(shape).transpose(2, 3).reshape(b, h, w, c)


class MorphFCSpatial(nn.Module):
    """MorphFC_s: chunked token mixing per frame, channel FC, clip-level re-weighting, then ``proj``.

    Stages 1–3 (L < H·W): a *height* branch (frame flattened column-major, so a chunk is an L-long piece of a
    column, or L/H full columns) and a *width* branch (row-major: L-long piece of a row, or L/W full rows), each a
    `ChunkFC` with its own weight, plus the channel branch ``W_c``. Full frame (L = H·W, released stage 4, "S2"):
    one `ChunkFC` over all H·W tokens replaces both, leaving two branches.

    Re-weighting (Vision Permutator): ``a = mean_{T',H,W}(Σ_k y_k) ∈ R^{B×C}``, ``a → Linear(C, C/4) → GELU →
    Linear(C/4, K·C)``, read as ``(B, C, K)`` and softmaxed over the K branches; ``o = Σ_k a_k ⊙ y_k``.
    """

    def __init__(self, dim: int, frame_tokens: int, chunk_len: int, reweight: bool = True):
        super().__init__()
        self.full_frame = chunk_len == frame_tokens
        if self.full_frame:
            self.mix_hw = ChunkFC(dim, chunk_len)
        else:
            self.mix_h = ChunkFC(dim, chunk_len, order="column")
            self.mix_w = ChunkFC(dim, chunk_len)
        self.mix_c = nn.Linear(dim, dim)
        self.num_branches = 2 if self.full_frame else 3
        self.reweight = Mlp(dim, max(dim // 4, 1), self.num_branches * dim) if reweight else None
        self.proj = nn.Linear(dim, dim)

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The branch outputs y_k, in the released order (height, width, channel) or (frame, channel)."""
        frames = x.flatten(0, 1)  # (B·T', H, W, C)
        if self.full_frame:
            spatial = [self.mix_hw(frames)]
        else:
            spatial = [self.mix_h(frames), self.mix_w(frames)]
        return [y.reshape(x.shape) for y in spatial] + [self.mix_c(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        ys = self.branches(x)
        if self.reweight is None:
            out = ys[0] + ys[1]
            for y in ys[2:]:
                out += y
            return self.proj(out)
        b, c = x.shape[0], x.shape[-1]
        a = sum(y.mean(dim=(1, 2, 3)) for y in ys)  # pooled over the whole clip, not per frame: (B, C)
        a = self.reweight(a).reshape(b, c, self.num_branches).permute(2, 0, 1).softmax(dim=0)  # (K, B, C)
        a = a[:, :, None, None, None, :]
        out = ys[0] * a[0]
        for k in range(1, self.num_branches):
            out.addcmul_(ys[k], a[k])
        return self.proj(out)


class MorphFCTemporal(nn.Module):
    """MorphFC_t: at every spatial location, each of G contiguous channel groups (S_t = C/G) is concatenated
    over the T' frames (frame major) into a T'·S_t vector, mixed by one shared Linear ``W_t``, scattered back,
    then ``proj`` (C→C).

    Init (as released): ``W_t = 0`` and ``proj.weight = 1``: the branch outputs exactly 0 but ``W_t`` gets gradient.
    """

    def __init__(self, dim: int, frames: int, groups: int):
        super().__init__()
        self.groups = groups
        length = frames * dim // groups
        self.mix_t = nn.Linear(length, length)
        self.proj = nn.Linear(dim, dim)

    def init_weights(self) -> None:
        nn.init.zeros_(self.mix_t.weight)
        nn.init.zeros_(self.mix_t.bias)
        nn.init.ones_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        b, t, h, w, c = x.shape
        g = self.groups
        x = x.reshape(b, t, h, w, g, c // g).permute(0, 2, 3, 4, 1, 5).reshape(b, h, w, g, t * c // g)
        x = self.mix_t(x).reshape(b, h, w, g, t, c // g).permute(0, 4, 1, 2, 3, 5).reshape(b, t, h, w, c)
        return self.proj(x)


class MorphMLPBlock(nn.Module):
    """The MorphMLP block: temporal FC, spatial FC, channel MLP, three LayerNorms."""

    def __init__(
        self,
        dim: int,
        grid: tuple[int, int, int],
        chunk_len: int,
        temporal_groups: int,
        mlp_ratio: float = 3.0,
        reweight: bool = True,
        spatial_residual: str = "input",
        drop_path: float = 0.0,
    ):
        super().__init__()
        frames, h, w = grid
        self.spatial_residual = spatial_residual
        self.norm_t = nn.LayerNorm(dim)
        self.fc_t = MorphFCTemporal(dim, frames, temporal_groups)
        self.norm1 = nn.LayerNorm(dim)
        self.fc_s = MorphFCSpatial(dim, h * w, chunk_len, reweight)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)
        self.fc_t.init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_t = x + self.fc_t(self.norm_t(x))
        base = x if self.spatial_residual == "input" else x_t
        x = base + self.drop_path(self.fc_s(self.norm1(x_t)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def check_morphmlp(dim: int, grid: tuple[int, int, int], opts: MorphMLPOptions) -> int:
    """Raise `InvalidCombination` where the options do not fit the stage; returns the temporal groups G."""
    t, h, w = grid
    length = opts.chunk_len
    if dim % length:
        raise InvalidCombination(f"morphmlp chunk_len {length} does not divide width {dim}")
    if (h * w) % length:
        raise InvalidCombination(f"morphmlp chunk_len {length} does not tile the {h}x{w} grid ({h * w} tokens)")
    groups = t if opts.temporal_groups is None else opts.temporal_groups
    if dim % groups:
        which = f"{groups} (default: T' = {t})" if opts.temporal_groups is None else f"{groups}"
        raise InvalidCombination(f"morphmlp temporal_groups {which} do not divide width {dim}")
    return groups


@register_mixer("morphmlp", MorphMLPOptions)
def build_morphmlp_block(ctx: BlockContext, opts: MorphMLPOptions) -> nn.Module:
    """MorphMLP: chunked height/width/channel FCs with re-weighting, temporal group FC, channel MLP."""
    groups = check_morphmlp(ctx.dim, ctx.grid, opts)
    return MorphMLPBlock(
        ctx.dim, ctx.grid, opts.chunk_len, groups, ctx.mlp_ratio, opts.reweight, opts.spatial_residual, ctx.drop_path
    )


# ---------------------------------------------------------------------------------------------------- presets


def morphmlp_spec(
    frames: int,
    resolution: int,
    num_classes: int,
    depths,
    dims=(112, 224, 392, 784),
    chunk_lens=(14, 28, 28, 49),
    temporal_groups=(None, None, None, None),
    mlp_ratio: float = 3.0,
    stem_temporal_stride: int = 2,
    drop_path_rate: float = 0.0,
) -> dict:
    stages = [
        {
            "depth": d,
            "width": c,
            "mlp_ratio": mlp_ratio,
            "mixer": {"kind": "morphmlp", "options": {"chunk_len": length, "temporal_groups": g}},
        }
        for d, c, length, g in zip(depths, dims, chunk_lens, temporal_groups)
    ]
    return {
        "input": {"frames": frames, "resolution": resolution, "in_chans": 3, "num_classes": num_classes},
        "stem": {"kind": "conv", "patch": 4, "temporal_kernel": 3, "temporal_stride": stem_temporal_stride},
        "stages": stages,
        "drop_path_rate": drop_path_rate,
    }


@register_preset("morphmlp_s_16f")
def morphmlp_s_16f() -> dict:
    """MorphMLP-S, K400, 16×224² (T' = 8, G = 8), 400 classes: 47,039,154 params, 66.36 GFLOPs."""
    return morphmlp_spec(16, 224, 400, (3, 4, 9, 3), drop_path_rate=0.1)


@register_preset("morphmlp_s_32f")
def morphmlp_s_32f() -> dict:
    """MorphMLP-S, K400, 32×224² (T' = 16; G = 16, 14 at C = 392), 400 classes: 47,463,018 params."""
    return morphmlp_spec(32, 224, 400, (3, 4, 9, 3), temporal_groups=(16, 16, 14, 16), drop_path_rate=0.1)


@register_preset("morphmlp_b_16f")
def morphmlp_b_16f() -> dict:
    """MorphMLP-B, K400, 16×224² (T' = 8, G = 8), 400 classes: 67,784,382 params, 97.83 GFLOPs."""
    return morphmlp_spec(16, 224, 400, (4, 6, 15, 4), drop_path_rate=0.3)


@register_preset("morphmlp_tiny")
def morphmlp_tiny() -> dict:
    """Two small stages for 8×32² synthetic clips: row chunks on 8×8, the full-frame form on 4×4."""
    return morphmlp_spec(
        8, 32, 12, (1, 1), dims=(32, 64), chunk_lens=(8, 16), temporal_groups=(None, None), stem_temporal_stride=1
    )
