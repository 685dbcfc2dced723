"""Self-attention (ViT / TimeSformer) blocks: the set-layout baseline and the host of token merging.

Spec: ``docs/seed_blocks.md`` (attention and token merging; the ToMe ViT-S video reference). Read top-down:
options → multi-head attention → joint and divided space–time blocks → factory → presets.

A timm-style pre-norm ViT block, ``x ← x + DropPath(Attn(LN x))``, ``x ← x + DropPath(MLP(LN x))``, on a token set
``(B, N, C)``. Set blocks are called as ``x, state = block(x, state, merger)``: ``state`` (``merge.TokenState``)
carries the token sizes ``s``, and ``merger`` (ToMe/STTM, or None) runs between attention and MLP, fed the
head-averaged keys. Once tokens are merged, attention is ToMe's *proportional attention*
``softmax(QKᵀ/√d_h + log s)``: the log-size enters ``F.scaled_dot_product_attention`` as an additive float mask, so
the fused kernel (and fvcore's SDPA handle) still see one attention op.
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field
from timm.layers import Mlp

from explorer.blocks.layers import drop_path_or_identity, init_linear
from explorer.blocks.merge import TokenState
from explorer.blocks.registry import (
    DIVIDES_WIDTH,
    BlockContext,
    InvalidCombination,
    MixerOptions,
    register_mixer,
    register_preset,
)


class AttentionOptions(MixerOptions):
    heads: int = Field(4, ge=1, description="attention heads h (head width C/h)", json_schema_extra=DIVIDES_WIDTH)
    space_time: Literal["joint", "divided"] = Field(
        "joint",
        description="joint: one attention over all T·H·W tokens; divided (TimeSformer): attention over "
        "T at each location, then over H·W in each frame (needs the grid: no merging)",
    )
    qkv_bias: bool = Field(True, description="bias on the query/key/value projection")

    def merge_conflict(self) -> Optional[str]:
        """Why this mixer cannot host token merging, or None if it can (asked by the spec validator)."""
        if self.space_time == "divided":
            return (
                "divided space-time attention needs the (T, H, W) token grid, which token merging destroys; "
                "use space_time: joint or drop the merge"
            )
        return None


class Attention(nn.Module):
    """Multi-head self-attention ``softmax(Q Kᵀ/√d_h + bias) V`` with one fused qkv projection (timm layout).

    Returns the projected output and, when asked, ToMe's merge metric: the keys averaged over heads
    (B, N, d_h).
    """

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, bias: Optional[torch.Tensor] = None, metric: bool = False
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
        out = self.proj(out.transpose(1, 2).reshape(b, n, c))
        return out, (k.mean(dim=1) if metric else None)


class AttentionBlock(nn.Module):
    """Joint space–time ViT block; a ``merger`` (if given) runs between attention and MLP (ToMe's placement)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool = True, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)

    def forward(
        self, x: torch.Tensor, state: Optional[TokenState] = None, merger: Optional[nn.Module] = None
    ) -> tuple[torch.Tensor, Optional[TokenState]]:
        bias = state.attn_bias() if state is not None else None
        y, metric = self.attn(self.norm1(x), bias, metric=merger is not None)
        x = x + self.drop_path(y)
        if merger is not None:
            if state is None:
                raise ValueError("merging needs the token state (sizes)")
            x, state = merger(x, metric, state)
        return x + self.drop_path(self.mlp(self.norm2(x))), state


class DividedAttentionBlock(nn.Module):
    """TimeSformer's divided space–time block on raster-ordered (t, h, w) tokens:
    ``x ← x + Attn_T(LN_T x)`` over the T frames at each location, ``x ← x + Attn_S(LN x)`` over the H·W tokens
    of each frame, then the MLP. (TimeSformer also puts a second linear after the temporal projection; two linears
    in a row are one, so it is folded into ``Attn_T.proj``.)"""

    def __init__(
        self,
        dim: int,
        grid: tuple[int, int, int],
        heads: int,
        mlp_ratio: float,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.grid = grid
        self.norm_t = nn.LayerNorm(dim)
        self.temporal_attn = Attention(dim, heads, qkv_bias)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)

    def forward(
        self, x: torch.Tensor, state: Optional[TokenState] = None, merger: Optional[nn.Module] = None
    ) -> tuple[torch.Tensor, Optional[TokenState]]:
        t, h, w = self.grid
        b, n, c = x.shape
        if merger is not None or (state is not None and state.merged) or n != t * h * w:
            raise InvalidCombination(f"divided attention needs the {t}x{h}x{w} token grid, got {n} (merged?) tokens")
        xt = x.reshape(b, t, h * w, c).transpose(1, 2).reshape(b * h * w, t, c)
        y, _ = self.temporal_attn(self.norm_t(xt))
        x = x + self.drop_path(y.reshape(b, h * w, t, c).transpose(1, 2).reshape(b, n, c))
        y, _ = self.attn(self.norm1(x).reshape(b * t, h * w, c))
        x = x + self.drop_path(y.reshape(b, n, c))
        return x + self.drop_path(self.mlp(self.norm2(x))), state


@register_mixer("attention", AttentionOptions, layout="set")
def build_attention_block(ctx: BlockContext, opts: AttentionOptions) -> nn.Module:
    """Multi-head self-attention + MLP (ViT, joint space-time; or TimeSformer divided); hosts token merging."""
    if ctx.dim % opts.heads:
        raise InvalidCombination(f"attention heads {opts.heads} do not divide width {ctx.dim}")
    if opts.space_time == "divided":
        return DividedAttentionBlock(ctx.dim, ctx.grid, opts.heads, ctx.mlp_ratio, opts.qkv_bias, ctx.drop_path)
    return AttentionBlock(ctx.dim, opts.heads, ctx.mlp_ratio, opts.qkv_bias, ctx.drop_path)


# ---------------------------------------------------------------------------------------------------- presets


def vit_video_spec(
    frames: int,
    resolution: int,
    num_classes: int,
    patch: int,
    width: int,
    depth: int,
    heads: int,
    merge: Optional[dict] = None,
    space_time: str = "joint",
) -> dict:
    """A plain video ViT: Conv3d tubelet 2×p×p + learned position embedding, one stage of attention blocks,
    LayerNorm → mean over the remaining tokens → linear."""
    stage = {
        "depth": depth,
        "width": width,
        "mlp_ratio": 4.0,
        "mixer": {"kind": "attention", "options": {"heads": heads, "space_time": space_time}},
    }
    if merge is not None:
        stage["merge"] = merge
    return {
        "input": {"frames": frames, "resolution": resolution, "in_chans": 3, "num_classes": num_classes},
        "stem": {"kind": "tubelet", "patch": patch, "temporal_kernel": 2, "temporal_stride": 2, "pos_embed": True},
        "stages": [stage],
    }


def _vit_s_video(r: int) -> dict:
    return vit_video_spec(16, 224, 400, 16, 384, 12, 6, merge={"method": "tome", "r": r} if r else None)


@register_preset("vit_s_video")
def vit_s_video() -> dict:
    """ViT-S video (VideoMAE-S-like: 16×224², tubelet 2×16×16 → 1568 tokens, 400 classes): 22,640,656 params."""
    return _vit_s_video(0)


@register_preset("vit_s_video_tome_r32")
def vit_s_video_tome_r32() -> dict:
    """ViT-S video with ToMe, r = 32 tokens merged in each of the 12 blocks (1568 → 1184 tokens)."""
    return _vit_s_video(32)


@register_preset("vit_s_video_tome_r100")
def vit_s_video_tome_r100() -> dict:
    """ViT-S video with ToMe, r = 100 tokens merged in each of the 12 blocks (1568 → 368 tokens)."""
    return _vit_s_video(100)


@register_preset("vit_tiny_tome")
def vit_tiny_tome() -> dict:
    """Tiny ViT with ToMe (r = 16 per block) for 8×32² synthetic clips: 4×8×8 = 256 → 192 tokens."""
    return vit_video_spec(8, 32, 12, 4, 64, 4, 4, merge={"method": "tome", "r": 16})


@register_preset("vit_tiny_sttm")
def vit_tiny_sttm() -> dict:
    """Tiny ViT with one STTM merge in block 1 for 8×32² clips (our reconstruction; 256 → 48 tokens)."""
    return vit_video_spec(8, 32, 12, 4, 64, 4, 4, merge={"method": "sttm", "ratio": 0.75, "layers": [1]})
