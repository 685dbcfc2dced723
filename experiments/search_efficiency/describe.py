"""Describe the tabular benchmark: accuracy spread vs test-set noise, means by design choice, the true front.

    .venv/bin/python experiments/search_efficiency/describe.py [--table PATH]

The figures quoted in README.md ("What the table holds") come from this script.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular  # noqa: E402

REF = (1.0, 1.0)


def binomial_se(accuracy: float, n_test: int) -> float:
    """Standard error of a held-out accuracy measured on ``n_test`` clips: sqrt(p (1 - p) / n)."""
    return float(np.sqrt(accuracy * (1.0 - accuracy) / n_test))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson on average ranks; scipy is not a dependency)."""
    import pandas as pd

    return float(np.corrcoef(pd.Series(a).rank(), pd.Series(b).rank())[0, 1])


def arch_label(row) -> str:
    """A short name of one architecture of the space, e.g. ``posmlp w32 | focal-parallel w64``."""

    def stage(i: int) -> str:
        mixer = row[f"param.s{i}.mixer"]
        if mixer == "conv3d":
            mixer = f"conv3d-k{int(row[f'param.s{i}.conv3d.kernel_t'])}"
        elif mixer == "focal":
            mixer = f"focal-{row[f'param.s{i}.focal.combination']}"
        return f"{mixer} w{int(row[f'param.s{i}.width'])}"

    return f"{stage(0)} | {stage(1)}"


def true_front(df) -> list[int]:
    """Row indices of the (accuracy max, gflops min) Pareto front, cheapest first."""
    order = df.sort_values(["gflops", "accuracy"], ascending=[True, False]).index
    front, best = [], -np.inf
    for i in order:
        if df.at[i, "accuracy"] > best:
            front.append(i)
            best = df.at[i, "accuracy"]
    return front


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=tabular.TABLE_FILE)
    parser.add_argument("--n-test", type=int, default=500, help="test clips of the task preset (demo: 500)")
    args = parser.parse_args()

    import pandas as pd

    df = pd.read_csv(args.table)
    df["label"] = [arch_label(r) for _, r in df.iterrows()]
    acc, flops = df["accuracy"].to_numpy(float), df["gflops"].to_numpy(float)
    print(
        f"{len(df)} architectures; GFLOPs {flops.min():.4f}-{flops.max():.4f} ({flops.max() / flops.min():.1f}x), "
        f"params {df['params_m'].min():.3f}-{df['params_m'].max():.3f} M"
    )
    print(
        f"accuracy {acc.min():.3f}-{acc.max():.3f}, mean {acc.mean():.3f}, std {acc.std(ddof=1):.3f}; "
        f"test-set noise (binomial SE at the mean / at the max): {binomial_se(acc.mean(), args.n_test):.3f} / "
        f"{binomial_se(acc.max(), args.n_test):.3f}"
    )
    print(
        f"train time per architecture: median {df['train_time_s'].median():.1f}s, "
        f"range {df['train_time_s'].min():.1f}-{df['train_time_s'].max():.1f}s, "
        f"total {df['train_time_s'].sum() / 60:.1f} min"
    )
    print(f"Spearman(accuracy, GFLOPs) = {spearman(acc, flops):+.2f}")
    for col in ("param.s0.mixer", "param.s0.width", "param.s1.mixer", "param.s1.width"):
        means = df.groupby(col)["accuracy"].agg(["mean", "min", "max"])
        print(
            f"  by {col[6:]}: " + ", ".join(f"{k} {m:.3f} ({lo:.3f}-{hi:.3f})" for k, (m, lo, hi) in means.iterrows())
        )
    by_s1 = df.assign(s1=[lbl.split(" | ")[1].split(" w")[0] for lbl in df["label"]])
    print(
        "  by stage-1 mixer (conv3d/focal split): "
        + ", ".join(f"{k} {v:.3f}" for k, v in by_s1.groupby("s1")["accuracy"].mean().items())
    )

    losses = tabular.normalise(acc, flops, (acc.min(), acc.max()), (flops.min(), flops.max()))
    true_hv = tabular.hypervolume_2d(losses, REF)
    front = true_front(df)
    print(f"true front ({len(front)} points), true normalised HV {true_hv:.4f}:")
    for i in front:
        alone = tabular.hypervolume_2d(losses[[i]], REF) / true_hv
        print(
            f"  {df.at[i, 'label']:42s} gflops {df.at[i, 'gflops']:.4f} acc {df.at[i, 'accuracy']:.3f} "
            f"(alone {alone:.1%} of the true HV)"
        )
    singles = np.array([tabular.hypervolume_2d(losses[[i]], REF) for i in range(len(df))]) / true_hv
    print(
        f"single architectures reaching 95% of the true HV alone: {int((singles >= 0.95).sum())}; best single "
        f"{singles.max():.1%} ({df.at[int(singles.argmax()), 'label']})"
    )
    pairs = sum(
        tabular.hypervolume_2d(losses[[i, j]], REF) >= 0.95 * true_hv
        for i in range(len(df))
        for j in range(i + 1, len(df))
    )
    print(f"pairs of architectures reaching 95%: {pairs} of {len(df) * (len(df) - 1) // 2}")
    # the fewest front points that reach 95 %: how many needles a sampler must find (a dominated architecture
    # never adds more than the front point dominating it, so subsets of the front suffice)
    for k in range(1, len(front) + 1):
        hits = [
            c
            for c in itertools.combinations(front, k)
            if tabular.hypervolume_2d(losses[list(c)], REF) >= 0.95 * true_hv
        ]
        if hits:
            print(
                f"fewest architectures reaching 95%: {k} ({len(hits)} such sets of front points, e.g. "
                + "; ".join(df.at[i, "label"] for i in hits[0])
                + ")"
            )
            break


if __name__ == "__main__":
    main()
