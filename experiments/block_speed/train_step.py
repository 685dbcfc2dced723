"""Training step (forward + backward) of our blocks beside the released implementations, in one process.

Each released block is loaded from a checkout of its official repository (the path is the argument), given our
block's weights (random, so that no zero-initialised branch hides a difference), and checked to compute the same
outputs and input gradients before anything is timed. Each round times one step of each, alternating which goes
first, at one torch thread; the table gives medians over the rounds and their ratio (release time ÷ ours: above 1,
ours is faster). Usage, from the repository root (any checkout may be left out):

    git clone https://github.com/TalalWasim/Video-FocalNets /tmp/Video-FocalNets
    git clone https://github.com/zhouds1918/PosMLP_Video /tmp/PosMLP_Video
    git clone https://github.com/MTLab/MorphMLP /tmp/MorphMLP
    .venv/bin/python experiments/block_speed/train_step.py --focalnets /tmp/Video-FocalNets \
        --posmlp /tmp/PosMLP_Video --morphmlp /tmp/MorphMLP --repeats 9

Only one file of each checkout is read (``classification/videofocalnet.py``, ``slowfast/models/posmlp.py``,
``slowfast/models/morphmlp.py``); they need timm and einops, which the project has. The SlowFast-based files import
their package's model registry, which is given a stand-in here rather than importing the SlowFast package.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from explorer.blocks import BlockContext, get_mixer, parse_options  # noqa: E402

Shape = tuple[int, int, int, int, int]  # (B, T, H, W, C)


@dataclass(frozen=True)
class Family:
    name: str
    release_file: str  # inside the checkout
    shapes: list[tuple[str, Shape]]  # the released stage-1 shape, and the proxy's stages (16 clips of 8x32x32)
    ours: Callable[[Shape], nn.Module]
    release: Callable[[types.ModuleType, Shape], nn.Module]
    copy: Callable[[nn.Module, nn.Module], None]  # our weights into the release's block
    flat_input: bool  # the release's block takes (B·T, H·W, C) instead of (B, T, H, W, C)


def load_release(path: Path, name: str) -> types.ModuleType:
    """The release's module, executed from its file; a relative import of its package's model registry (SlowFast's
    ``from .build import MODEL_REGISTRY``) is given a stand-in whose ``register`` leaves the class as it is."""
    if not path.is_file():
        raise SystemExit(f"{path}: not found (pass the root of the official checkout)")
    source = path.read_text().replace("from .build import MODEL_REGISTRY", "")
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.MODEL_REGISTRY = types.SimpleNamespace(register=lambda: lambda cls: cls)
    sys.modules[name] = module  # timm's register_model decorator looks the module up there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's deprecated import paths
        exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _copy_pairs(pairs: list[tuple[nn.Module, nn.Module]]) -> None:
    for theirs, mine in pairs:
        theirs.weight.copy_(mine.weight)
        theirs.bias.copy_(mine.bias)


# ---------------------------------------------------------------------------------------------- Video-FocalNets


def focal_ours(shape: Shape) -> nn.Module:
    """Our released-form block: parallel modulation, dense temporal convs, L = 2, w = 3, MLP ratio 4."""
    _, t, h, w, c = shape
    opts = parse_options("focal", {"combination": "parallel", "focal_levels": 2, "focal_window": 3})
    return get_mixer("focal").build(BlockContext(c, (t, h, w), 4.0, 0.0), opts)


def focal_release(module: types.ModuleType, shape: Shape) -> nn.Module:
    _, t, h, w, c = shape
    block = module.VideoFocalNetBlock(c, (h, w), mlp_ratio=4.0, focal_level=2, focal_window=3, num_frames=t)
    block.H, block.W = h, w
    return block


@torch.no_grad()
def focal_copy(ours: nn.Module, release: nn.Module) -> None:
    """Its 1x1 convs are our Linears, its temporal Conv1d our (k, 1) Conv2d."""
    mod, rel = ours.modulations[0], release.modulation
    spatial, temporal = mod.contexts
    _copy_pairs(
        [
            (rel.f, mod.f),
            (rel.f_temporal, mod.f_branches[0]),
            (rel.proj, mod.proj),
            (release.norm1, ours.norms[0]),
            (release.norm2, ours.norm2),
            (release.mlp.fc1, ours.mlp.fc1),
            (release.mlp.fc2, ours.mlp.fc2),
        ]
    )
    for level in range(2):
        rel.focal_layers[level][0].weight.copy_(spatial.focal_layers[level][0].weight)
        rel.focal_layers_temporal[level][0].weight.copy_(temporal.focal_layers[level][0].weight.squeeze(-1))
    for conv, linear in ((rel.h, spatial.h), (rel.h_temporal, temporal.h)):
        conv.weight.copy_(linear.weight.reshape(conv.weight.shape))
        conv.bias.copy_(linear.bias)


# ----------------------------------------------------------------------------------------------------- MorphMLP


def morph_ours(shape: Shape) -> nn.Module:
    """Our block as MorphMLP's first stage has it: chunk length 14 (8 at proxy size), G = T' = 8, MLP ratio 3."""
    _, t, h, w, c = shape
    opts = parse_options("morphmlp", {"chunk_len": 14 if h == 56 else 8, "temporal_groups": 8})
    return get_mixer("morphmlp").build(BlockContext(c, (t, h, w), 3.0, 0.0), opts)


def morph_release(module: types.ModuleType, shape: Shape) -> nn.Module:
    _, _, h, _, c = shape
    return module.PermutatorBlock(c, 14 if h == 56 else 8, mlp_ratio=3.0, qkv_bias=True, mlp_fn=module.MorphFC_S)


@torch.no_grad()
def morph_copy(ours: nn.Module, release: nn.Module) -> None:
    s, t = ours.fc_s, ours.fc_t
    _copy_pairs(
        [
            (release.t_norm1, ours.norm_t),
            (release.t_fc.mlp_t, t.mix_t),
            (release.t_fc.proj, t.proj),
            (release.norm1, ours.norm1),
            (release.fc.mlp_h, s.mix_h.fc),
            (release.fc.mlp_w, s.mix_w.fc),
            (release.fc.mlp_c, s.mix_c),
            (release.fc.reweight.fc1, s.reweight.fc1),
            (release.fc.reweight.fc2, s.reweight.fc2),
            (release.fc.proj, s.proj),
            (release.norm2, ours.norm2),
            (release.mlp.fc1, ours.mlp.fc1),
            (release.mlp.fc2, ours.mlp.fc2),
        ]
    )


# ------------------------------------------------------------------------------------------------ PosMLP-Video


def _posmlp_window_groups(shape: Shape) -> tuple[int, int]:
    """Window and groups: 14 and 8 at the released stage-1 shape, the proxy preset's 8 / 4 and 4 / 8 otherwise."""
    h = shape[2]
    return {56: (14, 8), 8: (8, 4), 4: (4, 8)}[h]


def posmlp_ours(shape: Shape) -> nn.Module:
    _, t, h, w, c = shape
    window, groups = _posmlp_window_groups(shape)
    opts = parse_options("posmlp", {"arrangement": "parallel", "window": window, "groups": groups})
    return get_mixer("posmlp").build(BlockContext(c, (t, h, w), 4.0, 0.0), opts)


def posmlp_release(module: types.ModuleType, shape: Shape) -> nn.Module:
    _, t, _, _, c = shape
    window, groups = _posmlp_window_groups(shape)
    return module.PermutatorBlock(
        c, gamma=groups, win_size=window, win_size_t=t, act_layer=nn.GELU, norm_layer=nn.LayerNorm
    )


@torch.no_grad()
def posmlp_copy(ours: nn.Module, release: nn.Module) -> None:
    """Its relative-position table and token bias are ours (the same Swin index, channel c in group c mod g)."""
    for mine, theirs in ((ours.spatial, release.fc.encoder), (ours.temporal, release.t_fc.encoder)):
        _copy_pairs([(theirs.norm, mine.norm), (theirs.fc1, mine.fc1), (theirs.fc2, mine.fc2)])
        pos = theirs.gate_unit.pos
        pos.window_relative_position_bias_table.copy_(mine.unit.mix.table)
        pos.token_proj_n_bias.copy_(mine.unit.mix.token_bias.reshape(pos.token_proj_n_bias.shape))


PROXY: list[tuple[str, Shape]] = [("proxy stage 1", (16, 8, 8, 8, 32)), ("proxy stage 2", (16, 8, 4, 4, 64))]
FAMILIES = {
    "focalnets": Family(
        "Video-FocalNets block",
        "classification/videofocalnet.py",
        [("released stage 1", (1, 8, 56, 56, 96)), *PROXY],
        focal_ours,
        focal_release,
        focal_copy,
        flat_input=True,
    ),
    "posmlp": Family(
        "PosMLP-Video block",
        "slowfast/models/posmlp.py",
        [("released stage 1", (1, 16, 56, 56, 72)), *PROXY],
        posmlp_ours,
        posmlp_release,
        posmlp_copy,
        flat_input=False,
    ),
    "morphmlp": Family(
        "MorphMLP block",
        "slowfast/models/morphmlp.py",
        [("released stage 1", (1, 8, 56, 56, 112)), PROXY[0]],  # stage 2 of the proxy is the full-frame form
        morph_ours,
        morph_release,
        morph_copy,
        flat_input=False,
    ),
}


def steps(family: Family, ours: nn.Module, release: nn.Module, shape: Shape):
    """One training step of each (forward, backward of a fixed random output gradient, as the layers above would
    send) on the same clip, and the largest differences of their outputs and input gradients."""
    b, t, h, w, c = shape
    x, grad_out = torch.randn(shape), torch.randn(shape)

    def step_of(block: nn.Module, layout: tuple[int, ...]) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
        def step() -> tuple[torch.Tensor, torch.Tensor]:  # output and input gradient, back in (B, T, H, W, C)
            inp = x.reshape(layout).clone().requires_grad_(True)
            out = block(inp)
            out.backward(grad_out.reshape(layout))
            block.zero_grad(set_to_none=True)
            return out.detach().reshape(shape), inp.grad.reshape(shape)

        return step

    ours_step = step_of(ours, shape)
    release_step = step_of(release, (b * t, h * w, c) if family.flat_input else shape)
    out_a, grad_a = ours_step()
    out_b, grad_b = release_step()
    return ours_step, release_step, (out_a - out_b).abs().max().item(), (grad_a - grad_b).abs().max().item()


def timed(step: Callable) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1000


def compare(family: Family, module: types.ModuleType, repeats: int, warmup: int) -> None:
    for name, shape in family.shapes:
        ours, release = family.ours(shape), family.release(module, shape)
        with torch.no_grad():
            for p in ours.parameters():  # no zero-initialised branch may hide a difference
                p.normal_(0, 0.05)
        family.copy(ours, release)
        ours_step, release_step, d_out, d_grad = steps(family, ours, release, shape)
        if d_out > 1e-4 or d_grad > 1e-4:
            raise SystemExit(f"{family.name}, {name}: the blocks differ (output {d_out:.2e}, input grad {d_grad:.2e})")
        for _ in range(warmup):
            ours_step(), release_step()
        mine, theirs = [], []
        for r in range(repeats):  # alternate which goes first, so a slow spell hits both alike
            pair = (ours_step, release_step) if r % 2 == 0 else (release_step, ours_step)
            times = {fn: timed(fn) for fn in pair}
            mine.append(times[ours_step])
            theirs.append(times[release_step])
        m, t = statistics.median(mine), statistics.median(theirs)
        print(f"| {family.name} | {name} {shape} | {d_out:.1e} / {d_grad:.1e} | {m:.1f} | {t:.1f} | **{t / m:.2f}×** |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in FAMILIES:
        parser.add_argument(f"--{key}", type=Path, help=f"root of the official {FAMILIES[key].name} checkout")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (each: one step of each, alternating)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    chosen = {key: getattr(args, key) for key in FAMILIES if getattr(args, key) is not None}
    if not chosen:
        parser.error(f"name at least one checkout: {', '.join('--' + k for k in FAMILIES)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} rounds after {args.warmup} warm-up")
    print(
        "| block | shape (B, T, H, W, C) | max abs diff: output / input grad | ours ms | release ms | release ÷ ours |"
    )
    print("|---|---|---|---|---|---|")
    for key, checkout in chosen.items():
        family = FAMILIES[key]
        compare(family, load_release(checkout / family.release_file, f"{key}_release"), args.repeats, args.warmup)


if __name__ == "__main__":
    main()
