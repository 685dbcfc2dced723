"""Fidelity table of benchmark v2 from run.py's JSONL: how well each proxy budget ranks the anchors.

Each budget's ranking is compared with the reference budget's, next to each budget's own seed-to-seed agreement
(the ceiling any proxy can reach).

    python experiments/proxy_fidelity/analyze.py experiments/proxy_fidelity/results.jsonl \\
        --csv experiments/proxy_fidelity/results.csv [--record]

Accuracies are on the search's validation split (what a search selects on); per anchor and budget the mean over
the seeds present. Metrics (explorer.analysis.ranking): Kendall τ-b and Spearman ρ of proxy vs reference with
bootstrap 90 % intervals over anchors, the mean pairwise seed-to-seed τ-b of each budget, the overlap of the top 5
and the regret of the proxy's top pick. ``--record [BUDGET ...]`` writes those budgets' numbers (default: proxy)
into explorer/analysis/fidelity.json, where every report whose proxy matches quotes them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.analysis.fidelity import proxy_key, record_measurement
from explorer.analysis.ranking import bootstrap_interval, kendall_tau_b, regret, spearman, top_k_overlap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import budget_epochs  # noqa: E402

BUDGET_ORDER = ("e3", "e6", "proxy", "e24", "e36", "reference")


def load_rows(path: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])


def per_anchor(df: pd.DataFrame) -> pd.DataFrame:
    """One row per anchor: accuracy per (budget, seed), the mean per budget, family and parameters."""
    wide = df.pivot_table(index="arch", columns=["budget", "seed"], values="accuracy")
    wide.columns = [f"{b}_s{s}" for b, s in wide.columns]
    means = df.groupby(["arch", "budget"])["accuracy"].mean().unstack("budget")
    info = df.groupby("arch")[["family", "params"]].first()
    table = info.join(wide).join(means.add_suffix("_mean"))
    sort = "reference_mean" if "reference_mean" in table else "proxy_mean"
    return table.sort_values(sort, ascending=False)


def seed_tau(df: pd.DataFrame, budget: str, values: str = "accuracy") -> tuple[float, int, int]:
    """Mean pairwise seed-to-seed τ-b of one budget, the number of seed pairs and of anchors per pair (min). Only
    pairs of seeds that share at least 80 % of the budget's anchors count: a seed cut short would weigh a handful
    of anchors as much as the whole set. ``values``: the validation ``accuracy`` (what a search ranks by), or
    ``test_accuracy`` (more clips: how much of the disagreement is the evaluation's sampling noise)."""
    wide = df[df.budget == budget].pivot_table(index="arch", columns="seed", values=values)
    taus, sizes = [], []
    for a, b in itertools.combinations(wide.columns, 2):
        pair = wide[[a, b]].dropna()
        if len(pair) >= max(3, 0.8 * len(wide)):
            taus.append(kendall_tau_b(pair[a], pair[b]))
            sizes.append(len(pair))
    return (float(np.mean(taus)) if taus else float("nan")), len(taus), (min(sizes) if sizes else 0)


def agreement(table: pd.DataFrame, proxy: str, reference: str = "reference") -> dict:
    if f"{proxy}_mean" not in table or f"{reference}_mean" not in table:
        return {"anchors": 0}
    both = table.dropna(subset=[f"{proxy}_mean", f"{reference}_mean"])
    if len(both) < 3:
        return {"anchors": len(both)}
    p, r = both[f"{proxy}_mean"], both[f"{reference}_mean"]
    rank, gap = regret(p, r)
    return {
        "anchors": len(both),
        "families": int(both["family"].nunique()),
        "tau": kendall_tau_b(p, r),
        "tau_ci90": bootstrap_interval(kendall_tau_b, p, r),
        "rho": spearman(p, r),
        "rho_ci90": bootstrap_interval(spearman, p, r),
        "top5": top_k_overlap(p, r, k=5),
        "regret_rank": rank,
        "regret_points": 100 * gap,
        "pick": str(p.idxmax()),
    }


def tradeoff(df: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per budget: epochs, mean training time (s, one thread), seeds, τ-b and Spearman ρ against the reference, the
    top-5 overlap and the reference rank of the budget's pick, and the seed τ-b on validation (what a search ranks
    by) and on the test clips (a larger set: the part of the disagreement that is evaluation noise)."""
    rows = []
    for budget in [b for b in BUDGET_ORDER if b in set(df.budget)]:
        part = df[df.budget == budget]
        tau, pairs, _ = seed_tau(df, budget)
        agree = agreement(table, budget) if budget != "reference" else {}
        rows.append(
            {
                "budget": budget,
                "epochs": int(part["epochs"].iloc[0]),
                "mean_train_s": round(float(part["seconds"].mean()), 1),
                "seeds": int(part["seed"].nunique()),
                "anchors": int(part["arch"].nunique()),
                "tau_vs_reference": agree.get("tau", np.nan),
                "tau_ci90": _interval(agree.get("tau_ci90")),
                "rho": agree.get("rho", np.nan),
                "rho_ci90": _interval(agree.get("rho_ci90")),
                "top5": agree.get("top5", np.nan),
                "pick_rank": agree.get("regret_rank", np.nan),
                "pick_short": agree.get("regret_points", np.nan),
                "seed_tau": tau,
                "seed_tau_test": seed_tau(df, budget, "test_accuracy")[0] if "test_accuracy" in df else np.nan,
                "seed_pairs": pairs,
            }
        )
    return pd.DataFrame(rows)


def _full_seeds(part: pd.DataFrame) -> int:
    """Seeds that trained at least 80 % of the anchors (a seed cut short is not counted)."""
    counts = part.groupby("seed")["arch"].nunique()
    return int((counts >= 0.8 * part["arch"].nunique()).sum()) if len(part) else 0


def _interval(pair) -> str:
    return f"{pair[0]:.2f} to {pair[1]:.2f}" if pair else ""


def measurement(df: pd.DataFrame, table: pd.DataFrame, readme: str, label: str = "proxy") -> dict:
    """The entry for explorer/analysis/fidelity.json of one budget (``label``): the ready spaces' recipe at that
    budget's epochs, and how it ranks the anchors against the reference."""
    from anchors import ANCHORS, load_anchor_space

    from explorer.search import VAL_FRACTION

    space = load_anchor_space(ANCHORS[0])
    budget = {**space.budget.model_dump(), "epochs": budget_epochs(label)}
    agree = agreement(table, label)
    seed, _, _ = seed_tau(df, label)
    proxy, reference = df[df.budget == label], df[df.budget == "reference"]
    return {
        "proxy": proxy_key(f"{space.task.name}/{space.task.preset}", budget, VAL_FRACTION),
        "benchmark": "v2",
        "anchors": int(proxy["arch"].nunique()),
        "families": int(proxy["family"].nunique()),
        "proxy_seeds": _full_seeds(proxy),
        "reference_epochs": budget_epochs("reference"),
        "reference_anchors": agree.get("anchors", 0),
        "reference_seeds": _full_seeds(reference),
        "kendall_tau_b": None if np.isnan(agree.get("tau", np.nan)) else round(agree["tau"], 3),
        "tau_ci90": [round(v, 3) for v in agree["tau_ci90"]] if "tau_ci90" in agree else None,
        "proxy_seed_tau": None if np.isnan(seed) else round(seed, 3),
        "readme": readme,
        "measured": date.today().isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--csv", type=Path, help="write the per-anchor table here")
    parser.add_argument(
        "--record",
        nargs="*",
        metavar="BUDGET",
        help="write these budgets' measurements (default: proxy) into explorer/analysis/fidelity.json, "
        "where a report whose proxy has that recipe and epochs quotes them",
    )
    args = parser.parse_args()
    df = load_rows(args.jsonl)
    table = per_anchor(df)
    if args.csv:
        table.round(4).to_csv(args.csv)
    print(table.round(3).to_markdown())
    print()
    print(tradeoff(df, table).round(3).to_markdown(index=False))
    agree = agreement(table, "proxy")
    print(
        json.dumps(
            {
                k: (round(v, 3) if isinstance(v, float) else [round(x, 3) for x in v] if isinstance(v, tuple) else v)
                for k, v in agree.items()
            }
        )
    )
    recorded = [] if args.record is None else args.record or ["proxy"]  # bare --record: the 12-epoch proxy
    for label in recorded:
        entry = measurement(df, table, "experiments/proxy_fidelity/README.md", label)
        record_measurement(entry)
        print(f"recorded: {json.dumps(entry)}")


if __name__ == "__main__":
    main()
