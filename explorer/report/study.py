"""The page of a factor study: the verdicts first, then the paired differences with their intervals, one line per
base across the values, each value's cost and the cells. Numbers come from ``explorer.analysis.study``."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from explorer.analysis import STUDY_ROLE, load_trials
from explorer.analysis.study import StudySummary, cell_table, is_numeric_factor, summarize_study
from explorer.report.html import (
    CSS,
    PALETTE,
    PLOTLY_JS,
    fmt,
    nums,
    plot,
    plotly_tag,
    table_html,
    wall_text,
    write_plotly_js,
)

READY_JS = "<script>Promise.all(window.PLOTS||[]).then(()=>{document.body.dataset.plots='drawn';});</script>"


def _difference_figure(summary: StudySummary) -> tuple[list[dict], dict]:
    pairs = summary.pairs
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"value − {summary.reference}",
            "x": [p.a for p in pairs],
            "y": nums([100 * p.mean for p in pairs]),
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": nums([100 * (p.hi - p.mean) for p in pairs]),
                "arrayminus": nums([100 * (p.mean - p.lo) for p in pairs]),
                "thickness": 2,
                "width": 8,
            },
            "marker": {"size": 11, "color": PALETTE[0]},
            "text": [f"{p.verdict}, {p.bases} bases" for p in pairs],
            "hovertemplate": "%{x}: %{y:+.1f} points (%{text})<extra></extra>",
        }
    ]
    layout = {
        "title": {"text": html.escape(f"paired difference in accuracy against {summary.reference}"), "x": 0.02},
        "xaxis": {"title": {"text": "value"}, "type": "category"},
        "yaxis": {
            "title": {"text": "accuracy difference (points)"},
            "zeroline": True,
            "zerolinecolor": "#888",
            "gridcolor": "#eee",
        },
        "showlegend": False,
    }
    return data, layout


def _per_base_figure(summary: StudySummary) -> tuple[list[dict], dict]:
    data = []
    for k, (base, row) in enumerate(summary.per_base.iterrows()):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"base {base}",
                "x": summary.values,
                "y": nums(row.to_numpy() * 100),
                "line": {"color": PALETTE[k % len(PALETTE)], "width": 1.5},
                "hovertemplate": f"base {base}, %{{x}}: %{{y:.1f}} %<extra></extra>",
            }
        )
    layout = {
        "title": {"text": "each base across the values (mean over seeds)", "x": 0.02},
        "xaxis": {"title": {"text": "value"}, "type": "category"},
        "yaxis": {"title": {"text": "accuracy (%)"}, "gridcolor": "#eee"},
    }
    return data, layout


def _match_text(match: dict | None, rows: pd.DataFrame) -> str:
    if not match:
        return "none: each value at its bases' own cost (see the cost table)"
    unmatched = int((~rows["matched"].astype(bool)).sum()) if "matched" in rows.columns else 0
    return (
        f"{match['metric']} within {100 * match['tolerance']:.0f} % of the first value's on each base, by "
        f"{match['adjust']}; {unmatched} cell(s) outside it left out of the verdicts"
    )


def render_study_page(meta: dict, rows: pd.DataFrame) -> str:
    study = meta["study"]
    values = [str(v) for v in study["factor"]["values"]]
    numeric = is_numeric_factor(study["factor"]["values"])
    cells = cell_table(rows) if len(rows) else pd.DataFrame(columns=["base", "value", "seed", "accuracy"])
    title = html.escape(str(meta.get("name", "study")))
    head = [
        f"<h1>{title}</h1>",
        f'<p class="note">{html.escape(study.get("description", ""))}</p>',
        '<dl class="meta">'
        + "".join(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in (
                ("factor", f"{study['factor']['param']}: {', '.join(values)}"),
                ("space", meta.get("space_file", "–")),
                ("task", meta.get("task", "–")),
                (
                    "recipe",
                    f"{meta['budget']['epochs']} epochs, batch {meta['budget']['batch_size']}, AdamW lr "
                    f"{meta['budget']['lr']}; accuracy on the validation split",
                ),
                (
                    "cells",
                    f"{len(cells)} complete of {study['bases'] * len(values) * study['seeds']} "
                    f"({study['bases']} bases × {len(values)} values × {study['seeds']} seeds)",
                ),
                ("cost match", _match_text(study.get("cost_match"), rows)),
                ("wall time", wall_text(meta, rows, "cell")),
            )
        )
        + "</dl>",
    ]
    body: list[str] = []
    if len(cells) == 0:
        body.append('<p class="note">No cell has finished yet.</p>')
    else:
        summary = summarize_study(
            cells, values, confidence=study["confidence"], tolerance=study["tolerance"], numeric=numeric
        )
        verdicts = "".join(f"<li>{html.escape(s)}</li>" for s in summary.sentences)
        body.append(f'<h2>Verdicts</h2><ul class="verdict" id="verdicts">{verdicts}</ul>')
        if summary.saving:
            body.append(f'<p class="verdict" id="saving">{html.escape(summary.saving)}</p>')
        body.append(
            '<p class="note">Each difference is taken on the same base architecture (every other parameter '
            "held), averaged over the bases; the interval resamples the bases and, within each, the seeds. "
            "A verdict is better/worse when the interval excludes 0.</p>"
        )
        charts = [
            plot("differences", *_difference_figure(summary), height=380),
            plot("per-base", *_per_base_figure(summary), height=380),
        ]
        body.append(f'<div class="charts">{"".join(charts)}</div>')
        costs = summary.costs.copy()
        costs["accuracy"] = [fmt(v * 100) for v in costs["accuracy"]]
        body.append("<h2>Cost per value</h2>" + table_html(costs, "costs"))
    columns = [
        "number",
        "base",
        "value",
        "seed",
        "status",
        "accuracy",
        "gflops",
        "cost_ratio",
        "matched",
        "arch_summary",
        "error",
    ]
    shown = rows[[c for c in columns if c in rows.columns]] if len(rows) else rows
    body.append("<h2>Cells</h2>" + table_html(shown, "cells"))
    page_head = (
        f'<html lang="en"><head><meta charset="utf-8"><title>{title} · explorer study</title>'
        f"<style>{CSS}</style>{plotly_tag(f'../{PLOTLY_JS}')}</head><body>"
    )
    return "\n".join(["<!doctype html>", page_head, *head, *body, READY_JS, "</body></html>"])


def write_study_report(run_dir: str | Path, meta: dict) -> Path:
    """``<run_dir>/index.html`` of a study run (plotly.js from the reports folder, like a run page)."""
    run_dir = Path(run_dir)
    write_plotly_js(run_dir.resolve().parent)
    path = run_dir / "index.html"
    rows = load_trials(run_dir, role=STUDY_ROLE) if (run_dir / "trials.parquet").exists() else pd.DataFrame()
    tmp = run_dir / ".index.html.tmp"
    tmp.write_text(render_study_page(meta, rows), encoding="utf-8")
    tmp.replace(path)
    return path


def render_study_comparison(studies: dict[str, tuple[dict, pd.DataFrame]]) -> str:
    """Several studies of the same factor on one page: their paired differences side by side, per value, with
    their intervals, and every study's verdicts."""
    data, sections = [], []
    for k, (name, (meta, rows)) in enumerate(studies.items()):
        spec = meta["study"]
        values = [str(v) for v in spec["factor"]["values"]]
        summary = summarize_study(cell_table(rows), values, confidence=spec["confidence"], tolerance=spec["tolerance"])
        pairs = summary.pairs
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": html.escape(name),
                "x": [p.a for p in pairs],
                "y": nums([100 * p.mean for p in pairs]),
                "marker": {"size": 11, "color": PALETTE[k % 10]},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "thickness": 2,
                    "width": 8,
                    "array": nums([100 * (p.hi - p.mean) for p in pairs]),
                    "arrayminus": nums([100 * (p.mean - p.lo) for p in pairs]),
                },
            }
        )
        items = "".join(f"<li>{html.escape(s)}</li>" for s in summary.sentences)
        sections.append(f'<h3>{html.escape(name)}</h3><ul class="verdict">{items}</ul>')
    factor = next(iter(studies.values()))[0]["study"]["factor"]["param"]
    layout = {
        "title": {"text": html.escape(f"paired difference in accuracy by value of {factor}"), "x": 0.02},
        "xaxis": {"title": {"text": "value"}, "type": "category"},
        "scattermode": "group",
        "yaxis": {
            "title": {"text": "accuracy difference (points)"},
            "zeroline": True,
            "zerolinecolor": "#888",
            "gridcolor": "#eee",
        },
    }
    page_head = (
        f'<html lang="en"><head><meta charset="utf-8"><title>studies of {html.escape(factor)} · explorer'
        f"</title><style>{CSS}</style>{plotly_tag(PLOTLY_JS)}</head><body>"
    )
    return "\n".join(
        [
            "<!doctype html>",
            page_head,
            f"<h1>Studies of {html.escape(factor)}</h1>",
            f'<div class="charts">{plot("differences", data, layout, height=420)}</div>',
            *sections,
            READY_JS,
            "</body></html>",
        ]
    )


def write_study_comparison(run_dirs: list[Path], out: Path) -> Path:
    """The comparison page of several study runs of one factor; ``ValueError`` when their factors differ."""
    from explorer.analysis import load_run_meta

    studies: dict[str, tuple[dict, pd.DataFrame]] = {}
    for d in run_dirs:
        meta = load_run_meta(d)
        name = Path(d).resolve().name
        while name in studies:
            name += "'"
        studies[name] = (meta, load_trials(d, role=STUDY_ROLE))
    factors = {m["study"]["factor"]["param"] for m, _ in studies.values()}
    if len(factors) > 1:
        raise ValueError(
            f"these studies compare different factors ({', '.join(sorted(factors))}): an overlay needs one"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out.parent)
    out.write_text(render_study_comparison(studies), encoding="utf-8")
    return out
