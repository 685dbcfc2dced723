"""Video-FocalNets (Wasim et al., ICCV 2023): spatio-temporal focal modulation.

Spec: ``docs/seed_blocks.md`` (Video-FocalNets). Read top-down: options → focal context (one
branch: hierarchical contextualisation, global level, gated aggregation, modulator) → focal modulation (one query,
one or more branches multiplied in) → block → factory → presets.

The network is a 2-D FocalNet run on every frame; the only place frames meet is the temporal branch. The released
("parallel") modulation of a LayerNorm-ed clip ``X ∈ R^{T×H×W×C}`` is

    [Q, Z_s^0, G_s] = X W_f + b_f,   [Z_t^0, G_t] = X W_ft + b_ft
    Z^ℓ = GELU(Conv_ℓ(Z^{ℓ−1})), ℓ = 1..L       (k_ℓ = w + 2(ℓ−1); spatial: depthwise k×k per frame,
                                                 temporal: dense 1-D over T at every position)
    Z^{L+1} = GELU(mean Z^L)                    (over H×W per frame, resp. over T)
    M = (Σ_{ℓ=1}^{L+1} G[ℓ] ⊙ Z^ℓ) W_h + b_h     (gates are raw scalars per position and level)
    Y = (Q ⊙ M_s ⊙ M_t) W_o + b_o

and the block is pre-norm: ``X ← X + DropPath(Mod(LN(X)))``, ``X ← X + DropPath(MLP(LN(X)))``.

Design-space variants (the paper's ablations): ``serial`` (a spatial then a temporal modulation sub-layer, each with
its own query
and residual), ``spatial_only`` (the image FocalNet per frame, ``Y = Q ⊙ M_s``), ``joint3d`` (depthwise k×k×k
convs over (T, H, W), global mean over T·H·W, one modulator) and depthwise temporal convs.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from pydantic import Field, model_validator
from timm.layers import Mlp

from explorer.blocks.layers import DepthwiseConv3d, drop_path_or_identity, init_linear
from explorer.blocks.registry import BlockContext, MixerOptions, OddInt, register_mixer, register_preset

Combination = Literal["parallel", "serial", "spatial_only", "joint3d"]
Axes = Literal["spatial", "temporal", "joint"]

_TEMPORAL_COMBINATIONS = ("parallel", "serial")  # the combinations with a temporal branch


class FocalOptions(MixerOptions):
    combination: Combination = Field(
        "parallel",
        description="how space and time are modulated: parallel (released: shared query, Q·Ms·Mt), "
        "serial (spatial then temporal sub-layer, each with its own query and residual), "
        "spatial_only (image FocalNet per frame), joint3d (depthwise 3-D convs, one "
        "modulator)",
    )
    focal_levels: int = Field(2, ge=1, description="focal levels L (plus one global level)")
    focal_window: OddInt = Field(3, ge=1, description="kernel of the first level w; level ℓ uses w + 2(ℓ−1)")
    temporal_conv: Literal["dense", "depthwise"] = Field(
        "dense",
        description="temporal-branch convs: dense C×C×k (released) or depthwise; only combinations with a "
        "temporal branch (parallel, serial) use it, the others normalise it to 'dense'",
    )

    @model_validator(mode="before")
    @classmethod
    def _canonical_temporal_conv(cls, data: Any) -> Any:
        # without a temporal branch the choice builds the same model: normalise it so both specs hash the same
        if isinstance(data, dict) and data.get("combination", "parallel") not in _TEMPORAL_COMBINATIONS:
            data = {**data, "temporal_conv": "dense"}
        return data


def focal_kernels(levels: int, window: int, factor: int = 2) -> list[int]:
    """Level kernel sizes ``k_ℓ = w + f·(ℓ−1)`` (released: L = 2, w = 3 → 3, 5)."""
    return [window + factor * level for level in range(levels)]


class FocalContext(nn.Module):
    """One context branch: ``M = (Σ_ℓ G[ℓ] ⊙ Z^ℓ) W_h + b_h`` over the levels and the global level.

    ``axes`` picks where the convs look; each works on a channels-first *view* of the channels-last clip (no copy):
    ``spatial``: depthwise k×k Conv2d per frame on ``(B·T, C, H, W)`` (frames folded into the batch);
    ``temporal``: k×1 Conv2d on ``(B, C, T, H·W)``, i.e. a 1-D conv over T at every position, dense (weight
    C×C×k, released) or depthwise; ``joint``: depthwise k×k×k Conv3d on ``(B, C, T, H, W)``. Convs have no bias
    and zero 'same' padding; the global level averages the last level over the branch's axes.
    """

    def __init__(self, dim: int, axes: Axes, levels: int, window: int, dense: bool = False):
        super().__init__()
        self.axes = axes
        self.levels = levels
        layers = []
        for k in focal_kernels(levels, window):
            if axes == "spatial":
                conv = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False)
            elif axes == "temporal":
                conv = nn.Conv2d(dim, dim, (k, 1), padding=(k // 2, 0), groups=1 if dense else dim, bias=False)
            else:
                conv = DepthwiseConv3d(dim, dim, k, padding=k // 2, bias=False)
            layers.append(nn.Sequential(conv, nn.GELU()))
        self.focal_layers = nn.ModuleList(layers)
        # a dense temporal conv runs on a contiguous (B, C, T, H·W) copy: on the channels-last view its backward took
        # 1.6-2.4x as long at the released shape (1x8x56²x96), and the copy costs nothing measurable at proxy shapes
        # (experiments/block_speed/README.md, training step)
        self.copy_in = axes == "temporal" and dense
        self.global_dims = {"spatial": (2, 3), "temporal": (2,), "joint": (2, 3, 4)}[axes]
        self.h = nn.Linear(dim, dim)  # the 1×1 modulator, applied channels-last

    def fold(self, z: torch.Tensor) -> torch.Tensor:
        """Channels-last ``(B, T, H, W, C)`` → the conv's channels-first view."""
        if self.axes == "spatial":
            return z.flatten(0, 1).permute(0, 3, 1, 2)
        if self.axes == "temporal":
            return z.flatten(2, 3).permute(0, 3, 1, 2)
        return z.permute(0, 4, 1, 2, 3)

    def unfold(self, z: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        b, t, h, w, _ = shape
        if self.axes == "spatial":
            return z.permute(0, 2, 3, 1).unflatten(0, (b, t))
        if self.axes == "temporal":
            return z.permute(0, 2, 3, 1).unflatten(2, (h, w))
        return z.permute(0, 2, 3, 4, 1)

    def forward(self, z: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """``z``: ``(B, T, H, W, C)`` context, ``gates``: ``(B, T, H, W, L+1)`` → modulator ``(B, T, H, W, C)``."""
        shape = z.shape
        z = self.fold(z.contiguous())  # a channels_last-format view: the fast path of the CPU convs
        gates = self.fold(gates)
        if self.copy_in:
            z, gates = z.contiguous(), gates.contiguous()
        aggregate = 0
        for level, layer in enumerate(self.focal_layers):
            z = layer(z)
            aggregate = aggregate + z * gates[:, level : level + 1]
        z_global = F.gelu(z.mean(self.global_dims, keepdim=True))
        aggregate = aggregate + z_global * gates[:, self.levels :]
        return self.h(self.unfold(aggregate, shape))


def release_modulator_init(h: nn.Linear) -> None:
    """The modulator ``h`` at the release's initialisation.

    In the released code ``h`` is a 1×1 convolution (``Conv2d`` spatial, ``Conv1d`` temporal) and the model's
    truncated-normal init touches only ``nn.Linear`` layers, so ``h`` keeps PyTorch's default: kaiming-uniform
    weights (std 1/√(3C)) and a uniform bias in ±1/√C, the same distribution ``nn.Linear.reset_parameters`` draws.
    Ours is a ``Linear`` (channels-last); given σ = 0.02 and a zero bias instead, ``Q ⊙ M_s ⊙ M_t`` starts at
    ~1e-9 of its input at proxy widths and the focal convs' gradients (~1e-12) sit far below AdamW's ε (1e-8),
    so the modulation never leaves zero in a short training.
    """
    h.reset_parameters()


class FocalModulation(nn.Module):
    """``Y = (Q ⊙ Π_b M_b) W_o + b_o`` with one query and the context branches ``axes``.

    The first branch shares the projection with the query (``C → 2C + L + 1``: Q, Z^0, G); every further branch
    has its own (``C → C + L + 1``: Z^0, G) — released parallel: ``axes = (spatial, temporal)``.
    """

    def __init__(self, dim: int, axes: tuple[Axes, ...], levels: int, window: int, dense_temporal: bool = True):
        super().__init__()
        self.dim = dim
        self.levels = levels
        self.f = nn.Linear(dim, 2 * dim + levels + 1)
        self.f_branches = nn.ModuleList(nn.Linear(dim, dim + levels + 1) for _ in axes[1:])
        self.contexts = nn.ModuleList(FocalContext(dim, a, levels, window, dense_temporal) for a in axes)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C) -> same
        c, g = self.dim, self.levels + 1
        q, z, gates = self.f(x).split((c, c, g), dim=-1)
        out = q
        for i, context in enumerate(self.contexts):
            if i:
                z, gates = self.f_branches[i - 1](x).split((c, g), dim=-1)
            out = out * context(z, gates)
        return self.proj(out)


# the modulation sub-layers of each combination, each a tuple of context branches (the first shares the query)
_AXES: dict[str, tuple[tuple[Axes, ...], ...]] = {
    "parallel": (("spatial", "temporal"),),
    "serial": (("spatial",), ("temporal",)),
    "spatial_only": (("spatial",),),
    "joint3d": (("joint",),),
}


class FocalBlock(nn.Module):
    """Pre-norm FocalNet block: one ``X ← X + DropPath(Mod(LN(X)))`` per modulation sub-layer (two for serial),
    then ``X ← X + DropPath(MLP(LN(X)))`` with MLP C → rC → C (GELU)."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, opts: FocalOptions):
        super().__init__()
        dense = opts.temporal_conv == "dense"
        sublayers = _AXES[opts.combination]
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in sublayers)
        self.modulations = nn.ModuleList(
            FocalModulation(dim, axes, opts.focal_levels, opts.focal_window, dense) for axes in sublayers
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))
        self.drop_path = drop_path_or_identity(drop_path)
        self.apply(init_linear)
        for modulation in self.modulations:
            for context in modulation.contexts:
                release_modulator_init(context.h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        for norm, modulation in zip(self.norms, self.modulations):
            x = x + self.drop_path(modulation(norm(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_mixer("focal", FocalOptions)
def build_focal_block(ctx: BlockContext, opts: FocalOptions) -> nn.Module:
    """Video-FocalNet spatio-temporal focal modulation + MLP (parallel, serial, spatial-only or joint 3-D)."""
    return FocalBlock(ctx.dim, ctx.mlp_ratio, ctx.drop_path, opts)


# ---------------------------------------------------------------------------------------------------- presets


def video_focalnet_spec(
    frames: int, resolution: int, num_classes: int, dims, depths, drop_path_rate: float, **options: Any
) -> dict:
    """Per-frame 4×4 patch stem, 2×2 patch-merging between stages, MLP ratio 4, LayerNorm → mean → Linear head."""
    stages = [
        {
            "depth": d,
            "width": c,
            "mlp_ratio": 4.0,
            "mixer": {"kind": "focal", "options": dict(options)},
            "down": {"kind": "patch_merge", "spatial_stride": 2},
        }
        for d, c in zip(depths, dims)
    ]
    return {
        "input": {"frames": frames, "resolution": resolution, "in_chans": 3, "num_classes": num_classes},
        "stem": {"kind": "frame_patch", "patch": 4},
        "stages": stages,
        "drop_path_rate": drop_path_rate,
    }


@register_preset("video_focalnet_t")
def video_focalnet_t() -> dict:
    """The released Video-FocalNet-T (K400, 8×224², 400 classes): 49,553,272 params, 63.14 GFLOPs."""
    return video_focalnet_spec(8, 224, 400, (96, 192, 384, 768), (2, 2, 6, 2), 0.2)


@register_preset("video_focalnet_b")
def video_focalnet_b() -> dict:
    """The released Video-FocalNet-B (K400, 8×224², 400 classes): 157,389,216 params, 220.93 GFLOPs."""
    return video_focalnet_spec(8, 224, 400, (128, 256, 512, 1024), (2, 2, 18, 2), 0.5)


@register_preset("focal_tiny")
def focal_tiny() -> dict:
    """Two small parallel focal stages for 8×32² synthetic clips."""
    return video_focalnet_spec(8, 32, 12, (32, 64), (1, 1), 0.0)
