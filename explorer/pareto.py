"""Pareto fronts and hypervolume on plain arrays: used alike by the default sampler (explorer.costaware) and by the
analysis behind the report (explorer.analysis), so neither imports the other."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROW_BLOCK = 512  # rows compared at once in pareto_mask: bounds memory at ROW_BLOCK * n * n_objectives bools

# Hypervolume normalisation: each objective is mapped to a loss in [0, 1] (0 = best value seen among the COMPLETE
# trials, 1 = worst), so axes in % and in GFLOPs weigh alike; the reference point is 1.1 on every axis (the worst
# corner pushed out 10%, as pymoo/BoTorch do), so the worst points of the front still add volume.
HV_REFERENCE = 1.1


def as_loss(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (n_points, n_objectives), got shape {v.shape}")
    maximize = np.asarray(maximize, dtype=bool)
    if maximize.shape != (v.shape[1],):
        raise ValueError(f"maximize has {maximize.size} entries for {v.shape[1]} objectives")
    return np.where(maximize, -v, v)


def pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `values` (n_points, n_objectives).

    Row i is dominated when some row j is at least as good in every objective and strictly better in one.
    Rows holding a NaN are never on the front and never dominate others; exact duplicates of a non-dominated
    point do not dominate each other, so all copies stay on the front.
    """
    loss = as_loss(values, maximize)  # every objective minimised from here on
    valid = ~np.isnan(loss).any(axis=1)
    pts = loss[valid]
    dominated = np.zeros(len(pts), dtype=bool)
    for start in range(0, len(pts), ROW_BLOCK):
        block = pts[start : start + ROW_BLOCK, None, :]  # (b, 1, m): candidates
        # others[j] dominates block[i]: others <= block everywhere and < somewhere
        no_worse = (pts[None, :, :] <= block).all(axis=2)
        better = (pts[None, :, :] < block).any(axis=2)
        dominated[start : start + ROW_BLOCK] = (no_worse & better).any(axis=1)

    mask = np.zeros(len(loss), dtype=bool)
    mask[np.flatnonzero(valid)] = ~dominated
    return mask


def non_dominated_ranks(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """Rank of every row in non-dominated sorting (NSGA-II fronts F_1, F_2, ...): 0 for the Pareto front, 1 for
    the front of what is left, and so on; -1 for rows holding a NaN (failed trials are not ranked)."""
    v = np.asarray(values, dtype=float)
    ranks = np.full(len(v), -1, dtype=int)
    remaining = np.flatnonzero(~np.isnan(v).any(axis=1)) if v.ndim == 2 else np.array([], dtype=int)
    rank = 0
    while remaining.size:
        front = pareto_mask(v[remaining], maximize)
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    return ranks


def hypervolume(values: np.ndarray, maximize: Sequence[bool], reference: Sequence[float]) -> float:
    """Exact hypervolume dominated by the valid rows of `values` up to `reference` (in the objectives' own units).

    The volume of ∪_i [f(x_i), r] with every objective turned into a loss (max objectives negated, and `reference`
    with them). Computed by Optuna's exact implementation (2-D sweep, WFG for ≥3 objectives) on the Pareto rows;
    rows with a NaN or not strictly better than `reference` in every objective add nothing.
    """
    from optuna._hypervolume import compute_hypervolume  # exact; not a public API, hence the local import

    loss = as_loss(values, maximize)
    ref = np.where(
        np.asarray(maximize, dtype=bool), -np.asarray(reference, dtype=float), np.asarray(reference, dtype=float)
    )
    if ref.shape != (loss.shape[1],):
        raise ValueError(f"reference has {ref.size} entries for {loss.shape[1]} objectives")
    keep = ~np.isnan(loss).any(axis=1) & (loss < ref).all(axis=1)
    pts = loss[keep]
    if not len(pts):
        return 0.0
    pts = np.unique(pts[pareto_mask(pts, [False] * pts.shape[1])], axis=0)
    return float(compute_hypervolume(pts, ref, assume_pareto=True))
