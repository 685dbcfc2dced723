"""Training-seed noise of the table: re-train a few architectures with other seeds (same data, same recipe).

    EXPLORER_CACHE=/tmp/i7_cache nice -n 10 .venv/bin/python experiments/search_efficiency/seed_noise.py --seeds 1 2

Prints one JSON line per (architecture, seed) with its held-out accuracy; compare with ``table.csv`` (seed 0).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular  # noqa: E402

# Four points of the true front (README): the two MorphMLP-stage-1 knees, a PosMLP stage 0 and the most accurate.
FRONT = [
    {"s0.mixer": "conv3d", "s0.conv3d.kernel_t": 1, "s0.width": 16, "s1.mixer": "morphmlp", "s1.width": 32},
    {"s0.mixer": "posmlp", "s0.width": 16, "s1.mixer": "morphmlp", "s1.width": 32},
    {"s0.mixer": "conv3d", "s0.conv3d.kernel_t": 1, "s0.width": 16, "s1.mixer": "morphmlp", "s1.width": 64},
    {"s0.mixer": "posmlp", "s0.width": 32, "s1.mixer": "morphmlp", "s1.width": 64},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    args = parser.parse_args()

    import torch

    from explorer.data import load_task
    from explorer.space import load_space

    torch.set_num_threads(1)
    space = load_space(tabular.SPACE_FILE)
    data = load_task(space.task.name, space.task.preset, seed=space.task.seed)
    every = tabular.enumerate_params(space)
    for part in FRONT:
        params = [p for p in every if all(p.get(k) == v for k, v in part.items())]
        if len(params) != 1:
            raise SystemExit(f"{part} matches {len(params)} architectures of {tabular.SPACE_FILE}, expected 1")
        for seed in args.seeds:
            row = tabular.measure_arch(
                space,
                params[0],
                data,
                epochs=space.budget.epochs,
                batch_size=space.budget.batch_size,
                lr=space.budget.lr,
                seed=seed,
            )
            print(
                json.dumps(
                    {"params": params[0], "seed": seed, "accuracy": row["accuracy"], "arch_hash": row["arch_hash"]}
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
