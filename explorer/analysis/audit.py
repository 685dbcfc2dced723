"""The front audit of a run: which trials to retrain, and what their retraining says about the front's order.

After a search, the most accurate points of its Pareto front and a few random complete trials are trained again
with other seeds (and, when asked, at a longer reference budget) by the same machinery. Their rows live in the
trials table with ``role == "audit"`` (``load_trials`` leaves them out; ``load_audit`` reads them), ``audit_of``
naming the search trial they retrain. Here the rows become the numbers the report draws: each audited point's
accuracies across seeds, the rank agreement between the search and the audit, and a plain sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.analysis import (
    AUDIT_ROLE,
    STATUS_COMPLETE,
    ObjectiveLike,
    distinct_complete,
    load_trials,
    pareto_table,
    split_objectives,
)
from explorer.analysis.ranking import kendall_tau_b

FRONT_REASON, RANDOM_REASON = "front", "random"


@dataclass(frozen=True)
class AuditJob:
    """One retraining: search trial ``number`` with training seed ``seed`` for ``epochs``. ``arch_json`` is the
    trial's Arch as the table recorded it (trained as it is: the same architecture, whatever types the table's
    parameter columns took); ``params`` are its sampled parameters, for the audit row's columns."""

    number: int
    reason: str  # FRONT_REASON or RANDOM_REASON
    seed: int
    epochs: int
    arch_json: str = field(default="", compare=False)
    params: dict = field(default_factory=dict, compare=False)

    @property
    def trial_id(self) -> str:
        return f"audit-{self.number}-s{self.seed}-e{self.epochs}"


def audit_selection(
    df: pd.DataFrame, objectives: Iterable[ObjectiveLike], front: int, random: int, seed: int = 0
) -> list[tuple[int, str]]:
    """``(trial number, reason)`` of the trials to audit: the ``front`` most accurate points of the Pareto front
    (over all objectives), then ``random`` others drawn (seeded) from the remaining complete trials; each
    architecture once (a replayed duplicate would only repeat its original)."""
    objectives = list(objectives)
    quality, _ = split_objectives(objectives)
    table = pareto_table(df[distinct_complete(df)], objectives)
    on_front = table[table["on_front"]].sort_values(quality.metric, ascending=not quality.maximize, kind="stable")
    picked = [int(n) for n in on_front["number"].head(front)]
    rest = sorted(int(n) for n in table["number"] if int(n) not in picked)
    drawn = np.random.default_rng(seed).choice(rest, size=min(random, len(rest)), replace=False) if rest else []
    return [(n, FRONT_REASON) for n in picked] + [(int(n), RANDOM_REASON) for n in sorted(drawn)]


def audit_jobs(
    df: pd.DataFrame,
    objectives: Iterable[ObjectiveLike],
    *,
    front: int,
    random: int,
    seeds: int,
    base_seed: int,
    epochs: int,
    reference_epochs: int | None,
) -> list[AuditJob]:
    """Every retraining of the audit: ``seeds`` new training seeds (``base_seed + 1`` ...) at the search's
    ``epochs`` for each selected trial, and one run at ``reference_epochs`` (the search's seed) when set."""
    rows = df.set_index(df["number"].astype(int))
    params = [c for c in df.columns if c.startswith("param.")]
    jobs = []
    for number, reason in audit_selection(df, objectives, front, random, seed=base_seed):
        spec = str(rows.at[number, "arch_json"])
        config = {
            c.removeprefix("param."): _plain(rows.at[number, c]) for c in params if not _missing(rows.at[number, c])
        }
        jobs += [AuditJob(number, reason, base_seed + k, epochs, spec, config) for k in range(1, seeds + 1)]
        if reference_epochs:
            jobs.append(AuditJob(number, reason, base_seed, reference_epochs, spec, config))
    return jobs


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _plain(value: object) -> object:
    """A numpy scalar from the table as a plain Python value (the job is JSON, sent to Ray Tune)."""
    return value.item() if isinstance(value, np.generic) else value


def load_audit(run_dir: str | Path) -> pd.DataFrame:
    """The audit rows of a run's trials table (empty when it has none)."""
    return load_trials(run_dir, role=AUDIT_ROLE)


@dataclass(frozen=True)
class AuditSummary:
    """What the audit found. ``points``: one row per audited trial (number, reason, arch_summary, the search's
    accuracy, ``seed_accuracies`` at the search's budget, their ``lo``/``hi`` including the search's, ``audit_mean``,
    ``reference`` at the longer budget or NaN). ``tau``: Kendall τ-b between search and audit accuracy over the
    audited trials; ``held``: whether the audited front points kept their accuracy order (None: fewer than 2)."""

    points: pd.DataFrame
    tau: float
    reference_tau: float
    held: bool | None
    mean_change: float  # mean |audit - search| accuracy, in the accuracy's own unit
    sentence: str
    swaps: list[tuple[int, int]] = field(default_factory=list)


def summarize_audit(
    search: pd.DataFrame, audit: pd.DataFrame, quality: str = "accuracy", epochs: int | None = None
) -> AuditSummary:
    """The audit's numbers from the search rows and the audit rows; ``epochs``: the search's budget (audit rows
    with more epochs are the reference budget)."""
    done = audit[audit["status"] == STATUS_COMPLETE] if len(audit) else audit
    if not len(done):
        return AuditSummary(
            pd.DataFrame(), float("nan"), float("nan"), None, float("nan"), "No audit run has finished yet."
        )
    epochs = epochs or int(done["epochs"].min())
    by_number = search.set_index(search["number"].astype(int))
    points = []
    for number, rows in done.groupby(done["audit_of"].astype(int), sort=False):
        same = rows[rows["epochs"] == epochs]
        longer = rows[rows["epochs"] > epochs]
        searched = float(by_number.at[number, quality])
        accs = [float(a) for a in same[quality]]
        points.append(
            {
                "number": number,
                "reason": str(rows["audit_reason"].iloc[0]),
                "arch_summary": str(by_number.at[number, "arch_summary"]),
                quality: searched,
                "seeds": [int(s) for s in same["seed"]],
                "seed_accuracies": accs,
                "lo": min([searched, *accs]),
                "hi": max([searched, *accs]),
                "audit_mean": float(np.mean(accs)) if accs else float("nan"),
                "reference": float(longer[quality].mean()) if len(longer) else float("nan"),
            }
        )
    table = pd.DataFrame(points).sort_values(quality, ascending=False, kind="stable").reset_index(drop=True)
    seeded = table.dropna(subset=["audit_mean"])
    tau = kendall_tau_b(seeded[quality], seeded["audit_mean"]) if len(seeded) >= 2 else float("nan")
    referenced = table.dropna(subset=["reference"])
    ref_tau = kendall_tau_b(referenced[quality], referenced["reference"]) if len(referenced) >= 2 else float("nan")
    change = float((seeded["audit_mean"] - seeded[quality]).abs().mean()) if len(seeded) else float("nan")
    front = seeded[seeded["reason"] == FRONT_REASON]
    swaps = _swaps(front, quality)
    held = None if len(front) < 2 else not swaps
    sentence = _sentence(table, front, swaps, held, tau, ref_tau, change, quality)
    return AuditSummary(table, tau, ref_tau, held, change, sentence, swaps)


def _swaps(front: pd.DataFrame, quality: str) -> list[tuple[int, int]]:
    """Pairs (a, b) of audited front trials with a ahead of b in the search and behind it in the audit."""
    rows = front.to_dict("records")
    return [
        (int(a["number"]), int(b["number"]))
        for i, a in enumerate(rows)
        for b in rows[i + 1 :]
        if a[quality] > b[quality] and a["audit_mean"] < b["audit_mean"]
    ]


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _sentence(
    table: pd.DataFrame,
    front: pd.DataFrame,
    swaps: list[tuple[int, int]],
    held: bool | None,
    tau: float,
    ref_tau: float,
    change: float,
    quality: str,
) -> str:
    seeds = sorted({s for seeds in table["seeds"] for s in seeds})
    under = (
        f"another seed ({', '.join(map(str, seeds))})"
        if len(seeds) == 1
        else f"{len(seeds)} other seeds ({', '.join(map(str, seeds))})"
    )
    if held is None:
        head = f"Too few audited front points ({len(front)}) to check the front's order under {under}."
    elif held:
        head = f"The front's order held under {under}: its {len(front)} audited points kept their {quality} order."
    else:
        acc = front.set_index("number")
        a, b = swaps[0]
        head = (
            f"The front's order did not hold under {under}: trial {a} ({_pct(acc.at[a, quality])} in the "
            f"search, {_pct(acc.at[a, 'audit_mean'])} audited) fell below trial {b} "
            f"({_pct(acc.at[b, quality])}, {_pct(acc.at[b, 'audit_mean'])})"
            + (f", and {len(swaps) - 1} more pair(s) swapped." if len(swaps) > 1 else ".")
        )
    parts = [head]
    if not np.isnan(tau):
        parts.append(
            f"Kendall τ-b between search and audit {quality} over the {int(table['audit_mean'].notna().sum())}"
            f" audited trials: {tau:.2f}; {quality} moved by {100 * change:.1f} points on average."
        )
    if not np.isnan(ref_tau):
        parts.append(
            f"Against the longer reference budget: τ-b {ref_tau:.2f} over "
            f"{int(table['reference'].notna().sum())} trials."
        )
    return " ".join(parts)
