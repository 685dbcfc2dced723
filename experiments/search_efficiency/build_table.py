"""Build the tabular benchmark once: train and cost every architecture of ``space.yaml``.

    nice -n 10 .venv/bin/python experiments/search_efficiency/build_table.py --workers 1 \
        --jsonl /tmp/search_efficiency/table.jsonl --last s0.conv3d.kernel_t=3 s1.focal.combination=serial

Each result is appended to the JSONL as soon as it is measured (a killed build resumes where it stopped: finished
hashes are skipped); when every architecture is in, the CSV ``table.csv`` is written beside this file (or ``--out``).
``--limit N`` measures only N architectures spread over the space (timing the proxy first). ``--last
s0.conv3d.kernel_t=3 s1.focal.combination=serial`` measures the matching architectures last (serial focal last of
all), so that a build cut short by its time budget still covers a clean sub-space (the space without those options).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular  # noqa: E402


def _done_hashes(jsonl: Path) -> set[str]:
    if not jsonl.exists():
        return set()
    done = set()
    for line in jsonl.read_text().splitlines():
        try:
            done.add(json.loads(line)["arch_hash"])
        except (json.JSONDecodeError, KeyError):  # a line cut by a kill mid-write: measured again
            continue
    return done


def _worker(job: tuple[dict[str, Any], int, int]) -> dict[str, Any]:
    """One architecture in a worker process (one torch thread: two workers share the two cores)."""
    import torch

    from explorer.data import load_task
    from explorer.space import load_space

    params, epochs, batch_size = job
    torch.set_num_threads(1)
    space = load_space(tabular.SPACE_FILE)
    data = load_task(space.task.name, space.task.preset, seed=space.task.seed)  # cached on disk after the first call
    return tabular.measure_arch(space, params, data, epochs=epochs, batch_size=batch_size, lr=space.budget.lr)


def write_csv(jsonl: Path, out: Path, expected: int | None = None) -> None:
    import pandas as pd

    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows).drop_duplicates("arch_hash")
    if expected is not None and len(df) != expected:
        raise SystemExit(f"{jsonl}: {len(df)} of {expected} architectures measured; run the build again to finish")
    df["accuracy_by_epoch"] = df["accuracy_by_epoch"].map(lambda v: " ".join(f"{a:.4f}" for a in v))
    param_cols = sorted(c for c in df.columns if c.startswith("param."))
    cols = param_cols + ["arch_hash", "params_m", "gflops", "accuracy", "accuracy_by_epoch", "train_time_s"]
    df = df[cols].sort_values(param_cols, key=lambda s: s.astype(str)).reset_index(drop=True)
    df.to_csv(out, index=False, float_format="%.6g")
    print(f"wrote {out} ({len(df)} architectures)")


def put_last(todo: list[dict[str, Any]], last: list[str]) -> list[dict[str, Any]]:
    """``todo`` with the parameter sets matching a ``name=value`` of ``last`` moved to the end, those matching a
    later item after those matching an earlier one (a stable sort: enumeration order is kept within a group)."""
    wanted = [tuple(item.split("=", 1)) for item in last]
    if any(len(w) != 2 for w in wanted):
        raise SystemExit(f"--last expects NAME=VALUE items, got {last}")

    def group(p: dict[str, Any]) -> int:
        return max((k + 1 for k, (name, value) in enumerate(wanted) if str(p.get(name)) == value), default=0)

    return sorted(todo, key=group)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", type=Path, default=Path("/tmp/search_efficiency/table.jsonl"))
    parser.add_argument("--out", type=Path, default=tabular.TABLE_FILE)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="default: the space's budget.epochs")
    parser.add_argument("--limit", type=int, default=None, help="measure only this many (timing)")
    parser.add_argument(
        "--last",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="measure architectures with this parameter value last (e.g. s1.focal.combination=serial)",
    )
    args = parser.parse_args()

    from explorer.data import load_task
    from explorer.space import arch_from_params, load_space

    space = load_space(tabular.SPACE_FILE)
    epochs = args.epochs or space.budget.epochs
    load_task(space.task.name, space.task.preset, seed=space.task.seed)  # generated once, before the workers read it
    all_params = tabular.enumerate_params(space)
    done = _done_hashes(args.jsonl)
    todo = put_last([p for p in all_params if arch_from_params(space, p).content_hash not in done], args.last)
    if args.limit is not None:  # spread over the space, so the timing sees every family
        step = max(len(todo) // args.limit, 1)
        todo = todo[::step][: args.limit]
    print(
        f"{len(all_params)} architectures, {len(done)} done, measuring {len(todo)} "
        f"({space.task.name}/{space.task.preset}, {epochs} epochs, {args.workers} workers x 1 thread)",
        flush=True,
    )
    args.jsonl.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    jobs = [(p, epochs, space.budget.batch_size) for p in todo]
    with mp.get_context("spawn").Pool(args.workers) as pool, args.jsonl.open("a") as sink:
        for n, row in enumerate(pool.imap_unordered(_worker, jobs), 1):
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            print(
                f"[{n}/{len(todo)} {time.perf_counter() - start:6.0f}s] {row['arch_hash'][:10]} "
                f"acc={row['accuracy']:.3f} gflops={row['gflops']:.4f} train={row['train_time_s']:.1f}s",
                flush=True,
            )
    if args.limit is None:
        write_csv(args.jsonl, args.out, expected=len(all_params))


if __name__ == "__main__":
    main()
