"""Training-loop speed, old code vs new code, in one run: training clips/s per core and achieved GFLOP/s.

Each measurement is one process at one torch thread that trains a tiny preset on T-rev `demo` (with the search's
validation split) for ``--epochs`` epochs and times the whole loop, evaluation included (as a search trial spends
it). The baseline is another checkout of this repository (e.g. ``git worktree add /tmp/old <commit>``): its
``explorer`` package is put first on ``PYTHONPATH``, so both sides run in the same environment. As the same-run
reference for the machine's speed and load, a plain ``Linear(64, 64)`` training step over the token count of a
batch's first stage (32 × 8 × 8 × 8 tokens) is timed in every process too.

    git worktree add /tmp/old 6c57e37
    EXPLORER_CACHE=/tmp/pr/cache .venv/bin/python experiments/proxy_recipe/loop_speed.py --baseline /tmp/old

Sides alternate (baseline, new, baseline, new, ...) so slow drifts of the machine hit both; the table shows medians
of ``--repeats`` runs and the new/old ratio of the medians. Training GFLOP/s counts 3× the forward (fvcore, the
papers' convention: one multiply-add = one FLOP) for every training clip and 1× for every evaluated clip.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

MODELS = ("conv3d_tiny", "posmlp_tiny", "focal_conv_stem", "mobile_former_tiny")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_WORKER = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import torch
import torch.nn as nn
import torch.nn.functional as F
torch.set_num_threads(1)
import explorer
from diagnose import MODELS
from explorer.arch import Arch
from explorer.cost import count_flops
from explorer.data import with_validation
from explorer.data.tasks import TaskConfig, load_task
from explorer.models import build
from explorer.train import TrainConfig, train_epochs

def linear_gflops_per_s(tokens=32 * 8 * 8 * 8, width=64, steps=10):
    layer = nn.Linear(width, width)
    x = torch.randn(tokens, width)
    for _ in range(2):
        layer(x).sum().backward()
    start = time.perf_counter()
    for _ in range(steps):
        layer(x).sum().backward()
    return 3 * tokens * width * width * steps / (time.perf_counter() - start) / 1e9

job = json.loads(sys.argv[1])
data = with_validation(load_task(TaskConfig(name="trev", preset="demo", seed=0)), 0.2, seed=0)
spec = MODELS[job["model"]]()
spec["input"].update(num_classes=data.num_classes)
arch = Arch.from_dict(spec)
torch.manual_seed(job["seed"])
model = build(arch)
flops = count_flops(model, torch.zeros(1, 3, 8, 32, 32))
reference = linear_gflops_per_s()
cfg = TrainConfig(epochs=job["epochs"], seed=job["seed"], threads=1, **job["recipe"])
start = time.perf_counter()
results = list(train_epochs(model, data, cfg))
seconds = time.perf_counter() - start
trained = (len(data.train_x) // cfg.batch_size) * cfg.batch_size * cfg.epochs
evaluated = (len(data.val_x) + len(data.test_x)) * cfg.epochs
print(json.dumps({{"explorer": explorer.__file__, "seconds": seconds, "clips_per_s": trained / seconds,
                  "gflops_per_s": (3 * trained + evaluated) * flops / seconds / 1e9, "linear_gflops_per_s": reference,
                  "val": results[-1].accuracy, "test": results[-1].test_accuracy}}))
"""


def measure(checkout: Path, model: str, epochs: int, seed: int, recipe: dict) -> dict:
    """One training run in a fresh process whose ``explorer`` comes from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    job = json.dumps({"model": model, "epochs": epochs, "seed": seed, "recipe": recipe})
    out = subprocess.run(
        [sys.executable, "-c", _WORKER.format(here=str(HERE)), job],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{model} in {checkout} failed:\n{out.stderr[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(row["explorer"]).resolve().is_relative_to(checkout.resolve()):
        raise RuntimeError(f"{checkout} did not shadow the installed explorer ({row['explorer']})")
    return row


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the old code")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model names of diagnose.MODELS")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", default="{}", help="TrainConfig overrides as JSON, the same for both sides")
    args = parser.parse_args()
    recipe = json.loads(args.recipe)
    print(
        f"T-rev demo, {args.epochs} epoch(s), seed {args.seed}, recipe {recipe or 'default'}, one thread; "
        f"medians of {args.repeats} runs per side"
    )
    print("| model | side | clips/s | training GFLOP/s | plain Linear GFLOP/s | ratio to Linear | val | test |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for _ in range(args.repeats):
            runs["old"].append(measure(args.baseline, model, args.epochs, args.seed, recipe))
            runs["new"].append(measure(ROOT, model, args.epochs, args.seed, recipe))
        for side, rows in runs.items():
            speed, linear = _median(rows, "gflops_per_s"), _median(rows, "linear_gflops_per_s")
            print(
                f"| {model} | {side} | {_median(rows, 'clips_per_s'):.0f} | {speed:.2f} | {linear:.2f} | "
                f"{speed / linear:.2f} | {rows[0]['val']:.1%} | {rows[0]['test']:.1%} |",
                flush=True,
            )
        ratio = _median(runs["new"], "clips_per_s") / _median(runs["old"], "clips_per_s")
        print(f"| {model} | **new / old** | **{ratio:.2f}×** | | | | | |", flush=True)


if __name__ == "__main__":
    main()
