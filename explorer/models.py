"""``build(Arch) -> nn.Module``: a hierarchical video backbone whose blocks come from the mixer registry; presets.

Skeleton (shared by PosMLP-Video and MorphMLP, ``blocks_posmlp_morphmlp.md`` §1): a two-conv 3-D stem to a
channels-last grid ``(B, T, H, W, C)``, stages of registry blocks separated by strided (1,3,3) convs + LayerNorm,
and a LayerNorm → mean-pool → Linear head.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
from timm.layers import trunc_normal_

from explorer.arch import (
    Arch,
    ArchError,
    DownSpec,
    MixerSpec,
    StemSpec,
    stage_grids,
)
from explorer.blocks import BlockContext, get_mixer, mixer_names, parse_options, preset_spec
from explorer.blocks import preset_names as registered_presets


def validate_arch(arch: Arch) -> Arch:
    """Check every stage's mixer against the registry and return the spec with options completed by defaults,
    so two specs that build the same model also hash the same."""
    stages = []
    for i, stage in enumerate(arch.stages):
        path = f"stages[{i}].mixer"
        if stage.mixer.kind not in mixer_names():
            raise ArchError(f"{path}.kind", f"unknown mixer {stage.mixer.kind!r}; known mixers: "
                                            f"{', '.join(mixer_names())}")
        try:
            opts = parse_options(stage.mixer.kind, stage.mixer.options)
        except ValueError as err:
            raise ArchError(f"{path}.options", str(err)) from None
        if stage.global_tokens is not None and stage.global_tokens.num > 0:
            raise ArchError(f"stages[{i}].global_tokens", "global-token bridges are not implemented yet")
        if stage.merge is not None:
            raise ArchError(f"stages[{i}].merge", "token merging is not implemented yet")
        stages.append(dataclasses.replace(stage, mixer=MixerSpec(stage.mixer.kind, opts.model_dump())))
    return arch.replace(stages=tuple(stages))


class Stem(nn.Module):
    """``conv`` stem: Conv3d (kt,3,3)/(st,2,2) → BN → GELU → Conv3d (1,3,3)/(1,2,2) → BN for patch 4;
    one conv + BN for patch 2."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec):
        super().__init__()
        kt, st = spec.temporal_kernel, spec.temporal_stride
        first = dim // 2 if spec.patch == 4 else dim
        layers: list[nn.Module] = [
            nn.Conv3d(in_chans, first, (kt, 3, 3), stride=(st, 2, 2), padding=(kt // 2, 1, 1)),
            nn.BatchNorm3d(first),
        ]
        if spec.patch == 4:
            layers += [nn.GELU(), nn.Conv3d(first, dim, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                       nn.BatchNorm3d(dim)]
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, T, H, W, C)
        return self.proj(x).permute(0, 2, 3, 4, 1)


class FramePatchStem(nn.Module):
    """``frame_patch`` stem (Video-FocalNet): per-frame Conv2d patch×patch stride patch, then LayerNorm."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, spec.patch, stride=spec.patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape[:3]
        x = self.proj(x.transpose(1, 2).flatten(0, 1))  # frames folded into the batch
        return self.norm(x.unflatten(0, (b, t)).permute(0, 1, 3, 4, 2))


class TubeletStem(nn.Module):
    """``tubelet`` stem (ViT): Conv3d kt×p×p with stride st×p×p, plus an optional learned position embedding
    over the whole (T', H', W') grid."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec, grid: tuple[int, int, int]):
        super().__init__()
        p, kt, st = spec.patch, spec.temporal_kernel, spec.temporal_stride
        self.proj = nn.Conv3d(in_chans, dim, (kt, p, p), stride=(st, p, p))
        self.pos_embed = nn.Parameter(torch.zeros(1, *grid, dim)) if spec.pos_embed else None
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).permute(0, 2, 3, 4, 1)
        return x + self.pos_embed if self.pos_embed is not None else x


def make_stem(arch: Arch, dim: int) -> nn.Module:
    spec = arch.stem
    if spec.kind == "frame_patch":
        return FramePatchStem(arch.input.in_chans, dim, spec)
    if spec.kind == "tubelet":
        return TubeletStem(arch.input.in_chans, dim, spec, stage_grids(arch)[0])
    return Stem(arch.input.in_chans, dim, spec)


class PatchMerge(nn.Module):
    """``patch_merge`` downsampling (Video-FocalNet): per-frame Conv2d s×s stride s, then LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int, spec: DownSpec):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, spec.spatial_stride, stride=spec.spatial_stride)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        b, t = x.shape[:2]
        x = self.proj(x.flatten(0, 1).permute(0, 3, 1, 2))
        return self.norm(x.permute(0, 2, 3, 1).unflatten(0, (b, t)))


def make_down(in_dim: int, out_dim: int, spec: DownSpec) -> nn.Module:
    return PatchMerge(in_dim, out_dim, spec) if spec.kind == "patch_merge" else Downsample(in_dim, out_dim, spec)


class Downsample(nn.Module):
    """Conv3d (ts,3,3) with stride (ts,ss,ss) then LayerNorm, on channels-last grids."""

    def __init__(self, in_dim: int, out_dim: int, spec: DownSpec):
        super().__init__()
        ts, ss = spec.temporal_stride, spec.spatial_stride
        self.conv = nn.Conv3d(in_dim, out_dim, (ts, 3, 3), stride=(ts, ss, ss), padding=(0, 1, 1))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1))


class VideoBackbone(nn.Module):
    def __init__(self, arch: Arch):
        super().__init__()
        arch = validate_arch(arch)
        self.arch = arch
        widths = [s.width for s in arch.stages]
        self.stem = make_stem(arch, widths[0])
        total = sum(s.depth for s in arch.stages)
        rates = torch.linspace(0, arch.drop_path_rate, total).tolist() if total > 1 else [0.0]
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        k = 0
        for i, (stage, grid) in enumerate(zip(arch.stages, stage_grids(arch))):
            self.downs.append(make_down(widths[i - 1], stage.width, stage.down) if i else nn.Identity())
            entry = get_mixer(stage.mixer.kind)
            opts = entry.options(**stage.mixer.options)
            blocks = []
            for _ in range(stage.depth):
                ctx = BlockContext(stage.width, grid, stage.mlp_ratio, rates[k])
                blocks.append(entry.build(ctx, opts))
                k += 1
            self.stages.append(nn.Sequential(*blocks))
        self.norm = nn.LayerNorm(widths[-1])
        self.head_drop = nn.Dropout(arch.head.dropout)
        self.head = nn.Linear(widths[-1], arch.input.num_classes)
        trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for down, stage in zip(self.downs, self.stages):
            x = stage(down(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.forward_features(x)).mean(dim=(1, 2, 3))
        return self.head(self.head_drop(x))


def build(arch: Arch) -> VideoBackbone:
    """The model for a spec. Raises ``ArchError`` for a bad spec, ``InvalidCombination`` for options that do
    not fit a stage's grid."""
    return VideoBackbone(arch)


def preset(name: str) -> Arch:
    """A named preset (registered by its family file) as a validated ``Arch``."""
    return validate_arch(Arch.from_dict(preset_spec(name), source=f"preset {name}"))


def preset_names() -> list[str]:
    return registered_presets()


def _timm_entry(name: str):
    """A timm model function for a preset: ``num_classes`` and ``drop_path_rate`` override the spec."""

    def create(pretrained: bool = False, **kwargs) -> VideoBackbone:
        if pretrained:
            raise ValueError(f"{name}: the explorer ships no pretrained weights")
        for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(key, None)
        arch = preset(name)
        if "num_classes" in kwargs:
            arch = arch.replace(input=dataclasses.replace(arch.input, num_classes=int(kwargs.pop("num_classes"))))
        if "drop_path_rate" in kwargs:
            arch = arch.replace(drop_path_rate=float(kwargs.pop("drop_path_rate")))
        if kwargs:
            raise TypeError(f"{name}: unsupported arguments {sorted(kwargs)}")
        return build(arch)

    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"explorer preset {name!r} (see `explorer presets`)."
    return create


def register_timm_models() -> list[str]:
    """Register every preset with timm's model registry (idempotent); returns the names added."""
    from timm.models import is_model, register_model

    added = []
    for name in preset_names():
        if not is_model(name):
            register_model(_timm_entry(name))
            added.append(name)
    return added


register_timm_models()
