"""Rank agreement between two scorings of the same architectures (proxy vs reference, one seed vs another).

Kendall τ-b is the primary measure: for untied pairs, (1 + τ)/2 of the "A beats B" calls agree, which is the
question a user asks of a front. Spearman ρ, the overlap of the top k and the regret of the first pick answer the
narrower questions; the bootstrap resamples architectures, so its interval says how much the τ of a few anchors
can be trusted. Plain numpy/pandas (no scipy dependency), checked against brute-force definitions in the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

ArrayLike = Sequence[float] | np.ndarray | pd.Series


def kendall_tau_b(a: ArrayLike, b: ArrayLike) -> float:
    """Kendall τ-b (corrected for ties on either side); NaN when either side is constant or has under 2 items."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n_a, n_b = np.count_nonzero(da), np.count_nonzero(db)
    return float((da * db).sum() / np.sqrt(n_a * n_b)) if n_a and n_b else float("nan")


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman ρ: the Pearson correlation of the ranks (ties get their mean rank)."""
    return float(pd.Series(np.asarray(a, float)).rank().corr(pd.Series(np.asarray(b, float)).rank()))


def top_k_overlap(first: ArrayLike, second: ArrayLike, k: int = 5) -> float:
    """Share of the k best by ``first`` that are also among the k best by ``second`` (higher is better)."""

    def top(s: ArrayLike) -> set[int]:
        return set(np.argsort(-np.asarray(s, float), kind="stable")[:k].tolist())

    return len(top(first) & top(second)) / k


def regret(proxy: ArrayLike, reference: ArrayLike) -> tuple[int, float]:
    """The reference rank (1 = best) of the proxy's top pick, and how far below the reference's best it is."""
    proxy, reference = np.asarray(proxy, float), np.asarray(reference, float)
    pick = int(np.argmax(proxy))
    rank = int(1 + np.sum(reference > reference[pick]))
    return rank, float(reference.max() - reference[pick])


def bootstrap_interval(
    stat: Callable[[np.ndarray, np.ndarray], float],
    a: ArrayLike,
    b: ArrayLike,
    level: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``stat(a, b)`` over items resampled with replacement (draws whose statistic is
    undefined, e.g. all items alike, are left out)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    values = np.array([stat(a[idx], b[idx]) for idx in rng.integers(0, len(a), (draws, len(a)))])
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return float(lo), float(hi)
