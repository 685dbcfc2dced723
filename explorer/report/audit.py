"""The front audit on the page: error bars on the audited points of every Pareto chart and the audit section
(the sentence, the rank agreement, a row per audited trial). Numbers come from ``explorer.analysis.audit``."""

from __future__ import annotations

import html

import pandas as pd

from explorer.analysis import Objective
from explorer.analysis.audit import FRONT_REASON, AuditSummary
from explorer.report.html import fmt, nums, scale, table_html

AUDIT_TRACE = "audited: range over seeds"
SEED_TRACE = "audit seeds"
REFERENCE_TRACE = "reference budget"
AUDIT_COLOUR = "#1f77b4"


def audit_traces(summary: AuditSummary, trials: pd.DataFrame, quality: Objective, cost: Objective) -> list[dict]:
    """Plotly traces for one Pareto chart: the audited points at their search accuracy with an error bar spanning
    every seed's accuracy (the search's included), each audit seed as a small cross, the reference budget as a
    diamond. Each carries the trial number as customdata, so a click opens the trial's card like any point."""
    points = summary.points
    if not len(points) or cost.metric not in trials.columns:
        return []
    costs = trials.drop_duplicates("number").set_index("number")[cost.metric]
    points = points[points["number"].isin(costs.index)]
    y_scale = scale(quality.metric)
    x = nums(costs.loc[points["number"]])
    y = points[quality.metric] * y_scale
    numbers = [int(n) for n in points["number"]]
    traces = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": AUDIT_TRACE,
            "x": x,
            "y": nums(y),
            "customdata": numbers,
            "marker": {"color": "rgba(0,0,0,0)", "size": 15, "line": {"color": AUDIT_COLOUR, "width": 2}},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": nums(points["hi"] * y_scale - y),
                "arrayminus": nums(y - points["lo"] * y_scale),
                "color": AUDIT_COLOUR,
                "thickness": 2,
                "width": 6,
            },
            "text": [
                f"trial {n}: {fmt(lo * y_scale)}–{fmt(hi * y_scale)} over seeds"
                for n, lo, hi in zip(numbers, points["lo"], points["hi"], strict=True)
            ],
            "hovertemplate": "%{text}<extra></extra>",
        }
    ]
    seed_x, seed_y, seed_n = [], [], []
    for x_value, row in zip(x, points.to_dict("records"), strict=True):
        for acc in row["seed_accuracies"]:
            seed_x.append(x_value)
            seed_y.append(acc * y_scale)
            seed_n.append(int(row["number"]))
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": SEED_TRACE,
            "x": seed_x,
            "y": seed_y,
            "customdata": seed_n,
            "marker": {
                "color": AUDIT_COLOUR,
                "symbol": "x-thin-open",
                "size": 9,
                "line": {"width": 2, "color": AUDIT_COLOUR},
            },
            "hovertemplate": "trial %{customdata}, audit seed: %{y:.1f}<extra></extra>",
        }
    )
    referenced = points.dropna(subset=["reference"])
    if len(referenced):
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": REFERENCE_TRACE,
                "x": nums(costs.loc[referenced["number"]]),
                "y": nums(referenced["reference"] * y_scale),
                "customdata": [int(n) for n in referenced["number"]],
                "marker": {"color": "#2ca02c", "symbol": "diamond-open", "size": 10, "line": {"width": 2}},
                "hovertemplate": "trial %{customdata}, reference budget: %{y:.1f}<extra></extra>",
            }
        )
    return traces


def audit_section(summary: AuditSummary | None, quality: Objective, audit_meta: dict | None, epochs: int | None) -> str:
    """The "Front audit" section: the verdict, how it was measured, and a row per audited trial."""
    if summary is None:
        return (
            '<h2 id="audit">Front audit</h2><p class="note">Not run. <code>explorer audit RUN</code> retrains the '
            "front's best points and a few random trials with other seeds and adds error bars here.</p>"
        )
    verdict = f'<p class="verdict" id="audit-verdict">{html.escape(summary.sentence)}</p>'
    how = ""
    if audit_meta:
        reference = (
            f" and once for {audit_meta['reference_epochs']} epochs" if audit_meta.get("reference_epochs") else ""
        )
        seeds = audit_meta.get("seeds", 1)
        how = (
            f'<p class="note">The {audit_meta.get("front")} most accurate Pareto points and '
            f"{audit_meta.get('random')} random complete trials, each trained again with "
            f"{seeds} other seed{'s' if seeds != 1 else ''} for {epochs} epoch{'s' if epochs != 1 else ''}"
            f"{html.escape(reference)}: the same data "
            "and recipe, another init and batch order. On the charts, a blue ring with an error bar spans every "
            "seed's accuracy of an audited point, crosses are the audit seeds.</p>"
        )
    if not len(summary.points):
        return f'<h2 id="audit">Front audit</h2>{verdict}{how}'
    y = scale(quality.metric)
    rows = pd.DataFrame(
        {
            "trial": summary.points["number"],
            "audited as": ["front" if r == FRONT_REASON else "random" for r in summary.points["reason"]],
            "architecture": summary.points["arch_summary"],
            f"search {quality.metric}": [fmt(v * y) for v in summary.points[quality.metric]],
            "audit seeds": [
                ", ".join(f"s{s}: {fmt(a * y)}" for s, a in zip(ss, accs, strict=True))
                for ss, accs in zip(summary.points["seeds"], summary.points["seed_accuracies"], strict=True)
            ],
            "range": [
                f"{fmt(lo * y)}–{fmt(hi * y)}"
                for lo, hi in zip(summary.points["lo"], summary.points["hi"], strict=True)
            ],
            "reference": [fmt(v * y) for v in summary.points["reference"]],
        }
    )
    return f'<h2 id="audit">Front audit</h2>{verdict}{how}{table_html(rows, "audit")}'
