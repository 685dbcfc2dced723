"""Framework overhead of a search: wall time x concurrency / sum of the trials' own time.

A ratio of 1.0 means Ray Tune + Optuna cost nothing beyond the trials' work; the rest is Ray start-up, actor
start-up, scheduling gaps and idle slots at the end of the budget. Usage:

    python experiments/framework_overhead/measure.py                       # runs search_spaces/tiny.yaml
    python experiments/framework_overhead/measure.py --space SPACE.yaml --repeats 3
    python experiments/framework_overhead/measure.py --run reports/RUN     # an existing run (its own wall time)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import pandas as pd


def overhead(run_dir: Path, wall_s: float) -> dict[str, float]:
    meta = json.loads((run_dir / "run.json").read_text())
    df = pd.read_parquet(run_dir / "trials.parquet")
    concurrency = meta["budget"]["concurrency"]
    trial_s = float(df["trial_time_s"].fillna(0).sum())  # build + cost + data + training, per trial
    train_s = float(df["train_time_s"].fillna(0).sum())  # the training epochs alone
    return {
        "trials": len(df),
        "complete": int((df["status"] == "COMPLETE").sum()),
        "wall_s": round(wall_s, 1),
        "sum_trial_s": round(trial_s, 1),
        "sum_train_s": round(train_s, 1),
        "ratio_vs_trial_time": round(wall_s * concurrency / trial_s, 3),
        "ratio_vs_train_time": round(wall_s * concurrency / train_s, 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="search_spaces/tiny.yaml")
    p.add_argument("--run", default=None, help="measure an existing run folder instead of running a search")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--out", default="reports/overhead")
    args = p.parse_args()
    rows = []
    if args.run:
        run_dir = Path(args.run)
        rows.append(overhead(run_dir, json.loads((run_dir / "run.json").read_text())["wall_time_s"]))
    else:
        from explorer.search import run_search

        for _ in range(args.repeats):
            start = time.perf_counter()  # whole search: Ray start-up to report written
            report = run_search(args.space, out_root=args.out, progress=False)
            rows.append(overhead(report.parent, time.perf_counter() - start))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if len(rows) > 1:
        print(f"median ratio vs trial time: {statistics.median(table['ratio_vs_trial_time']):.3f}")


if __name__ == "__main__":
    main()
