"""Print a finished (or stopped) factor study's verdicts, on validation and on test, with its cost and time, and
write its cells as the small results CSV committed beside the study file.

    .venv/bin/python experiments/seed_studies/summarize.py reports/morphmlp-reweight-20261207-064644 \
        --csv experiments/seed_studies/results/morphmlp_reweight.csv

A study stopped early is summarised over its first ``--bases N`` bases only (a base cut short would weigh in
on some pairs and not others); the bases are drawn one after another, so these are the cells of the same study
with ``bases: N``, and ``explorer study --resume RUN`` finishes the rest.

Without the run folder, the verdicts come again from the committed cells and the study file (no wall time):

    .venv/bin/python experiments/seed_studies/summarize.py --cells experiments/seed_studies/results/tome_ratio.csv \
        --study experiments/seed_studies/tome_ratio.yaml

The verdicts are the study page's (``explorer.analysis.study``); the test-clip verdict is the same analysis on
``test_accuracy``, for reporting only (the study, like a search, selects nothing on it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from explorer.analysis import STUDY_ROLE, load_trials
from explorer.analysis.study import cell_table, is_numeric_factor, summarize_study
from explorer.report.html import wall_text
from explorer.space.study import load_study

CSV_COLUMNS = [
    "base",
    "value",
    "seed",
    "status",
    "val_accuracy",
    "test_accuracy",
    "gflops",
    "params_m",
    "latency_cpu_ms",
    "train_time_s",
    "train_loss",  # the last epoch's: a near-zero loss beside chance accuracy marks a cell that memorised its clips
    "matched",
    "arch_hash",
    "arch_summary",
]


def summarize(run_dir: Path, bases: int | None = None) -> tuple[list[str], pd.DataFrame]:
    meta = json.loads((run_dir / "run.json").read_text())
    spec = meta["study"]
    rows = load_trials(run_dir, role=STUDY_ROLE)
    if bases is not None:
        rows = rows[rows["base"].astype(int) < bases]
    budget = meta["budget"]
    lines = [
        f"study {meta['name']}: {spec['factor']['param']} = {', '.join(map(str, spec['factor']['values']))}",
        f"task {meta.get('task', '?')}, {budget['epochs']} epochs, batch {budget['batch_size']}, lr {budget['lr']}",
        _cells_line(rows, spec, bases),
        f"wall time {wall_text(meta, rows, 'cell')}; training {rows['trial_time_s'].sum() / 3600:.2f} core-h "
        f"in all, {rows['trial_time_s'].median() / 60:.1f} min per cell (median)",
    ]
    cells = rows[[c for c in CSV_COLUMNS if c in rows.columns]].sort_values(["base", "value", "seed"])
    return lines + verdict_lines(rows, spec), cells


def summarize_cells(csv: Path, study: Path, bases: int | None = None) -> list[str]:
    """The verdicts again from a committed cells CSV and its study file, without the run folder (no wall time:
    the CSV keeps each cell's training time, not when it ran)."""
    spec = load_study(study)[0].model_dump(mode="json")
    rows = pd.read_csv(csv, dtype={"value": str}).rename(columns={"val_accuracy": "accuracy"})
    if bases is not None:
        rows = rows[rows["base"] < bases]
    head = f"study {spec['name']}: {spec['factor']['param']} = {', '.join(map(str, spec['factor']['values']))}"
    return [head, f"cells from {csv}", _cells_line(rows, spec, bases), *verdict_lines(rows, spec)]


def _cells_line(rows: pd.DataFrame, spec: dict, bases: int | None) -> str:
    planned = spec["bases"] if bases is None else min(bases, spec["bases"])
    values, seeds = spec["factor"]["values"], spec["seeds"]
    return (
        f"cells complete: {int((rows['status'] == 'COMPLETE').sum())} of {planned * len(values) * seeds} "
        f"({planned} bases x {len(values)} values x {seeds} seeds)"
    )


def verdict_lines(rows: pd.DataFrame, spec: dict) -> list[str]:
    """The verdicts on validation (the study's) and on the test clips (reported), with each value's cost."""
    values = spec["factor"]["values"]
    lines = []
    qualities = [("accuracy", "validation (the verdict)"), ("test_accuracy", "test clips (reported)")]
    for quality, label in [q for q in qualities if q[0] in rows.columns]:
        summary = summarize_study(
            cell_table(rows, quality),
            values,
            quality=quality,
            confidence=spec["confidence"],
            tolerance=spec["tolerance"],
            numeric=is_numeric_factor(values),
        )
        lines.append(f"-- {label}")
        lines += summary.sentences
        if summary.saving:
            lines.append(summary.saving)
        if quality == "accuracy":
            costs = summary.costs.copy()
            costs["accuracy"] = (100 * costs["accuracy"]).round(1)
            lines.append(costs.to_string(index=False))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, nargs="?", help="the study's run folder")
    parser.add_argument("--csv", type=Path, help="write the cells here")
    parser.add_argument("--bases", type=int, help="only the first N bases (a study stopped early)")
    parser.add_argument(
        "--cells", type=Path, help="instead of a run folder: a committed cells CSV (with --study, its study file)"
    )
    parser.add_argument("--study", type=Path, help="the study file of --cells")
    args = parser.parse_args()
    if args.cells:
        if args.run or args.csv or not args.study:
            parser.error("--cells takes --study, and neither a run folder nor --csv")
        print("\n".join(summarize_cells(args.cells, args.study, args.bases)))
        return
    if not args.run:
        parser.error("give a run folder, or --cells CSV --study FILE")
    lines, cells = summarize(args.run, args.bases)
    print("\n".join(lines))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        cells.to_csv(args.csv, index=False, float_format="%.6g")
        print(f"cells: {args.csv}")


if __name__ == "__main__":
    main()
