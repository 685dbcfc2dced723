"""Cost benchmark over random architectures of the unified space (CPU, 1 thread).

(a) the lookup-table latency predictor's relative error vs direct measurement on held-out architectures,
(b) the repeatability of direct measurement (CV of the per-round medians across 5 interleaved rounds), for the
    paired clock and, in the same rounds, plain wall time,
(c) the Spearman correlation of GFLOPs (and of the prediction) with measured latency.

The table is calibrated on architectures sampled with another seed than the evaluated ones (its `scale` is fitted
on those only); units of evaluated architectures missing from the table are measured alone on demand, which never
looks at the whole-model measurement. Usage:

    .venv/bin/python experiments/cost_benchmark/run.py --out experiments/cost_benchmark/results_paired.csv
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from explorer.cli.costs import sample_archs
from explorer.cost import REFERENCE_PRESET, count_flops, count_params, example_input, latency_stats, reference_ms
from explorer.cost.predictor import LatencyTable, calibrate, predict
from explorer.models import build


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho as the Pearson correlation of ranks (pandas' method='spearman' needs scipy)."""
    return a.rank().corr(b.rank())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="search_spaces/unified.yaml")
    ap.add_argument("--n", type=int, default=30, help="evaluated architectures")
    ap.add_argument("--calib", type=int, default=16, help="calibration architectures (another seed)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds per architecture")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per round")
    ap.add_argument(
        "--clock",
        choices=("wall", "thread", "paired"),
        default="paired",
        help="clock of the table and of the measurement the predictor is scored against (default paired)",
    )
    ap.add_argument(
        "--compare",
        nargs="*",
        choices=("wall", "thread", "paired"),
        default=["wall"],
        help="other clocks to measure in the same interleaved rounds, for (b) (default wall)",
    )
    ap.add_argument("--out", default="experiments/cost_benchmark/results.csv")
    args = ap.parse_args()
    torch.set_num_threads(1)
    evaluated = sample_archs(args.space, args.n, seed=1)
    seen = {a.content_hash for a in evaluated}
    calib = [a for a in sample_archs(args.space, args.calib * 2, seed=2) if a.content_hash not in seen][: args.calib]
    t0 = time.time()
    if "paired" in (args.clock, *args.compare):  # the yardstick's quiet speed, measured afresh for this run
        print(
            f"reference {REFERENCE_PRESET}: {reference_ms(1, remeasure=True):.3f} ms "
            "(min of 20 round medians over ~2 s)",
            file=sys.stderr,
        )
    table = LatencyTable(device="cpu", path=Path(tempfile.mkdtemp()) / "cpu.json")
    calibrate(calib, "cpu", table, threads=1, clock=args.clock)
    print(
        f"calibrated on {len(calib)} archs: {len(table.entries)} units, scale {table.scale:.3f}, "
        f"{time.time() - t0:.0f}s",
        file=sys.stderr,
    )
    models = {a.content_hash: build(a).eval() for a in evaluated}
    rows = {}
    for a in evaluated:
        m = models[a.content_hash]
        p = predict(a, "cpu", table, model=m, threads=1, clock=args.clock, save=False)
        rows[a.content_hash] = {
            "arch": a.content_hash,
            "summary": a.summary(),
            "gflops": count_flops(m, example_input(a)) / 1e9,
            "params_m": count_params(m) / 1e6,
            "predicted_ms": p.total_ms,
            "raw_sum_ms": p.raw_ms,
            "units": len(p.units),
            "units_on_demand": len(p.measured),
            "rounds": {},
        }
    clocks = list(dict.fromkeys([args.clock, *args.compare]))
    rng = random.Random(0)
    for r in range(args.rounds):  # interleaved: every round visits every arch in a fresh order
        order = list(evaluated)
        rng.shuffle(order)
        for a in order:
            x = example_input(a)
            for clock in clocks:  # back to back, so the clocks see the same state of the host
                s = latency_stats(
                    models[a.content_hash], x, "cpu", 1, warmup=2, repeats=args.repeats, max_rounds=1, clock=clock
                )
                rows[a.content_hash]["rounds"].setdefault(clock, []).append(s.median_ms)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    for row in rows.values():
        by_clock = row.pop("rounds")
        for clock, rs in by_clock.items():
            row[f"measured_ms_{clock}"] = statistics.median(rs)
            row[f"cv_{clock}"] = statistics.stdev(rs) / statistics.fmean(rs)
        row["measured_ms"], row["cv"] = row[f"measured_ms_{args.clock}"], row[f"cv_{args.clock}"]
        row["rel_err"] = (row["predicted_ms"] - row["measured_ms"]) / row["measured_ms"]
    df = pd.DataFrame(list(rows.values()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.round(5).to_csv(args.out, index=False)
    err = df["rel_err"].abs()
    print(
        f"clock={args.clock} archs={len(df)} calib_archs={len(calib)} table_units={len(table.entries)} "
        f"scale={table.scale:.3f}"
    )
    print(
        f"(a) predictor |rel err|: median {err.median():.1%}, p90 {err.quantile(0.9):.1%}; "
        f"signed median {df['rel_err'].median():+.1%}"
    )
    for clock in clocks:
        cv = df[f"cv_{clock}"]
        print(
            f"(b) direct measurement CV over {args.rounds} rounds, clock {clock}: median {cv.median():.1%}, "
            f"p90 {cv.quantile(0.9):.1%}"
        )
    print(
        f"    without the fitted scale (plain sum of unit entries): median "
        f"{((df['raw_sum_ms'] - df['measured_ms']) / df['measured_ms']).abs().median():.1%}"
    )
    print(
        f"(c) Spearman GFLOPs vs measured latency {spearman(df['gflops'], df['measured_ms']):.3f}; "
        f"predicted vs measured {spearman(df['predicted_ms'], df['measured_ms']):.3f}"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"ms per GFLOP: median {(df['measured_ms'] / df['gflops']).median():.1f}, "
        f"range {(df['measured_ms'] / df['gflops']).min():.1f}-{(df['measured_ms'] / df['gflops']).max():.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
