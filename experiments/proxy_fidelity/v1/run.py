"""Proxy-fidelity benchmark: does the 3-epoch demo proxy rank architectures like a 5x longer reference budget?

Trains every anchor architecture on T-rev ``demo`` (2,000 + 500 clips, 8x32x32) at the proxy budget (3 epochs, the
budget of ``search_spaces/tiny.yaml``) and at the reference budget (15 epochs), two seeds each, one torch thread per
worker. Every finished (arch, budget, seed) is appended to ``--out`` (JSONL) and skipped on restart, so the run can be
stopped and resumed. ``analyze.py`` turns the JSONL into the fidelity table (docs/proxy_tasks.md, fidelity metrics).

    nice -n 10 python experiments/proxy_fidelity/v1/run.py --workers 2 --out /tmp/fidelity/results.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import time
from pathlib import Path

BUDGETS = {"proxy": 3, "reference": 15}
SEEDS = (0, 1)


def _narrow(spec: dict, widths: tuple[int, ...]) -> dict:
    """The same design at other stage widths (the anchors are narrowed so 432 trainings fit a 2-core CPU)."""
    spec = copy.deepcopy(spec)
    for stage, width in zip(spec["stages"], widths):
        stage["width"] = width
    return spec


def anchor_specs() -> dict[str, dict]:
    """Twelve anchors over the seed families: order-blind and temporal convs, PosMLP, MorphMLP, focal modulation,
    attention with and without token merging. Mobile-Former is left out: even at widths 16/32 with 2 global tokens
    one epoch costs ~37 s on one core, a quarter of the whole benchmark's CPU time."""
    from explorer.blocks import preset_spec

    conv = preset_spec("conv3d_tiny")
    late = _narrow(conv, (16, 32))
    late["stages"][0]["mixer"]["options"]["kernel_t"] = 1  # temporal mixing only in the last stage
    early = _narrow(conv, (16, 32))
    early["stages"][1]["mixer"]["options"]["kernel_t"] = 1  # temporal mixing only in the first stage
    posmlp_deep = _narrow(preset_spec("posmlp_tiny"), (16, 32))
    posmlp_deep["stages"][1]["depth"] = 2
    late_wide = copy.deepcopy(conv)
    late_wide["stages"][0]["mixer"]["options"]["kernel_t"] = 1
    vit = preset_spec("vit_tiny_sttm")
    vit["stages"][0].update(depth=2, width=32)
    vit["stages"][0]["mixer"]["options"]["heads"] = 2
    vit_plain = copy.deepcopy(vit)
    del vit_plain["stages"][0]["merge"]
    return {
        "frame2d_w16": _narrow(preset_spec("frame2d_tiny"), (16, 32)),
        "frame2d_w32": preset_spec("frame2d_tiny"),
        "conv3d_w16": _narrow(conv, (16, 32)),
        "conv3d_late_w16": late,
        "conv3d_early_w16": early,
        "posmlp_w16": _narrow(preset_spec("posmlp_tiny"), (16, 32)),
        "posmlp_d2_w16": posmlp_deep,
        "morphmlp_w16": _narrow(preset_spec("morphmlp_tiny"), (16, 32)),
        "focal_w16": _narrow(preset_spec("focal_tiny"), (16, 32)),
        "conv3d_late_w32": late_wide,
        "vit_d2_w32": vit_plain,
        "vit_d2_w32_sttm": vit,
    }


def jobs() -> list[tuple[str, str, int]]:
    """Seed 0 first (proxy, then reference), then seed 1, so a cut-short run still gives one full ranking."""
    names = list(anchor_specs())
    order = [(budget, s) for s in SEEDS for budget in BUDGETS]
    return [(name, budget, seed) for budget, seed in order for name in names]


def _done(out: Path) -> set[tuple[str, str, int]]:
    if not out.exists():
        return set()
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(r["arch"], r["budget"], r["seed"]) for r in rows}


def _worker(rank: int, workers: int, out: str, cache_dir: str, only: list[str] | None) -> None:
    import torch

    torch.set_num_threads(1)
    from explorer.arch import Arch
    from explorer.data import load_task
    from explorer.models import build, validate_arch
    from explorer.train import TrainConfig, train_epochs

    data = load_task("trev", "demo", seed=0, cache_dir=cache_dir)
    specs = anchor_specs()
    done = _done(Path(out))
    todo = [j for j in jobs() if j not in done and (only is None or j[0] in only)]
    for name, budget, seed in todo[rank::workers]:
        arch = validate_arch(Arch.from_dict(specs[name], source=name))
        torch.manual_seed(seed)
        model = build(arch)
        params = sum(p.numel() for p in model.parameters())
        cfg = TrainConfig(epochs=BUDGETS[budget], batch_size=32, lr=3e-3, seed=seed, threads=1)
        started = time.perf_counter()
        epochs = list(train_epochs(model, data, cfg))
        row = {
            "arch": name,
            "budget": budget,
            "seed": seed,
            "epochs": cfg.epochs,
            "params": params,
            "accuracy": epochs[-1].accuracy,
            "curve": [round(e.accuracy, 4) for e in epochs],
            "tse": sum(e.train_loss for e in epochs[: BUDGETS["proxy"]]),
            "seconds": round(time.perf_counter() - started, 1),
            "arch_hash": arch.content_hash,
        }
        with open(out, "a") as f:  # one short line per append: concurrent workers do not interleave
            f.write(json.dumps(row) + "\n")
        print(f"[{rank}] {name} {budget} s{seed}: {row['accuracy']:.3f} in {row['seconds']}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/proxy_fidelity/results.jsonl")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=None, help="synthvid cache (default: $EXPLORER_CACHE)")
    parser.add_argument("--only", nargs="*", help="restrict to these anchors")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from explorer.data import load_task

    load_task("trev", "demo", seed=0, cache_dir=args.cache_dir)  # generate once, before the workers read it
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(r, args.workers, str(out), args.cache_dir, args.only))
        for r in range(args.workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
