"""CPU forward speed of each family's stage-1 block at the reference shapes (batch 1, fp32, inference).

Prints median and IQR (ms), fvcore GFLOPs, effective GFLOP/s and, as a same-run baseline that absorbs the
machine's speed and load, the GFLOP/s of a plain Linear C→C over the same tokens (``vs linear``). The released
implementations run at about PosMLP-Video block 14.5, MorphMLP block 20 and focal modulation 16 GFLOP/s on a
2-core machine with 2 threads (reference_numbers.json). Usage:

    python experiments/block_speed/bench.py                 # 2 threads, 7 timed runs each
    python experiments/block_speed/bench.py --threads 1 --repeats 11
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn as nn

from explorer.cost import count_flops, pinned_threads

REFERENCE_GFLOPS_PER_S = {"posmlp_block": 14.5, "morphmlp_block": 20.0, "focal_modulation": 16.0}


def _posmlp():
    from explorer.blocks.posmlp import PosMLPParallelBlock

    return PosMLPParallelBlock(72, (16, 56, 56), window=14, groups=8), (1, 16, 56, 56, 72)


def _morphmlp():
    from explorer.blocks.morphmlp import MorphMLPBlock

    return MorphMLPBlock(112, (8, 56, 56), chunk_len=14, temporal_groups=8, mlp_ratio=3.0), (1, 8, 56, 56, 112)


def _focal_block():
    from explorer.blocks import BlockContext, get_mixer

    entry = get_mixer("focal")
    return entry.build(BlockContext(96, (8, 56, 56), 4.0, 0.0), entry.options()), (1, 8, 56, 56, 96)


def _focal_modulation():
    block, shape = _focal_block()
    return block.modulations[0], shape


def _attention_block():
    from explorer.blocks import BlockContext, get_mixer

    entry = get_mixer("attention")
    return entry.build(BlockContext(384, (8, 14, 14), 4.0, 0.0), entry.options(heads=6)), (1, 1568, 384)


BLOCKS: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "posmlp_block": _posmlp,
    "morphmlp_block": _morphmlp,
    "focal_modulation": _focal_modulation,
    "focal_block": _focal_block,
}


def time_ms(fn: Callable[[], object], warmup: int, repeats: int) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    q = statistics.quantiles(times, n=4)
    return statistics.median(times), q[2] - q[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--blocks", nargs="+", default=list(BLOCKS), choices=list(BLOCKS))
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.repeats} timed runs after {args.warmup} warm-up")
    print(
        f"{'block':18s} {'GFLOPs':>8s} {'median ms':>10s} {'IQR ms':>8s} {'GFLOP/s':>8s} {'release':>8s} "
        f"{'linear GFLOP/s':>15s} {'vs linear':>9s}"
    )
    for name in args.blocks:
        module, shape = BLOCKS[name]()
        module.eval()
        x = torch.randn(shape)
        gflops = count_flops(module, x) / 1e9
        dim = shape[-1]
        linear = nn.Linear(dim, dim)
        linear_gflops = x.numel() * dim / 1e9
        with pinned_threads(args.threads), torch.inference_mode():
            ms, iqr = time_ms(lambda: module(x), args.warmup, args.repeats)
            lin_ms, _ = time_ms(lambda: linear(x), args.warmup, args.repeats)
        rate, lin_rate = gflops / (ms / 1e3), linear_gflops / (lin_ms / 1e3)
        ref = REFERENCE_GFLOPS_PER_S.get(name)
        print(
            f"{name:18s} {gflops:8.4f} {ms:10.1f} {iqr:8.1f} {rate:8.1f} {ref or float('nan'):8.1f} "
            f"{lin_rate:15.1f} {rate / lin_rate:9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
