"""Which proxy-training recipe lets small models learn T-rev (demo preset) in a few CPU epochs?

Runs every (model, lr, epochs, batch) combination in its own process with one torch thread (as a search trial
does) and prints held-out top-1 per epoch. Usage:

    python experiments/demo_recipe/sweep.py --jobs 2            # all combinations, 2 at a time
    python experiments/demo_recipe/sweep.py --models conv3d_tiny --lrs 0.003 --epochs 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from concurrent.futures import ProcessPoolExecutor


def run_one(job: tuple[str, float, int, int, float]) -> dict:
    import torch

    from explorer.data import load_task
    from explorer.models import preset
    from explorer.train import TrainConfig, train_arch

    name, lr, epochs, batch, wd = job
    torch.set_num_threads(1)
    data = load_task("trev", "demo", seed=0)
    start = time.perf_counter()
    results = train_arch(
        preset(name), data, TrainConfig(epochs=epochs, lr=lr, batch_size=batch, weight_decay=wd, threads=1)
    )
    return {
        "model": name,
        "lr": lr,
        "epochs": epochs,
        "batch": batch,
        "wd": wd,
        "acc": [round(r.accuracy, 3) for r in results],
        "loss": [round(r.train_loss, 3) for r in results],
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["conv3d_tiny", "frame2d_tiny", "posmlp_tiny"])
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--epochs", nargs="+", type=int, default=[3, 6])
    p.add_argument("--batches", nargs="+", type=int, default=[32])
    p.add_argument("--wds", nargs="+", type=float, default=[0.05])
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    from explorer.data import load_task

    load_task("trev", "demo", seed=0)  # generate once, before the workers read the cache
    jobs = list(itertools.product(args.models, args.lrs, args.epochs, args.batches, args.wds))
    with ProcessPoolExecutor(args.jobs) as pool:
        for row in pool.map(run_one, jobs):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
