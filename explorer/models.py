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
    HeadSpec,
    InputSpec,
    MixerSpec,
    StageSpec,
    StemSpec,
    stage_grids,
)
from explorer.blocks import BlockContext, get_mixer, mixer_names, parse_options


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
    """Conv3d (kt,3,3)/(st,2,2) → BN → GELU → Conv3d (1,3,3)/(1,2,2) → BN for patch 4; one conv for patch 2."""

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
        self.stem = Stem(arch.input.in_chans, widths[0], arch.stem)
        total = sum(s.depth for s in arch.stages)
        rates = torch.linspace(0, arch.drop_path_rate, total).tolist() if total > 1 else [0.0]
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        k = 0
        for i, (stage, grid) in enumerate(zip(arch.stages, stage_grids(arch))):
            self.downs.append(Downsample(widths[i - 1], stage.width, stage.down) if i else nn.Identity())
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


def _posmlp_video(frames: int, resolution: int, num_classes: int, dims, depths, windows, groups) -> Arch:
    stages = tuple(
        StageSpec(depth=d, width=c, mixer=MixerSpec("posmlp", {"arrangement": "parallel", "groups": g, "window": w}))
        for d, c, w, g in zip(depths, dims, windows, groups)
    )
    return Arch(InputSpec(frames, resolution, 3, num_classes), StemSpec(4, 1, 1), stages, HeadSpec())


def _small(kind: str, options: dict, widths=(32, 64), depths=(1, 1)) -> Arch:
    stages = tuple(StageSpec(depth=d, width=w, mixer=MixerSpec(kind, dict(options))) for d, w in zip(depths, widths))
    return Arch(InputSpec(8, 32, 3, 12), StemSpec(), stages)


# name -> factory; the released models reproduce params exactly (see reference_numbers.json)
PRESETS = {
    "posmlp_video_72d": lambda: _posmlp_video(16, 224, 174, (72, 144, 288, 576), (3, 4, 9, 3),
                                              (14, 14, 14, 7), (8, 16, 32, 64)),
    "posmlp_tiny": lambda: _small("posmlp", {"groups": 4, "window": 8}),
    "conv3d_tiny": lambda: _small("conv3d", {"kernel_t": 3}),
    "frame2d_tiny": lambda: _small("conv3d", {"kernel_t": 1}),
}


def preset(name: str) -> Arch:
    try:
        return validate_arch(PRESETS[name]())
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
