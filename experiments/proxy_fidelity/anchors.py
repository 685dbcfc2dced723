"""The anchors of fidelity benchmark v2: 26 architectures the ready spaces search, over all five seed families.

Each anchor is a point of a ready space (``search_spaces/<space>.yaml``) given by its sampled parameters, so it is
built exactly as a search would build it (same stem, widths and recipe); ``change`` edits the resulting spec where
a design the issue asks for is not one of that space's choices (divided attention, dense temporal convs in focal is
one of its choices and needs none). Mid-sized settings (stage depths 1, widths 16 / 32) keep one proxy training near
two minutes on one core; a wider PosMLP, conv3d and Mobile-Former spread the ladder in size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SPACES = Path(__file__).resolve().parents[2] / "search_spaces"


@dataclass(frozen=True)
class Anchor:
    name: str
    family: str
    space: str  # a ready space's file stem
    params: dict[str, Any]
    change: Callable[[dict], None] | None = field(default=None, compare=False)


def _small(prefix: str = "") -> dict[str, Any]:
    return {"s0.depth": 1, "s0.width": 16, "s1.depth": 1, "s1.width": 32} | ({"num_stages": 2} if prefix else {})


def _posmlp(arrangement: str, depth: int = 1, widths: tuple[int, int] = (16, 32)) -> dict[str, Any]:
    return {
        "s0.depth": depth,
        "s0.width": widths[0],
        "s0.posmlp.groups": 4,
        "s0.posmlp.window": 8,
        "s1.depth": depth,
        "s1.width": widths[1],
        "s1.posmlp.groups": 8,
        "s1.posmlp.window": 4,
        "shared.arrangement": arrangement,
    }


def _morph(chunks: tuple[int, int], reweight: bool) -> dict[str, Any]:
    return {
        "num_stages": 2,
        "s0.depth": 1,
        "s0.width": 16,
        "s0.morphmlp.chunk_len": chunks[0],
        "s0.morphmlp.temporal_groups": 2,
        "s0.morphmlp.reweight": reweight,
        "s1.depth": 1,
        "s1.width": 32,
        "s1.morphmlp.chunk_len": chunks[1],
        "s1.morphmlp.temporal_groups": 2,
        "s1.morphmlp.reweight": reweight,
    }


def _focal(combination: str, temporal_conv: str = "depthwise") -> dict[str, Any]:
    return {
        **_small(),
        "s0.focal.focal_levels": 2,
        "s0.focal.focal_window": 3,
        "s0.focal.temporal_conv": temporal_conv,
        "s1.focal.focal_levels": 1,
        "s1.focal.temporal_conv": temporal_conv,
        "shared.combination": combination,
    }


def _mobile_former(tokens: int, widths: tuple[int, int] = (16, 32)) -> dict[str, Any]:
    return {
        "s0.depth": 1,
        "s0.width": widths[0],
        "s0.mlp_ratio": 2.0,
        "s1.depth": 1,
        "s1.width": widths[1],
        "s1.mlp_ratio": 2.0,
        "shared.tokens": tokens,
        "shared.token_width": 32,
        "shared.kt": 3,
        "shared.factorized": False,
    }


def _vit(merge: str = "none", **merge_params: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"s0.width": 48, "s0.attention.heads": 2, "s0.merge": merge}
    params.update({f"s0.merge.{merge}.{k}": v for k, v in merge_params.items()})
    return params


def _conv(kernels: tuple[int, int], depth: int = 1, widths: tuple[int, int] = (16, 32)) -> dict[str, Any]:
    return {
        "s0.depth": depth,
        "s0.width": widths[0],
        "s0.mixer": "conv3d",
        "s0.conv3d.kernel_t": kernels[0],
        "s1.depth": depth,
        "s1.width": widths[1],
        "s1.mixer": "conv3d",
        "s1.conv3d.kernel_t": kernels[1],
    }


def _divided(spec: dict) -> None:
    spec["stages"][0]["mixer"]["options"]["space_time"] = "divided"  # token_merging.yaml searches joint only


ANCHORS: tuple[Anchor, ...] = (
    *(
        Anchor(f"posmlp_{a}", "posmlp", "posmlp", _posmlp(a))
        for a in ("parallel", "spatial_temporal", "temporal_spatial", "joint")
    ),
    Anchor("posmlp_parallel_d2_w32", "posmlp", "posmlp", _posmlp("parallel", 2, (32, 64))),
    *(
        Anchor(f"morphmlp_c{c[0]}_{'rw' if rw else 'norw'}", "morphmlp", "morphmlp", _morph(c, rw))
        for c in ((4, 8), (8, 16))
        for rw in (True, False)
    ),
    *(Anchor(f"focal_{c}", "focal", "focal", _focal(c)) for c in ("parallel", "serial", "joint3d", "spatial_only")),
    Anchor("focal_parallel_dense", "focal", "focal", _focal("parallel", "dense")),
    *(Anchor(f"mobile_former_t{t}", "mobile_former", "mobile_former", _mobile_former(t)) for t in (0, 3, 6)),
    Anchor("mobile_former_t3_w32", "mobile_former", "mobile_former", _mobile_former(3, (32, 64))),
    Anchor("vit_joint", "attention", "token_merging", _vit()),
    Anchor("vit_divided", "attention", "token_merging", _vit(), _divided),
    Anchor("vit_tome_r16", "attention", "token_merging", _vit("tome", r=16)),
    Anchor("vit_sttm_0.5", "attention", "token_merging", _vit("sttm", ratio=0.5, temporal_ratio=0.5, layers=1)),
    Anchor("vit_sttm_0.25", "attention", "token_merging", _vit("sttm", ratio=0.25, temporal_ratio=0.5, layers=1)),
    Anchor("conv3d", "conv3d", "tiny", _conv((3, 3))),
    Anchor("conv3d_late", "conv3d", "tiny", _conv((1, 3))),
    Anchor("conv3d_d2_w32", "conv3d", "tiny", _conv((3, 3), 2, (32, 64))),
    Anchor("frame2d", "frame2d", "tiny", _conv((1, 1))),
)


def load_anchor_space(anchor: Anchor):
    from explorer.space import load_space

    return load_space(SPACES / f"{anchor.space}.yaml")


def build_anchor(anchor: Anchor):
    """``(space, arch)``: the anchor's ready space and its Arch, validated as a search would build it."""
    from explorer.arch import Arch
    from explorer.models import validate_arch
    from explorer.space import arch_from_params

    space = load_anchor_space(anchor)
    arch = arch_from_params(space, anchor.params)
    if anchor.change is not None:
        spec = arch.to_dict()
        anchor.change(spec)
        arch = Arch.from_dict(spec, source=anchor.name)
    return space, validate_arch(arch)
