"""(Video) Mobile-Former (Chen et al., CVPR 2022; Wang et al., arXiv 2208.12257): a lightweight (3-D) CNN and a
few global tokens run side by side and talk through two cheap cross-attention bridges.

Spec: ``shared/reference/blocks_focal_mobileformer_merge.md`` §2. Read top-down: options → dynamic ReLU →
bridges (Mobile→Former, Former, Former→Mobile) → Mobile block (3-D or (2+1)-D depthwise inverted bottleneck) →
Mobile-Former block → ``GlobalTokenBridge`` (the bridges around any other grid block) → factory → presets.

Notation: local features ``X ∈ R^{N×C}`` with ``N = T·H·W`` (the whole clip: attention runs over every
spatio-temporal position), global tokens ``Z ∈ R^{M×d}`` (one set per clip). One block, in the released code's
execution order: ``Z ← Former(Mobile→Former(X, Z))``; ``X' = X + Mobile(X; z_0)``; ``X' ← Former→Mobile(X', Z)``.

The backbone (``explorer.models``) owns the learned token embedding and carries ``Z`` through the stages that
declare ``global_tokens``; the number of tokens M and their width d reach the factory as ``BlockContext.tokens``.
With M = 0 the bridges are off and the block is the Mobile block alone with a plain ReLU.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field
from timm.layers import DropPath, trunc_normal_

from explorer.blocks.registry import BlockContext, InvalidCombination, MixerOptions, register_mixer, register_preset


class MobileFormerOptions(MixerOptions):
    expansion: Optional[float] = Field(
        None, gt=0, description="inverted-bottleneck expansion e (hidden = e·C); None = the stage's mlp_ratio")
    temporal_kernel: int = Field(3, ge=1, description="temporal extent of the depthwise kernel (k_t×3×3); "
                                                      "1 = the image Mobile-Former applied per frame")
    factorized: bool = Field(False, description="(2+1)-D: depthwise 1×3×3 (+BN) then depthwise k_t×1×1 (+BN) "
                                                "instead of one depthwise k_t×3×3")
    dynamic_relu: bool = Field(True, description="dynamic ReLU with slopes from token z_0 (off, or no tokens: ReLU)")
    bridge_heads: int = Field(2, ge=1, description="heads h of both cross-attention bridges (channels split in h)")
    former_heads: int = Field(4, ge=1, description="heads of the Former's token self-attention")
    former_ffn: float = Field(2.0, gt=0, description="expansion of the Former's FFN")
    token_gate: bool = Field(True, description="dynamic token scaling O ⊙ 2·hsigmoid(Z W_α) in Mobile→Former")


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # (B, L, C) -> (B, h, L, C/h)
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _check_heads(width: int, heads: int, what: str) -> None:
    if width % heads:
        raise InvalidCombination(f"{what}: {heads} heads do not divide width {width}")


class DynamicReLU(nn.Module):
    """Token-conditioned ReLU: ``a = hsigmoid(W_2 ReLU(W_1 z_0))`` (d → d/4 → 2·C), ``α₁ = 2(a₁−½)+1``,
    ``α₂ = 2(a₂−½)``, ``y = max(α₁ x, α₂ x)`` per channel (shared over positions). W_2 starts at zero so the
    activation starts as the plain ReLU (α₁ = 1, α₂ = 0)."""

    def __init__(self, channels: int, token_dim: int):
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(token_dim, token_dim // 4), nn.ReLU(),
                                   nn.Linear(token_dim // 4, 2 * channels), nn.Hardsigmoid())
        nn.init.zeros_(self.hyper[2].weight)
        nn.init.zeros_(self.hyper[2].bias)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:  # x (B, C, T, H, W), z0 (B, d)
        a1, a2 = self.hyper(z0)[:, :, None, None, None].chunk(2, dim=1)
        return torch.maximum(x * (2 * a1), x * (2 * a2 - 1))  # 2(a₁−½)+1 = 2a₁; 2(a₂−½) = 2a₂−1


class StaticReLU(nn.Module):
    """Plain ReLU with the dynamic ReLU's call signature (bridges off, or ``dynamic_relu = False``)."""

    def forward(self, x: torch.Tensor, z0: Optional[torch.Tensor]) -> torch.Tensor:
        return F.relu(x)


class MobileToFormer(nn.Module):
    """Local → global cross attention: ``Q_z = Z W_q + b_q`` is the only projection, keys and values are the raw
    features. Per head ``O⁽ⁱ⁾ = softmax_N(Q_z⁽ⁱ⁾ X⁽ⁱ⁾ᵀ/√(C/h)) X⁽ⁱ⁾``; ``O ← O ⊙ 2·hsigmoid(Z W_α + b_α)``
    (token gate); ``Z ← LN(Z + O W_o + b_o)`` (post-norm). Params ``3·C·d + 2C + 3d``; MACs ≈ ``3MdC + 2MNC``."""

    def __init__(self, dim: int, token_dim: int, heads: int = 2, token_gate: bool = True):
        super().__init__()
        _check_heads(dim, heads, "Mobile→Former")
        self.heads = heads
        self.q = nn.Linear(token_dim, dim)
        self.gate = nn.Linear(token_dim, dim) if token_gate else None
        self.proj = nn.Linear(dim, token_dim)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # x (B, N, C), z (B, M, d)
        q = _split_heads(self.q(z), self.heads)
        kv = _split_heads(x, self.heads)
        o = F.scaled_dot_product_attention(q, kv, kv).transpose(1, 2).flatten(2)  # (B, M, C)
        if self.gate is not None:
            o = o * (2 * F.hardsigmoid(self.gate(z)))
        return self.norm(z + self.proj(o))


class Former(nn.Module):
    """Token self-attention with a query-only projection (``K = V = Z``) and an output projection, then a GELU
    FFN (expansion 2); both post-norm. Params ``6d² + 9d`` at expansion 2; cost independent of the clip."""

    def __init__(self, token_dim: int, heads: int = 4, ffn: float = 2.0):
        super().__init__()
        _check_heads(token_dim, heads, "Former")
        self.heads = heads
        self.q = nn.Linear(token_dim, token_dim)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm1 = nn.LayerNorm(token_dim)
        hidden = int(token_dim * ffn)
        self.ffn = nn.Sequential(nn.Linear(token_dim, hidden), nn.GELU(), nn.Linear(hidden, token_dim))
        self.norm2 = nn.LayerNorm(token_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, M, d)
        q = _split_heads(self.q(z), self.heads)
        kv = _split_heads(z, self.heads)
        o = F.scaled_dot_product_attention(q, kv, kv).transpose(1, 2).flatten(2)
        z = self.norm1(z + self.proj(o))
        return self.norm2(z + self.ffn(z))


class FormerToMobile(nn.Module):
    """Global → local cross attention: the features are the queries (no projection), ``K = Z W_k + b_k``,
    ``V = Z W_v + b_v``; per head ``X⁽ⁱ⁾ ← X⁽ⁱ⁾ + softmax_M(X⁽ⁱ⁾K⁽ⁱ⁾ᵀ/√(C/h)) V⁽ⁱ⁾``, no output projection.
    Params ``2(d·C + C)``; MACs ≈ ``2MdC + 2NMC``."""

    def __init__(self, dim: int, token_dim: int, heads: int = 2):
        super().__init__()
        _check_heads(dim, heads, "Former→Mobile")
        self.heads = heads
        self.k = nn.Linear(token_dim, dim)
        self.v = nn.Linear(token_dim, dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # x (B, N, C), z (B, M, d)
        q = _split_heads(x, self.heads)
        k, v = _split_heads(self.k(z), self.heads), _split_heads(self.v(z), self.heads)
        return x + F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


class MobileBlock(nn.Module):
    """The local (Mobile) branch, a stride-1 DnaBlock made 3-D: 1×1×1 conv C→eC + BN → DyReLU → depthwise
    k_t×3×3 (or (2+1)-D: 1×3×3 + BN, k_t×1×1) + BN → DyReLU → 1×1×1 conv eC→C + BN; returns the residual branch
    (the caller adds the identity). Channels-first ``(B, C, T, H, W)``."""

    def __init__(self, dim: int, hidden: int, temporal_kernel: int, factorized: bool, token_dim: int):
        super().__init__()
        kt = temporal_kernel
        self.expand = nn.Sequential(nn.Conv3d(dim, hidden, 1, bias=False), nn.BatchNorm3d(hidden))
        if factorized:
            self.depthwise = nn.Sequential(
                nn.Conv3d(hidden, hidden, (1, 3, 3), padding=(0, 1, 1), groups=hidden, bias=False),
                nn.BatchNorm3d(hidden),
                nn.Conv3d(hidden, hidden, (kt, 1, 1), padding=(kt // 2, 0, 0), groups=hidden, bias=False),
                nn.BatchNorm3d(hidden))
        else:
            self.depthwise = nn.Sequential(
                nn.Conv3d(hidden, hidden, (kt, 3, 3), padding=(kt // 2, 1, 1), groups=hidden, bias=False),
                nn.BatchNorm3d(hidden))
        self.project = nn.Sequential(nn.Conv3d(hidden, dim, 1, bias=False), nn.BatchNorm3d(dim))
        self.act1 = DynamicReLU(hidden, token_dim) if token_dim else StaticReLU()
        self.act2 = DynamicReLU(hidden, token_dim) if token_dim else StaticReLU()

    def forward(self, x: torch.Tensor, z0: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.act1(self.expand(x), z0)
        x = self.act2(self.depthwise(x), z0)
        return self.project(x)


class MobileFormerBlock(nn.Module):
    """One (Video) Mobile-Former block on a channels-last grid ``(B, T, H, W, C)``.

    With tokens (``carries_tokens``): ``forward(x, z) -> (x, z)``; without: ``forward(x) -> x``.
    """

    def __init__(self, ctx: BlockContext, opts: MobileFormerOptions):
        super().__init__()
        dim = ctx.dim
        num, token_dim = ctx.tokens
        self.carries_tokens = num > 0
        if opts.temporal_kernel % 2 == 0:
            raise InvalidCombination(f"temporal_kernel {opts.temporal_kernel} is even: 'same' padding needs odd")
        hidden = max(1, round(dim * (opts.expansion if opts.expansion is not None else ctx.mlp_ratio)))
        dyn_dim = token_dim if self.carries_tokens and opts.dynamic_relu else 0
        self.mobile = MobileBlock(dim, hidden, opts.temporal_kernel, opts.factorized, dyn_dim)
        self.drop_path = DropPath(ctx.drop_path) if ctx.drop_path > 0 else nn.Identity()
        if self.carries_tokens:
            self.to_former = MobileToFormer(dim, token_dim, opts.bridge_heads, opts.token_gate)
            self.former = Former(token_dim, opts.former_heads, opts.former_ffn)
            self.to_mobile = FormerToMobile(dim, token_dim, opts.bridge_heads)

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None):
        grid = x.shape[1:4]
        if self.carries_tokens:
            z = self.former(self.to_former(x.flatten(1, 3), z))
        y = self.mobile(x.permute(0, 4, 1, 2, 3), z[:, 0] if self.carries_tokens else None)
        x = x + self.drop_path(y.permute(0, 2, 3, 4, 1))
        if not self.carries_tokens:
            return x
        x = self.to_mobile(x.flatten(1, 3), z).unflatten(1, grid)
        return x, z


class GlobalTokenBridge(nn.Module):
    """Global tokens attached to a block of any grid mixer: ``Z ← Former(Mobile→Former(X, Z))``,
    ``X ← Former→Mobile(block(X), Z)``; ``forward(x, z) -> (x, z)`` on channels-last grids."""

    carries_tokens = True

    def __init__(self, block: nn.Module, dim: int, token_dim: int, opts: Optional[MobileFormerOptions] = None):
        super().__init__()
        opts = opts or MobileFormerOptions()
        self.to_former = MobileToFormer(dim, token_dim, opts.bridge_heads, opts.token_gate)
        self.former = Former(token_dim, opts.former_heads, opts.former_ffn)
        self.block = block
        self.to_mobile = FormerToMobile(dim, token_dim, opts.bridge_heads)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.former(self.to_former(x.flatten(1, 3), z))
        x = self.block(x)
        return self.to_mobile(x.flatten(1, 3), z).unflatten(1, x.shape[1:4]), z


class GlobalTokens(nn.Module):
    """The learned token embedding ``Z₀ ∈ R^{M×d}``, the same for every sample of the batch."""

    def __init__(self, num: int, width: int):
        super().__init__()
        self.embed = nn.Parameter(torch.zeros(num, width))
        trunc_normal_(self.embed, std=1.0 / math.sqrt(width))

    def forward(self, batch: int) -> torch.Tensor:
        return self.embed.expand(batch, -1, -1)


@register_mixer("mobile_former", MobileFormerOptions)
def build_mobile_former_block(ctx: BlockContext, opts: MobileFormerOptions) -> nn.Module:
    """(Video) Mobile-Former block: 3-D / (2+1)-D inverted bottleneck with dynamic ReLU + global-token bridges."""
    return MobileFormerBlock(ctx, opts)


@register_preset("mobile_former_tiny")
def mobile_former_tiny() -> dict:
    """Video Mobile-Former for 8×32² synthetic clips: 6 global tokens of width 64, 3×3×3 depthwise kernels."""
    tokens = {"num": 6, "width": 64}
    stages = [{"depth": d, "width": w, "mlp_ratio": 4.0, "global_tokens": tokens,
               "mixer": {"kind": "mobile_former", "options": {"temporal_kernel": 3}}} for d, w in ((1, 32), (2, 64))]
    return {"input": {"frames": 8, "resolution": 32, "in_chans": 3, "num_classes": 12}, "stages": stages,
            "stem": {"kind": "conv", "patch": 4}}
