"""Fidelity table from run.py's JSONL (docs/proxy_tasks.md, fidelity metrics): Kendall tau-b, Spearman rho, top-3
overlap and
regret of the proxy ranking against the reference ranking, next to the seed-to-seed noise ceiling.

    python experiments/proxy_fidelity/v1/analyze.py /tmp/proxy_fidelity/results.jsonl \
        --csv experiments/proxy_fidelity/v1/results.csv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.analysis import ranking
from explorer.analysis.ranking import kendall_tau_b, spearman


def top_k_overlap(proxy, reference, k: int = 3) -> float:
    return ranking.top_k_overlap(proxy, reference, k)


def bootstrap_tau(a, b, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """90 % interval of tau-b over architectures resampled with replacement."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    taus = [kendall_tau_b(a[idx], b[idx]) for idx in rng.integers(0, len(a), (draws, len(a)))]
    return tuple(np.nanpercentile(taus, [5, 95]).round(2))


def tables(rows: list[dict]) -> tuple[pd.DataFrame, dict]:
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index="arch", columns=["budget", "seed"], values="accuracy")
    wide.columns = [f"{b}_s{s}" for b, s in wide.columns]
    tse = df[df.budget == "proxy"].groupby("arch")["tse"].mean()
    per_arch = wide.assign(
        proxy=wide.filter(like="proxy_").mean(axis=1),
        reference=wide.filter(like="reference_").mean(axis=1),
        proxy_tse=-tse,
        params=df.groupby("arch")["params"].first(),
    )
    both = per_arch.dropna(subset=["proxy", "reference"])
    stats = {"archs": len(both)}
    if len(both) >= 3:
        stats.update(
            tau=kendall_tau_b(both.proxy, both.reference),
            rho=spearman(both.proxy, both.reference),
            tau_ci90=bootstrap_tau(both.proxy, both.reference),
            top3=top_k_overlap(both.proxy, both.reference),
            regret_rank=int(both.reference.rank(ascending=False)[both.proxy.idxmax()]),
            tau_tse=kendall_tau_b(both.proxy_tse, both.reference),
            tau_params=kendall_tau_b(both.params, both.reference),
        )
    seed0 = per_arch[["proxy_s0", "reference_s0"]].dropna() if "reference_s0" in per_arch else []
    if len(seed0) >= 3:  # one seed on both sides: the same archs, no mixing of seed counts
        stats.update(
            tau_seed0=kendall_tau_b(seed0.proxy_s0, seed0.reference_s0),
            rho_seed0=spearman(seed0.proxy_s0, seed0.reference_s0),
            archs_seed0=len(seed0),
        )
    for budget in ("proxy", "reference"):
        pair = per_arch[[f"{budget}_s0", f"{budget}_s1"]].dropna() if f"{budget}_s1" in per_arch else []
        if len(pair) >= 3:
            stats[f"{budget}_seed_tau"] = kendall_tau_b(pair.iloc[:, 0], pair.iloc[:, 1])
            stats[f"{budget}_seed_archs"] = len(pair)
    return per_arch.sort_values("reference", ascending=False), stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path)
    parser.add_argument("--csv", type=Path, help="write the per-architecture table here")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.jsonl.read_text().splitlines() if line.strip()]
    per_arch, stats = tables(rows)
    if args.csv:
        per_arch.round(4).to_csv(args.csv)
    print(per_arch.round(3).to_markdown())
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}, indent=1))


if __name__ == "__main__":
    main()
