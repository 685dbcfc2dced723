"""(Video) Mobile-Former (Chen et al., CVPR 2022; Wang et al., arXiv 2208.12257): a lightweight (3-D) CNN and a
few global tokens run side by side and talk through two cheap cross-attention bridges.

Spec: ``docs/seed_blocks.md`` ((Video) Mobile-Former). Read top-down: options → dynamic ReLU →
bridges (Mobile→Former, Former, Former→Mobile) → Mobile blocks (DnaBlock: 3-D or (2+1)-D depthwise inverted
bottleneck; DnaBlock3 and its bridge-less e2 = 0 form, optionally with grouped, shuffled 1×1 convs) →
Mobile-Former block → ``GlobalTokenBridge`` (the bridges around any other grid block) → the released classifier
head → factory → presets (the released 508M/151M/96M/26M image models as 1-frame video models, exact params).

Notation: local features ``X ∈ R^{N×C}`` with ``N = T·H·W`` (the whole clip: attention runs over every
spatio-temporal position), global tokens ``Z ∈ R^{M×d}`` (one set per clip). One block, in the released code's
execution order: ``Z ← Former(Mobile→Former(X, Z))``; ``X' = X + Mobile(X; z_0)``; ``X' ← Former→Mobile(X', Z)``.

The backbone (``explorer.models``) owns the learned token embedding and carries ``Z`` through the stages that
declare ``global_tokens``; the number of tokens M and their width d reach the factory as ``BlockContext.tokens``.
With M = 0 the bridges are off and the block is the Mobile block alone with a plain ReLU.
"""

from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field
from timm.layers import trunc_normal_

from explorer.blocks.layers import DepthwiseConv3d, drop_path_or_identity
from explorer.blocks.registry import (
    DIVIDES_WIDTH,
    BlockContext,
    InvalidCombination,
    MixerOptions,
    OddInt,
    register_mixer,
    register_preset,
)

_LATER = {"omit_default": True}  # options added after the first presets: left out of specs at their default


class MobileFormerOptions(MixerOptions):
    expansion: Optional[float] = Field(
        None, gt=0, description="inverted-bottleneck expansion e (hidden = e·C); None = the stage's mlp_ratio"
    )
    temporal_kernel: OddInt = Field(
        3,
        ge=1,
        description="temporal extent of the depthwise kernel (k_t×3×3); 1 = the image Mobile-Former applied per frame",
    )
    factorized: bool = Field(
        False,
        description="(2+1)-D: depthwise 1×3×3 (+BN) then depthwise k_t×1×1 (+BN) instead of one depthwise k_t×3×3",
    )
    dynamic_relu: bool = Field(True, description="dynamic ReLU with slopes from token z_0 (off, or no tokens: ReLU)")
    bridge_heads: int = Field(
        2,
        ge=1,
        description="heads h of both cross-attention bridges (channels split in h)",
        json_schema_extra=DIVIDES_WIDTH,
    )
    former_heads: int = Field(4, ge=1, description="heads of the Former's token self-attention")
    former_ffn: float = Field(2.0, gt=0, description="expansion of the Former's FFN")
    token_gate: bool = Field(True, description="dynamic token scaling O ⊙ 2·hsigmoid(Z W_α) in Mobile→Former")
    first_block: Literal["dna", "dna3"] = Field(
        "dna",
        description="the stage's first block: 'dna' (1×1 → depthwise → 1×1, like the others) or 'dna3' "
        "(released DnaBlock3: depthwise ×e1 → 1×1 → depthwise ×e2 → 1×1, inner residual), "
        "the block that downsamples after a down 'none'",
        json_schema_extra=_LATER,
    )
    first_expansion: int = Field(
        6, ge=1, description="dna3: channel multiplier e1 of its first depthwise conv", json_schema_extra=_LATER
    )
    second_expansion: float = Field(
        4.0,
        ge=0,
        description="dna3: expansion e2 of its second depthwise conv; 0 = "
        "the bridge-less conv block (depthwise ×e1 + BN + "
        "ReLU6 → 1×1 + BN), tokens passed through",
        json_schema_extra=_LATER,
    )
    groups: int = Field(
        1,
        ge=1,
        description="1×1×1 convs in g groups, each followed (or, in DnaBlock3, its "
        "depthwise convs followed) by a channel shuffle (ShuffleNet; "
        "Mobile-Former-26M: 4)",
        json_schema_extra=_LATER,
    )


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
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // 4), nn.ReLU(), nn.Linear(token_dim // 4, 2 * channels), nn.Hardsigmoid()
        )
        nn.init.zeros_(self.hyper[2].weight)
        nn.init.zeros_(self.hyper[2].bias)

    def forward(self, x: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:  # x (B, C, T, H, W), z0 (B, d)
        a1, a2 = self.hyper(z0)[:, :, None, None, None].chunk(2, dim=1)
        # max(α₁x, α₂x) = α₂x + ReLU((α₁−α₂)x), with 2(a₁−½)+1 = 2a₁ and 2(a₂−½) = 2a₂−1; the same values, but
        # torch.maximum's CPU backward (masks, where) cost a quarter of Mobile-Former's training step
        alpha2 = 2 * a2 - 1
        return x * alpha2 + F.relu(x * (2 * a1 - alpha2))


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


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle on ``(B, C, ...)``: view C as (g, C/g), transpose, flatten."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)


def _shuffle(groups: int) -> list[nn.Module]:
    return [ChannelShuffle(groups)] if groups > 1 else []


def _depthwise(
    cin: int, cout: int, kt: int, stride: tuple[int, int, int], factorized: bool, shuffle: int = 1
) -> nn.Sequential:
    """Depthwise k_t×3×3 conv (channel multiplier cout/cin) + BN, or (2+1)-D: 1×3×3 + BN then k_t×1×1 + BN;
    ``stride = (s_t, s, s)``; then a channel shuffle in ``shuffle`` groups when > 1."""
    st, ss = stride[0], stride[1]
    if factorized:
        return nn.Sequential(
            DepthwiseConv3d(cin, cout, (1, 3, 3), stride=(1, ss, ss), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(cout),
            DepthwiseConv3d(cout, cout, (kt, 1, 1), stride=(st, 1, 1), padding=(kt // 2, 0, 0), bias=False),
            nn.BatchNorm3d(cout),
            *_shuffle(shuffle),
        )
    return nn.Sequential(
        DepthwiseConv3d(cin, cout, (kt, 3, 3), stride=(st, ss, ss), padding=(kt // 2, 1, 1), bias=False),
        nn.BatchNorm3d(cout),
        *_shuffle(shuffle),
    )


def _pointwise(cin: int, cout: int, groups: int = 1, shuffle: bool = False) -> nn.Sequential:
    """1×1×1 conv in ``groups`` groups (no bias) + BN, then a channel shuffle when ``shuffle`` and groups > 1."""
    for c in (cin, cout):
        if c % groups:
            raise InvalidCombination(f"{groups} groups do not divide the {c} channels of a 1×1×1 conv")
    return nn.Sequential(
        nn.Conv3d(cin, cout, 1, groups=groups, bias=False), nn.BatchNorm3d(cout), *_shuffle(groups if shuffle else 1)
    )


class MobileBlock(nn.Module):
    """The local (Mobile) branch, a DnaBlock made 3-D: 1×1×1 conv C_in→eC_in + BN → DyReLU → depthwise
    k_t×3×3 (or (2+1)-D: 1×3×3 + BN, k_t×1×1) with the block's stride + BN → DyReLU → 1×1×1 conv eC_in→C + BN;
    returns the residual branch (the caller adds the identity). Channels-first ``(B, C, T, H, W)``."""

    def __init__(
        self,
        dim: int,
        hidden: int,
        temporal_kernel: int,
        factorized: bool,
        token_dim: int,
        in_dim: Optional[int] = None,
        stride: tuple[int, int, int] = (1, 1, 1),
        groups: int = 1,
    ):
        super().__init__()
        in_dim = dim if in_dim is None else in_dim
        self.expand = _pointwise(in_dim, hidden, groups, shuffle=True)
        self.depthwise = _depthwise(hidden, hidden, temporal_kernel, stride, factorized)
        self.project = _pointwise(hidden, dim, groups, shuffle=True)
        self.act1 = DynamicReLU(hidden, token_dim) if token_dim else StaticReLU()
        self.act2 = DynamicReLU(hidden, token_dim) if token_dim else StaticReLU()

    def forward(self, x: torch.Tensor, z0: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.act1(self.expand(x), z0)
        x = self.act2(self.depthwise(x), z0)
        return self.project(x)


class MobileBlock3(nn.Module):
    """The released DnaBlock3's local branch made 3-D: depthwise k_t×3×3 C_in→e1·C_in (channel multiplier e1,
    the block's stride) + BN → DyReLU → 1×1×1 → C + BN (linear) = u; depthwise C→e2·C + BN → DyReLU → 1×1×1 → C
    + BN, added to u (inner residual). Returns the block output (the caller adds any outer identity). With
    g > 1 groups the 1×1×1 convs are grouped and each depthwise output is shuffled in C_in (resp. C) groups,
    as released."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        e1: int,
        hidden2: int,
        temporal_kernel: int,
        factorized: bool,
        token_dim: int,
        stride: tuple[int, int, int],
        drop_path: nn.Module,
        groups: int = 1,
    ):
        super().__init__()
        hidden1 = in_dim * e1
        self.conv1 = _depthwise(in_dim, hidden1, temporal_kernel, stride, factorized, in_dim if groups > 1 else 1)
        self.act1 = DynamicReLU(hidden1, token_dim) if token_dim else StaticReLU()
        self.conv2 = _pointwise(hidden1, dim, groups)
        self.conv3 = _depthwise(dim, hidden2, temporal_kernel, (1, 1, 1), factorized, dim if groups > 1 else 1)
        self.act3 = DynamicReLU(hidden2, token_dim) if token_dim else StaticReLU()
        self.conv4 = _pointwise(hidden2, dim, groups)
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, z0: Optional[torch.Tensor]) -> torch.Tensor:
        u = self.conv2(self.act1(self.conv1(x), z0))
        return u + self.drop_path(self.conv4(self.act3(self.conv3(u), z0)))


class ConvBlock(nn.Module):
    """DnaBlock3 with e2 = 0 (the released models' first block): depthwise k_t×3×3 C_in→e1·C_in (stride) + BN
    + ReLU6 (→ shuffle in C_in groups when g > 1) → 1×1×1 → C in g groups + BN; no bridges, no dynamic ReLU."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        e1: int,
        temporal_kernel: int,
        factorized: bool,
        stride: tuple[int, int, int],
        groups: int = 1,
    ):
        super().__init__()
        self.conv = nn.Sequential(
            *_depthwise(in_dim, in_dim * e1, temporal_kernel, stride, factorized),
            nn.ReLU6(),
            *_shuffle(in_dim if groups > 1 else 1),
            *_pointwise(in_dim * e1, dim, groups),
        )

    def forward(self, x: torch.Tensor, z0: Optional[torch.Tensor]) -> torch.Tensor:
        return self.conv(x)


class MobileFormerBlock(nn.Module):
    """One (Video) Mobile-Former block on a channels-last grid ``(B, T, H, W, C)``.

    With tokens (``carries_tokens``): ``forward(x, z) -> (x, z)``; without: ``forward(x) -> x``. The stage's
    first block may be a DnaBlock3 (``first_block``) and, after a down ``none``, changes the width
    (``ctx.in_dim``) and applies the strides (``ctx.stride``); the identity is added only when neither changes.
    Mobile→Former reads the block's input (width C_in), Former→Mobile its output (width C).
    """

    def __init__(self, ctx: BlockContext, opts: MobileFormerOptions):
        super().__init__()
        dim, in_dim = ctx.dim, ctx.in_channels
        num, token_dim = ctx.tokens
        kt = opts.temporal_kernel
        kind = opts.first_block if ctx.index == 0 else "dna"
        conv_only = kind == "dna3" and opts.second_expansion == 0
        self.carries_tokens = num > 0
        self.bridged = self.carries_tokens and not conv_only
        self.identity = tuple(ctx.stride) == (1, 1, 1) and in_dim == dim
        dyn_dim = token_dim if self.bridged and opts.dynamic_relu else 0
        drop_path = drop_path_or_identity(ctx.drop_path)
        self.drop_path = nn.Identity()  # DnaBlock3 drops its inner branch; its outer identity is plain
        if conv_only:
            self.mobile = ConvBlock(in_dim, dim, opts.first_expansion, kt, opts.factorized, ctx.stride, opts.groups)
        elif kind == "dna3":
            hidden2 = max(1, round(dim * opts.second_expansion))
            self.mobile = MobileBlock3(
                in_dim,
                dim,
                opts.first_expansion,
                hidden2,
                kt,
                opts.factorized,
                dyn_dim,
                ctx.stride,
                drop_path,
                opts.groups,
            )
        else:
            hidden = max(1, round(in_dim * (opts.expansion if opts.expansion is not None else ctx.mlp_ratio)))
            self.mobile = MobileBlock(dim, hidden, kt, opts.factorized, dyn_dim, in_dim, ctx.stride, opts.groups)
            self.drop_path = drop_path
        if self.bridged:
            self.to_former = MobileToFormer(in_dim, token_dim, opts.bridge_heads, opts.token_gate)
            self.former = Former(token_dim, opts.former_heads, opts.former_ffn)
            self.to_mobile = FormerToMobile(dim, token_dim, opts.bridge_heads)

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None):
        if self.bridged:
            z = self.former(self.to_former(x.flatten(1, 3), z))
        y = self.mobile(x.permute(0, 4, 1, 2, 3), z[:, 0] if self.bridged else None).permute(0, 2, 3, 4, 1)
        x = x + self.drop_path(y) if self.identity else y
        if self.bridged:
            x = self.to_mobile(x.flatten(1, 3), z).unflatten(1, x.shape[1:4])
        return (x, z) if self.carries_tokens else x


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

    def no_weight_decay(self) -> set[str]:
        # learned inputs, not weights of a map: decay would shrink the tokens every block reads
        return {"embed"}

    def forward(self, batch: int) -> torch.Tensor:
        return self.embed.expand(batch, -1, -1)


class MobileFormerHead(nn.Module):
    """The released classifier on ``(x, z)``: a last Mobile→Former (``z`` update), 1×1×1 conv C→eC + BN + ReLU6,
    mean over (T, H, W), hswish, concatenated with token z_0, Linear → hidden + BN1d + hswish, dropout,
    Linear → classes; with g > 1 groups the 1×1×1 conv is grouped and preceded by a channel shuffle."""

    def __init__(
        self,
        dim: int,
        token_dim: int,
        hidden: int,
        expansion: float,
        num_classes: int,
        dropout: float = 0.0,
        bridge_heads: int = 2,
        groups: int = 1,
    ):
        super().__init__()
        wide = max(1, round(dim * expansion))
        self.to_former = MobileToFormer(dim, token_dim, bridge_heads)
        self.conv = nn.Sequential(*_shuffle(groups), *_pointwise(dim, wide, groups), nn.ReLU6())
        self.fc = nn.Sequential(nn.Linear(wide + token_dim, hidden), nn.BatchNorm1d(hidden), nn.Hardswish())
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)

    def pre_logits(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:  # x (B, T, H, W, C), z (B, M, d)
        z = self.to_former(x.flatten(1, 3), z)
        y = F.hardswish(self.conv(x.permute(0, 4, 1, 2, 3)).mean(dim=(2, 3, 4)))
        return self.drop(self.fc(torch.cat([y, z[:, 0]], dim=1)))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pre_logits(x, z))


@register_mixer("mobile_former", MobileFormerOptions, resamples=True)
def build_mobile_former_block(ctx: BlockContext, opts: MobileFormerOptions) -> nn.Module:
    """(Video) Mobile-Former block: 3-D / (2+1)-D inverted bottleneck with dynamic ReLU + global-token bridges."""
    return MobileFormerBlock(ctx, opts)


@register_preset("mobile_former_tiny")
def mobile_former_tiny() -> dict:
    """Video Mobile-Former for 8×32² synthetic clips: 6 global tokens of width 64, 3×3×3 depthwise kernels."""
    tokens = {"num": 6, "width": 64}
    stages = [
        {
            "depth": d,
            "width": w,
            "mlp_ratio": 4.0,
            "global_tokens": tokens,
            "mixer": {"kind": "mobile_former", "options": {"temporal_kernel": 3}},
        }
        for d, w in ((1, 32), (2, 64))
    ]
    return {
        "input": {"frames": 8, "resolution": 32, "in_chans": 3, "num_classes": 12},
        "stages": stages,
        "stem": {"kind": "conv", "patch": 4},
    }


def _released(
    stem: int, tokens: tuple[int, int], stages: list[tuple], hidden: int, groups: int = 1, first_block: bool = True
) -> dict:
    """A released image Mobile-Former as a 1-frame Video Mobile-Former (temporal kernel 1): the stem, then (when
    ``first_block``) a bridge-less conv block (DnaBlock3 with e2 = 0) at the stem's width, then ``stages``: (depth,
    width, stride, first block, e1, e2, expansion of the DnaBlocks), each after a down 'none' (its first block
    resamples). ``groups`` > 1 groups and shuffles the 1×1 convs of the blocks and the head (Mobile-Former-26M)."""
    token_spec = {"num": tokens[0], "width": tokens[1]}
    grouped = {"groups": groups} if groups > 1 else {}
    first = {
        "depth": 1,
        "width": stem,
        "mixer": {
            "kind": "mobile_former",
            "options": {"temporal_kernel": 1, "first_block": "dna3", "first_expansion": 2, "second_expansion": 0},
        },
    }
    specs = [first] if first_block else []
    for depth, width, stride, kind, e1, e2, e in stages:
        options = {"temporal_kernel": 1, "first_block": kind, "first_expansion": e1, "second_expansion": e2}
        specs.append(
            {
                "depth": depth,
                "width": width,
                "mlp_ratio": e,
                "global_tokens": token_spec,
                "down": {"kind": "none", "spatial_stride": stride},
                "mixer": {"kind": "mobile_former", "options": {**options, **grouped}},
            }
        )
    return {
        "input": {"frames": 1, "resolution": 224, "in_chans": 3, "num_classes": 1000},
        "stem": {"kind": "single_conv", "patch": 2, **({} if first_block else {"width": stem})},
        "stages": specs,
        "head": {"pool": "mobile_former", "hidden": hidden, **grouped},
    }


@register_preset("mobile_former_508m")
def mobile_former_508m() -> dict:
    """Mobile-Former-508M (ImageNet) as a 1-frame Video Mobile-Former: 6 tokens of width 192, 14.0M params."""
    return _released(
        24,
        (6, 192),
        [
            (2, 40, 2, "dna3", 6, 4, 3),
            (2, 72, 2, "dna3", 6, 4, 3),
            (2, 128, 2, "dna3", 6, 4, 4),
            (2, 176, 1, "dna", 6, 4, 6),
            (3, 240, 2, "dna3", 6, 4, 6),
        ],
        1920,
    )


@register_preset("mobile_former_151m")
def mobile_former_151m() -> dict:
    """Mobile-Former-151M (ImageNet) as a 1-frame Video Mobile-Former: 6 tokens of width 192, 7.6M params."""
    return _released(
        12,
        (6, 192),
        [
            (2, 16, 2, "dna3", 6, 4, 3),
            (2, 32, 2, "dna3", 6, 4, 3),
            (2, 64, 2, "dna3", 6, 4, 4),
            (2, 88, 1, "dna", 6, 4, 6),
            (3, 128, 2, "dna3", 6, 4, 6),
        ],
        1280,
    )


@register_preset("mobile_former_96m")
def mobile_former_96m() -> dict:
    """Mobile-Former-96M (ImageNet) as a 1-frame Video Mobile-Former: 4 tokens of width 128, 4.6M params."""
    return _released(
        12,
        (4, 128),
        [
            (1, 16, 2, "dna3", 6, 4, 4),
            (2, 32, 2, "dna3", 6, 4, 3),
            (2, 64, 2, "dna3", 6, 4, 4),
            (1, 88, 1, "dna", 6, 4, 6),
            (2, 128, 2, "dna3", 6, 4, 6),
        ],
        1280,
    )


@register_preset("mobile_former_26m")
def mobile_former_26m() -> dict:
    """Mobile-Former-26M (ImageNet) as a 1-frame Video Mobile-Former: 3 tokens of width 128, grouped (g = 4)
    shuffled 1×1 convs, 3.2M params; its first stage already bridges (no bridge-less block after the stem)."""
    return _released(
        8,
        (3, 128),
        [
            (2, 12, 2, "dna3", 3, 0, 3),
            (2, 24, 2, "dna3", 6, 4, 3),
            (2, 48, 2, "dna3", 6, 4, 4),
            (1, 64, 1, "dna", 6, 4, 6),
            (2, 96, 2, "dna3", 6, 4, 6),
        ],
        1024,
        groups=4,
        first_block=False,
    )
