"""Fidelity benchmark v2: does the default proxy rank the ready spaces' architectures like a 5x longer budget?

Trains every anchor of ``anchors.py`` (26 architectures over the five seed families, built from the ready spaces)
with its space's own recipe (T-rev ``demo``; 12 epochs of batches of 16, AdamW lr 1e-3, the width-scaled init;
the search's validation split) at the proxy budget and at the reference budget (5x the epochs, same recipe
otherwise), three seeds each, one torch thread per worker process. The seed sets the weights' init and the batch
order; the data (clips and splits) are the search's. Every finished (anchor, budget, seed) is appended to ``--out``
(JSONL) and skipped on restart, so the benchmark can be stopped and resumed, on this machine or another.
``analyze.py`` turns the JSONL into the fidelity table.

    EXPLORER_CACHE=/tmp/explorer_cache nice -n 10 python experiments/proxy_fidelity/run.py --workers 2 \\
        --out experiments/proxy_fidelity/results.jsonl [--budgets proxy reference e6 e24] [--seeds 0 1 2] \\
        [--order proxy:0 proxy:1 reference:0]

Jobs run budget by budget and seed by seed in the order given, the families taking turns within each, so a
cut-short run still gives whole rankings, or a ranking over every family.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchors import ANCHORS, build_anchor  # noqa: E402

# Epochs of each budget, all with the ready spaces' recipe otherwise. Fixed numbers, not read from the spaces, so
# that rows already in the JSONL keep their meaning when the spaces' default changes: "proxy" is the 12-epoch
# budget v2 was designed around, "reference" 5x it; the others trace the trade-off curve (tau against proxy cost).
BUDGET_EPOCHS = {"e3": 3, "e6": 6, "proxy": 12, "e24": 24, "e36": 36, "reference": 60}
_DATA: dict[str, object] = {}


def budget_epochs(budget: str) -> int:
    return BUDGET_EPOCHS[budget]


def _done(out: Path) -> set[tuple[str, str, int]]:
    if not out.exists():
        return set()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(r["arch"], r["budget"], r["seed"]) for r in rows}


def _data(space):
    from explorer.data import load_task, with_validation
    from explorer.search import VAL_FRACTION

    key = space.task.model_dump_json()
    if key not in _DATA:
        _DATA[key] = with_validation(load_task(space.task), VAL_FRACTION, seed=space.task.seed)
    return _DATA[key]


def run_job(job: tuple[str, str, int, str]) -> dict:
    """Train one anchor at one budget and seed, exactly as a search trial of its space (one thread)."""
    import torch

    from explorer.models import build
    from explorer.search.trial import train_config
    from explorer.train import train_epochs

    torch.set_num_threads(1)
    name, budget, seed, device = job
    anchor = next(a for a in ANCHORS if a.name == name)
    space, arch = build_anchor(anchor)
    epochs = budget_epochs(budget)
    cfg = dataclasses.replace(train_config(space, threads=1), epochs=epochs, seed=seed, device=device)
    torch.manual_seed(seed)
    model = build(arch)
    params = sum(p.numel() for p in model.parameters())
    started = time.perf_counter()
    results = list(train_epochs(model, _data(space), cfg))
    return {
        "arch": name,
        "family": anchor.family,
        "space": anchor.space,
        "budget": budget,
        "seed": seed,
        "epochs": epochs,
        "params": params,
        "accuracy": results[-1].accuracy,
        "test_accuracy": results[-1].test_accuracy,
        "curve": [round(r.accuracy, 4) for r in results],
        "test_curve": [round(r.test_accuracy, 4) for r in results],
        "train_loss": [round(r.train_loss, 4) for r in results],
        "seconds": round(time.perf_counter() - started, 1),
        "device": device,
        "arch_hash": arch.content_hash,
    }


def interleaved_names(only: list[str] | None = None) -> list[str]:
    """The anchors, one of each family in turn (the first of every family, then the second, ...), so that a run cut
    short at any point has trained every family about equally."""
    by_family: dict[str, list[str]] = {}
    for anchor in ANCHORS:
        if only is None or anchor.name in only:
            by_family.setdefault(anchor.family, []).append(anchor.name)
    rounds = itertools.zip_longest(*by_family.values())
    return [name for names in rounds for name in names if name is not None]


def jobs(budgets: list[str], seeds: list[int], only: list[str] | None) -> list[tuple[str, str, int]]:
    names = interleaved_names(only)
    return [(name, budget, seed) for budget in budgets for seed in seeds for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.jsonl"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budgets", nargs="+", default=["proxy", "reference"], choices=list(BUDGET_EPOCHS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--order",
        nargs="+",
        metavar="BUDGET:SEED",
        default=None,
        help="run these (budget, seed) waves first, in this order, e.g. proxy:0 proxy:1 reference:0",
    )
    parser.add_argument("--only", nargs="*", help="restrict to these anchors")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="train on this device (cuda: bf16 autocast, several workers may share one GPU)",
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = _done(args.out)
    todo = [j for j in jobs(args.budgets, args.seeds, args.only) if j not in done]
    if args.order:  # the named waves first, the rest after in the usual order
        waves = [(b, int(s)) for b, s in (w.split(":") for w in args.order)]
        rank = {wave: i for i, wave in enumerate(waves)}
        todo.sort(key=lambda j: rank.get((j[1], j[2]), len(waves)))  # stable: families keep taking turns
    print(f"{len(todo)} trainings to run ({len(done)} already in {args.out})", flush=True)
    from explorer.data import load_task

    load_task("trev", "demo", seed=0)  # generate the clips once, before the workers read them from the cache
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=8) as pool:
        # each line is written as soon as its training ends
        for row in pool.imap_unordered(run_job, [(*job, args.device) for job in todo]):
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                f"{row['arch']:24s} {row['budget']:9s} s{row['seed']}: val {row['accuracy']:.3f} "
                f"test {row['test_accuracy']:.3f} in {row['seconds']}s",
                flush=True,
            )


if __name__ == "__main__":
    main()
