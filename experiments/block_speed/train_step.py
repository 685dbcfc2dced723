"""Training step (forward + backward) of our Video-FocalNets block beside the released implementation, in one process.

The released block is loaded from a checkout of the official repository (its path is the argument), given our
block's weights, and checked to compute the same outputs and input gradients before anything is timed. Each round
times one step of each, alternating, at one torch thread; the table gives medians over the rounds and their ratio
(release time ÷ ours: above 1, ours is faster). Usage, from the repository root:

    git clone https://github.com/TalalWasim/Video-FocalNets /tmp/Video-FocalNets
    .venv/bin/python experiments/block_speed/train_step.py --focalnets /tmp/Video-FocalNets --repeats 9

Only ``classification/videofocalnet.py`` of the checkout is read; it needs timm and einops, which the project has.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from explorer.blocks import BlockContext, get_mixer, parse_options  # noqa: E402

# (name, batch, frames, height, width, channels): the released stage-1 shape, and the proxy's two stages (16 clips
# of 8x32x32 behind the patch-4 stem)
SHAPES = [
    ("released stage 1", 1, 8, 56, 56, 96),
    ("proxy stage 1", 16, 8, 8, 8, 32),
    ("proxy stage 2", 16, 8, 4, 4, 64),
]


def load_release(checkout: Path) -> ModuleType:
    path = checkout / "classification" / "videofocalnet.py"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (pass the root of a Video-FocalNets checkout)")
    spec = importlib.util.spec_from_file_location("videofocalnet_release", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its timm register_model decorator looks the module up there
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's deprecated import paths
        spec.loader.exec_module(module)
    return module


def ours_block(dim: int, frames: int, h: int, w: int) -> nn.Module:
    """Our released-form block: parallel modulation, dense temporal convs, L = 2, w = 3, MLP ratio 4."""
    opts = parse_options("focal", {"combination": "parallel", "focal_levels": 2, "focal_window": 3})
    return get_mixer("focal").build(BlockContext(dim, (frames, h, w), 4.0, 0.0), opts)


def release_block(module: ModuleType, dim: int, frames: int, h: int, w: int) -> nn.Module:
    block = module.VideoFocalNetBlock(dim, (h, w), mlp_ratio=4.0, focal_level=2, focal_window=3, num_frames=frames)
    block.H, block.W = h, w
    return block


@torch.no_grad()
def copy_weights(ours: nn.Module, release: nn.Module) -> None:
    """Give the release our weights: its 1x1 convs are our Linears, its temporal Conv1d our (k, 1) Conv2d."""
    mod, rel = ours.modulations[0], release.modulation
    spatial, temporal = mod.contexts
    pairs = [
        (rel.f, mod.f),
        (rel.f_temporal, mod.f_branches[0]),
        (rel.proj, mod.proj),
        (release.norm1, ours.norms[0]),
        (release.norm2, ours.norm2),
        (release.mlp.fc1, ours.mlp.fc1),
        (release.mlp.fc2, ours.mlp.fc2),
    ]
    for theirs, mine in pairs:
        theirs.weight.copy_(mine.weight)
        theirs.bias.copy_(mine.bias)
    for level in range(2):
        rel.focal_layers[level][0].weight.copy_(spatial.focal_layers[level][0].weight)
        rel.focal_layers_temporal[level][0].weight.copy_(temporal.focal_layers[level][0].weight.squeeze(-1))
    for conv, linear in ((rel.h, spatial.h), (rel.h_temporal, temporal.h)):
        conv.weight.copy_(linear.weight.reshape(conv.weight.shape))
        conv.bias.copy_(linear.bias)


def steps(ours: nn.Module, release: nn.Module, shape: tuple[int, ...]) -> tuple[Callable, Callable, float, float]:
    """One training step of each (forward, backward of a fixed random output gradient, as the layers above would
    send) on the same clip, and the largest differences of their outputs and input gradients."""
    b, t, h, w, c = shape
    x, grad_out = torch.randn(b, t, h, w, c), torch.randn(b, t, h, w, c)

    def ours_step() -> tuple[torch.Tensor, torch.Tensor]:
        inp = x.clone().requires_grad_(True)
        out = ours(inp)
        out.backward(grad_out)
        ours.zero_grad(set_to_none=True)
        return out.detach(), inp.grad

    def release_step() -> tuple[torch.Tensor, torch.Tensor]:
        inp = x.reshape(b * t, h * w, c).clone().requires_grad_(True)
        out = release(inp)
        out.backward(grad_out.reshape(b * t, h * w, c))
        release.zero_grad(set_to_none=True)
        return out.detach().reshape(b, t, h, w, c), inp.grad.reshape(b, t, h, w, c)

    out_a, grad_a = ours_step()
    out_b, grad_b = release_step()
    return ours_step, release_step, (out_a - out_b).abs().max().item(), (grad_a - grad_b).abs().max().item()


def timed(step: Callable) -> float:
    start = time.perf_counter()
    step()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--focalnets", type=Path, required=True, help="root of a Video-FocalNets checkout")
    parser.add_argument("--repeats", type=int, default=9, help="timed rounds (each: one step of each, alternating)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = load_release(args.focalnets)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} rounds after {args.warmup} warm-up")
    print("| shape (B, T, H, W, C) | max abs diff: output / input grad | ours ms | release ms | release ÷ ours |")
    print("|---|---|---|---|---|")
    for name, *shape in SHAPES:
        b, t, h, w, c = shape
        ours = ours_block(c, t, h, w)
        release = release_block(module, c, t, h, w)
        copy_weights(ours, release)
        ours_step, release_step, d_out, d_grad = steps(ours, release, tuple(shape))
        if d_out > 1e-4 or d_grad > 1e-4:
            raise SystemExit(f"{name}: the blocks differ (output {d_out:.2e}, input grad {d_grad:.2e})")
        for _ in range(args.warmup):
            ours_step(), release_step()
        mine, theirs = [], []
        for r in range(args.repeats):  # alternate which goes first, so a slow spell hits both alike
            pair = (ours_step, release_step) if r % 2 == 0 else (release_step, ours_step)
            times = {fn: timed(fn) for fn in pair}
            mine.append(times[ours_step])
            theirs.append(times[release_step])
        m, t_ = statistics.median(mine), statistics.median(theirs)
        print(f"| {name} {tuple(shape)} | {d_out:.1e} / {d_grad:.1e} | {m:.1f} | {t_:.1f} | **{t_ / m:.2f}×** |")


if __name__ == "__main__":
    main()
