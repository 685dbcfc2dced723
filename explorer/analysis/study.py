"""The analysis of a factor study: paired differences between the factor's values on the same bases, with
bootstrap intervals, a verdict per pair, each value's cost, and for a numeric factor the largest saving that stays
within the accuracy tolerance.

The cells are one row per (base, value, seed) training (``role == "study"`` in the trials table). A difference is
taken per base (each value's mean over its seeds), so what the bases share (depth, widths) cancels; the interval
resamples bases, and within each resampled base the seeds of each value, so it carries both sources of noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from explorer.analysis import STATUS_COMPLETE
from explorer.metrics import DEFAULT_LATENCY

BETTER, WORSE, SAME = "better", "worse", "indistinguishable"
COST_COLUMNS = ("gflops", "params_m", DEFAULT_LATENCY)
MAX_BASES_NEEDED = 10_000  # said as "at least" beyond it


@dataclass(frozen=True)
class PairedDifference:
    """``a`` minus ``b`` in accuracy (fraction), over ``bases`` bases with both values."""

    a: str
    b: str
    mean: float
    lo: float
    hi: float
    bases: int
    sd: float  # of the per-base differences
    verdict: str
    bases_needed: int | None  # to separate them at this spread (None: already separated, or no spread to use)


def is_numeric_factor(values: list) -> bool:
    """Whether a factor's values are numbers (merge ratio, token count): such a factor gets a cost curve and a
    saving. Booleans are not numbers here, though Python counts them as ints."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def cell_table(rows: pd.DataFrame, quality: str = "accuracy") -> pd.DataFrame:
    """The complete cells as (base, value, seed, quality, costs), value as its label; with a cost match, only the
    cells within its tolerance (an unmatched cell would compare the value at another cost)."""
    done = rows[rows["status"] == STATUS_COMPLETE]
    if "matched" in done.columns:
        done = done[done["matched"].fillna(True).astype(bool)]
    columns = ["base", "value", "seed", quality, *[c for c in COST_COLUMNS if c in done.columns]]
    out = done[columns].copy()
    out["base"] = out["base"].astype(int)
    out["value"] = out["value"].astype(str)
    return out.reset_index(drop=True)


def _per_base(cells: pd.DataFrame, value: str, quality: str) -> dict[int, np.ndarray]:
    part = cells[cells["value"] == value]
    return {int(b): g[quality].to_numpy(dtype=float) for b, g in part.groupby("base")}


def paired_difference(
    cells: pd.DataFrame,
    a: str,
    b: str,
    quality: str = "accuracy",
    confidence: float = 0.9,
    draws: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """Mean over bases of (mean over seeds of ``a``) − (mean over seeds of ``b``), with a two-level bootstrap
    interval at ``confidence``; the verdict is ``better``/``worse`` when the interval excludes 0."""
    per_a, per_b = _per_base(cells, a, quality), _per_base(cells, b, quality)
    bases = sorted(set(per_a) & set(per_b))
    if not bases:
        return PairedDifference(a, b, float("nan"), float("nan"), float("nan"), 0, float("nan"), SAME, None)
    diffs = np.array([per_a[k].mean() - per_b[k].mean() for k in bases])
    rng = np.random.default_rng(seed)
    boot = np.empty(draws)
    for i in range(draws):
        picked = rng.integers(0, len(bases), len(bases))
        total = 0.0
        for k in picked:
            xa, xb = per_a[bases[k]], per_b[bases[k]]
            total += xa[rng.integers(0, len(xa), len(xa))].mean() - xb[rng.integers(0, len(xb), len(xb))].mean()
        boot[i] = total / len(bases)
    tail = (1 - confidence) / 2 * 100
    lo, hi = (float(v) for v in np.percentile(boot, [tail, 100 - tail]))
    verdict = BETTER if lo > 0 else WORSE if hi < 0 else SAME
    sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else float("nan")
    return PairedDifference(
        a,
        b,
        float(diffs.mean()),
        lo,
        hi,
        len(bases),
        sd,
        verdict,
        _bases_needed(float(diffs.mean()), _half_width_toward(float(diffs.mean()), lo, hi), len(bases))
        if verdict == SAME
        else None,
    )


def _half_width_toward(mean: float, lo: float, hi: float) -> float:
    """The part of the interval between its mean and 0 (a bootstrap interval need not be symmetric)."""
    return mean - lo if mean > 0 else hi - mean


def _bases_needed(mean: float, half_width: float, bases: int, margin: float = 0.0) -> int | None:
    """Bases for the interval to clear ``-margin`` (0: to separate the values; the tolerance: to certify a loss
    within it) if the observed mean held: the interval's ``half_width`` toward ``-margin`` at ``bases`` bases
    shrinks as 1/sqrt(bases). Taken from the bootstrap interval, so it carries the seeds' noise as well as the
    bases' spread: two bases that happen to agree do not make their seed noise vanish. None with fewer than two
    bases (no spread to extrapolate) or a mean exactly at ``-margin``."""
    distance = abs(mean + margin)
    if bases < 2 or not np.isfinite(half_width) or half_width <= 0 or distance < 1e-6:
        return None
    return int(min(np.ceil(bases * (half_width / distance) ** 2), MAX_BASES_NEEDED))


def _bases_text(needed: int) -> str:
    """An estimate of ``_bases_needed`` in words: "about 21 bases", or "at least 10,000 bases" at the cap."""
    return f"{'at least' if needed >= MAX_BASES_NEEDED else 'about'} {needed:,} bases"


@dataclass(frozen=True)
class StudySummary:
    values: list[str]
    reference: str
    pairs: list[PairedDifference]  # every value against the reference (the first value)
    costs: pd.DataFrame  # per value: mean quality and mean cost over the bases
    per_base: pd.DataFrame  # base x value: mean quality over seeds
    sentences: list[str] = field(default_factory=list)
    saving: str | None = None  # numeric factors: the largest cost saving within the tolerance


def summarize_study(
    cells: pd.DataFrame,
    values: list[str],
    quality: str = "accuracy",
    confidence: float = 0.9,
    tolerance: float = 0.01,
    numeric: bool = False,
    cost: str = "gflops",
) -> StudySummary:
    """Verdicts of every value against the first, each value's cost, and (numeric factors) the saving."""
    values = [str(v) for v in values]
    reference = values[0]
    pairs = [paired_difference(cells, v, reference, quality, confidence) for v in values[1:]]
    grouped = cells.groupby("value")
    costs = pd.DataFrame(
        {
            "value": values,
            quality: [grouped[quality].mean().get(v, np.nan) for v in values],
            **{c: [grouped[c].mean().get(v, np.nan) for v in values] for c in COST_COLUMNS if c in cells.columns},
            "cells": [int(grouped.size().get(v, 0)) for v in values],
        }
    )
    per_base = cells.groupby(["base", "value"])[quality].mean().unstack("value").reindex(columns=values)
    level = f"{100 * confidence:.0f} %"
    sentences = []
    for p in pairs:
        text = (
            f"{p.a} vs {p.b}: {100 * p.mean:+.1f} points ({level} CI {100 * p.lo:+.1f} to {100 * p.hi:+.1f}, "
            f"{p.bases} base{'' if p.bases == 1 else 's'}): {p.a} is {p.verdict}"
        )
        if p.verdict == SAME and p.bases_needed:
            text += f"; {_bases_text(p.bases_needed)} would separate a difference this large at this spread"
        elif p.verdict == SAME and p.bases < 2:  # the interval is the seeds' alone
            text += "; one base shows no spread between bases to say how many would separate it"
        elif p.verdict == SAME:
            text += "; no difference at all on these bases"
        sentences.append(text + ".")
    saving = _saving(costs, pairs, reference, tolerance, cost, confidence) if numeric else None
    return StudySummary(values, reference, pairs, costs, per_base, sentences, saving)


def _saving(
    costs: pd.DataFrame, pairs: list[PairedDifference], reference: str, tolerance: float, cost: str, confidence: float
) -> str | None:
    """The cheapest value whose accuracy loss against the reference stays within ``tolerance`` with confidence
    (the interval's lower end above −tolerance), among the values cheaper than the reference. None when none is
    cheaper (the reference is the cheapest: a study of what more of something buys, not of a saving)."""
    if cost not in costs.columns:
        return None
    by_value = costs.set_index("value")[cost]
    base_cost = float(by_value[reference])
    cheaper = [p for p in pairs if by_value[p.a] < base_cost]
    if not cheaper:
        return None
    ok = [p for p in cheaper if p.lo > -tolerance]
    if not ok:
        return f"No value stays within {100 * tolerance:.1f} point(s) of {reference} at this confidence." + (
            _certify_text(by_value, cheaper, tolerance)
        )
    best = min(ok, key=lambda p: by_value[p.a])
    share = 1 - by_value[best.a] / base_cost
    loss = f"loses at most {100 * -best.lo:.1f} points" if best.lo < 0 else "loses nothing"
    return (
        f"{best.a} saves {100 * share:.0f} % of {reference}'s {cost} and {loss} (the interval's lower end is "
        f"{100 * best.lo:+.1f} points; tolerance {100 * tolerance:.1f})."
    )


def _certify_text(by_value: pd.Series, pairs: list[PairedDifference], tolerance: float) -> str:
    """How many bases would certify the cheapest value (cost ``by_value``) whose mean loss is within the tolerance,
    at the noise its interval shows; empty when no mean is within it or there is no spread to extrapolate from."""
    near = [p for p in pairs if p.mean > -tolerance and np.isfinite(p.sd)]
    if not near:
        return ""
    cheapest = min(near, key=lambda p: by_value[p.a])
    needed = _bases_needed(cheapest.mean, cheapest.mean - cheapest.lo, cheapest.bases, margin=tolerance)
    if needed is None:
        return ""
    return (
        f" The cheapest whose mean loss is within it, {cheapest.a} ({100 * cheapest.mean:+.1f} points), would need "
        f"{_bases_text(needed)} at this spread to be certified ({cheapest.bases} now)."
    )
