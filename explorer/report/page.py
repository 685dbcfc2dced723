"""The HTML page of one search run, and the comparison page of several.

Sections: header (live banner, downloads), one accuracy-vs-cost Pareto chart per cost objective (click a point →
its card: spec, cost breakdown, training curve, the `explorer cost` command), hypervolume over trials, the
design-space analysis (importance, good ranges, Pareto shares, error EDFs and coloured scatters per choice,
parallel coordinates) and a sortable, filterable trials table.

Everything drawn comes from `explorer.analysis`; here tables become plotly figure dicts (serialised directly, not
through `plotly.graph_objects`, whose validation would cost most of the render time) and HTML. The page loads
`plotly.min.js` from the reports folder (the run folder's parent, shared by every run in it) or inlines it with
`self_contained=True`; never a CDN, so a report opens offline.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from explorer import analysis
from explorer.analysis import Objective, design_space
from explorer.analysis.audit import AuditSummary, load_audit, summarize_audit
from explorer.analysis.fidelity import describe, measurement_for, readme_path
from explorer.report.audit import audit_section, audit_traces
from explorer.report.html import (
    CSS,
    JS,
    PALETTE,
    PLOTLY_JS,
    axis,
    fmt,
    fmt_duration,
    is_missing,
    is_percent,
    label,
    nums,
    plot,
    plotly_tag,
    scale,
    script_json,
    table_html,
    wall_text,
    write_plotly_js,
)
from explorer.report.study import write_study_report

FRONT_TRACE = "Pareto front"
OTHER_TRACE = "other trials"
LIVE_REFRESH_S = 5
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f8c9a"


def _hover_text(row: dict, metrics: list[str], params: list[str], on_front: bool) -> str:
    """Hover label of one trial: number, architecture, metrics, sampled params (text escaped for plotly)."""
    head = f"<b>trial {fmt(row['number'])}</b>" + (" · Pareto" if on_front else "")
    lines = [head, html.escape(str(row.get("arch_summary", "")))]
    lines.append(" · ".join(f"{m} {fmt(row.get(m), is_percent(m))}{'%' if is_percent(m) else ''}" for m in metrics))
    pairs = [f"{p.removeprefix(analysis.PARAM_PREFIX)}={fmt(row[p])}" for p in params if not is_missing(row[p])]
    lines += [html.escape(", ".join(pairs[i : i + 3])) for i in range(0, len(pairs), 3)]
    return "<br>".join(lines)


def pareto_figure(
    table: pd.DataFrame, quality: Objective, cost: Objective, metrics: list[str], params: list[str]
) -> tuple[list[dict], dict]:
    """(data, layout) of `quality` (y) against `cost` (x) from `analysis.pareto_table`; front as a step line.
    Every point carries its trial number as `customdata` (a click opens the trial's card)."""
    y_scale = scale(quality.metric)
    data = []
    for name, rows, colour, size in (
        (OTHER_TRACE, table[~table["on_front"]], OTHER_COLOUR, 7),
        (FRONT_TRACE, table[table["on_front"]], FRONT_COLOUR, 11),
    ):
        front = name == FRONT_TRACE
        records = rows.to_dict("records")
        data.append(
            {
                "type": "scatter",
                "name": name,
                "x": nums(rows[cost.metric]),
                "y": nums(rows[quality.metric] * y_scale),
                "customdata": [int(r["number"]) for r in records],
                "mode": "lines+markers" if front else "markers",
                # rows come sorted by cost: "hv" draws the attainment staircase of a (min cost, max quality) front
                "line": {"shape": "hv" if cost.maximize != quality.maximize else "vh", "color": colour, "width": 1.5},
                "marker": {
                    "color": colour,
                    "size": size,
                    "opacity": 1.0 if front else 0.7,
                    "line": {"width": 1, "color": "white"},
                },
                "text": [_hover_text(r, metrics, params, front) for r in records],
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    layout = {
        "title": {"text": html.escape(f"{quality.metric} vs {cost.metric}"), "x": 0.02},
        "xaxis": axis(cost.metric, table[cost.metric]),
        "yaxis": axis(quality.metric),
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    }
    return data, layout


def _header(meta: dict, trials: pd.DataFrame, objectives: list[Objective], counts: dict[str, int], live: bool) -> str:
    name = meta.get("name", "search run")
    counts_text = f"{counts['complete']} complete / {counts['failed']} failed / {counts['total']} total"
    if counts["infeasible"]:
        counts_text += f" ({counts['infeasible']} infeasible)"
    items = [
        ("task", meta.get("task", "–")),
        ("proxy", _proxy_text(meta)),
        ("fidelity", describe(fidelity := measurement_for(meta))),
        ("objectives", ", ".join(str(o) for o in objectives)),
        ("trials", counts_text),
        (
            "wall time",
            wall_text(meta, trials, "trial")
            + (
                f" (+ {fmt_duration(audit_s)} audit)"
                if (audit_s := (meta.get("audit") or {}).get("wall_time_s"))
                else ""
            ),
        ),
        ("created", meta.get("created", "–")),
        ("space", meta.get("space_file", "–")),
    ]
    skipped = meta.get("skipped_clips") or []
    if skipped:  # clips the dataset listed but nobody could read: the accuracies are on the rest
        shown = "; ".join(f"{s['path']} ({s['reason']})" for s in skipped[:3])
        more = meta.get("skipped_count", len(skipped)) - min(len(skipped), 3)
        items.append(
            (
                "skipped clips",
                f"{meta.get('skipped_count', len(skipped))} unreadable, left out: {shown}"
                + (f" and {more} more (all in run.json)" if more > 0 else ""),
            )
        )
    link = {"fidelity": _readme_link(fidelity)}
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}{link.get(k, '')}</dd>" for k, v in items)
    banner = (
        f'<p class="live" id="live">search running, {counts["total"]} trials so far '
        f"(this page reloads every {LIVE_REFRESH_S} s)</p>"
        if live
        else ""
    )
    downloads = (
        '<p class="downloads">download: <a href="trials.csv" download>trials.csv</a> · '
        '<a href="trials.parquet" download>trials.parquet</a> · <a href="run.json">run.json</a></p>'
    )
    return f'<h1>{html.escape(str(name))}</h1>\n{banner}<dl class="meta">{rows}</dl>{downloads}'


def _readme_link(entry: dict | None) -> str:
    """A link to the fidelity benchmark's README where this installation has the repository beside the package."""
    path = readme_path(entry)
    return f' <a href="{html.escape(path.as_uri())}">README</a>' if path is not None else ""


def _proxy_text(meta: dict) -> str:
    """How each trial was trained: clips per split, epochs, batch, learning rate, init."""
    budget, clips = meta.get("budget") or {}, meta.get("clips") or {}
    sizes = (
        f"{clips['train']:,} training / {clips['val']:,} validation / {clips['test']:,} test clips, "
        if {"train", "val", "test"} <= set(clips)
        else ""
    )
    epochs = budget.get("epochs", "–")
    return (
        f"{sizes}{epochs} epoch{'' if epochs == 1 else 's'}, batch {budget.get('batch_size', '–')}, "
        f"AdamW lr {budget.get('lr', '–')}, {budget.get('init', 'width_scaled')} init; selected on validation"
    )


def _trials_table(df: pd.DataFrame, on_front: np.ndarray, metrics: list[str], params: list[str]) -> str:
    """All trials, in trial order: Pareto rows (over all objectives) marked, failures with their error; cells carry
    their sort value in data-v (the page's script sorts on header clicks and filters on the search box)."""
    extra = [c for c in ("train_time_s", "epochs", "node_ip") if c in df.columns]
    head = ["#", "status", "Pareto"] + [label(m) for m in metrics + extra] + ["architecture"]
    head += [p.removeprefix(analysis.PARAM_PREFIX) for p in params] + ["error"]
    out = [
        f'<p><input id="filter" type="search" placeholder="filter rows (any text)" size="40"> '
        f'<span class="note"><span id="shown">{len(df)}</span> of {len(df)} trials shown; click a header to '
        "sort, a row for its card</span></p>",
        '<table id="trials"><thead><tr>',
        *(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    esc = html.escape
    for row, front in zip(df.to_dict("records"), on_front, strict=True):
        status = str(row.get("status", ""))
        number = esc(fmt(row["number"]))
        css = "front" if front else status.lower()
        cells = [f'<td class="num">{number}</td><td>{esc(status)}</td><td>{"★" if front else ""}</td>']
        for c in metrics + extra:
            v = row.get(c)
            sort = "" if is_missing(v) or isinstance(v, str) else f' data-v="{float(v)!r}"'
            cells.append(f'<td class="num"{sort}>{esc(fmt(v, is_percent(c)))}</td>')
        cells.append(f"<td>{esc(str(row.get('arch_summary', '')))}</td>")
        cells += [f"<td>{esc(fmt(row[p]))}</td>" for p in params]
        cells.append(f'<td class="err">{esc(str(row.get("error", "")))}</td>')
        out.append(f'<tr id="trial-{number}" class="{css}" data-n="{number}">{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _parse_json(text: object, default):
    if not isinstance(text, str) or not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return default


def _trial_cards(df: pd.DataFrame, on_front: np.ndarray, metrics: list[str], params: list[str], run_path: str) -> dict:
    """What a card shows, per trial number: summary, metrics, choices, cost breakdown, history, spec, command."""
    cards = {}
    for row, front in zip(df.to_dict("records"), on_front, strict=True):
        arch_hash = str(row.get("arch_hash", ""))
        spec = _parse_json(row.get("arch_json"), None)
        cards[str(int(row["number"]))] = {
            "summary": str(row.get("arch_summary", "")),
            "front": bool(front),
            "metrics": {"status": row.get("status", ""), **{m: fmt(row.get(m), is_percent(m)) for m in metrics}},
            "params": {p.removeprefix(analysis.PARAM_PREFIX): fmt(row[p]) for p in params if not is_missing(row[p])},
            "cost": _parse_json(row.get("cost_json"), {}),
            "history": _parse_json(row.get("history_json"), []),
            "spec": json.dumps(spec, indent=1) if spec is not None else "(no spec: the sample was not buildable)",
            "command": (
                f"explorer cost {run_path}/archs/{arch_hash}.json --no-latency"
                if arch_hash
                else f"explorer export {run_path} --pareto"
            ),
        }
    return cards


def _importance_section(importances: list[design_space.Importance]) -> str:
    """One grouped bar chart (a bar group per parameter, a colour per objective) and a note per objective whose
    importance could not be computed."""
    notes = [
        f'<p class="note">Importance for {html.escape(i.objective)} could not be computed: {html.escape(i.reason)}</p>'
        for i in importances
        if not i.values
    ]
    shown = [i for i in importances if i.values]
    if not shown:
        return "".join(notes)
    names = sorted({n for i in shown for n in i.values}, key=lambda n: max(i.values.get(n, 0) for i in shown))
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": f"{imp.objective} ({imp.source})",
            "y": names,
            "x": [imp.values.get(n, 0.0) for n in names],
            "marker": {"color": PALETTE[k % len(PALETTE)]},
        }
        for k, imp in enumerate(shown)
    ]
    layout = {
        "title": {"text": "parameter importance per objective (PED-ANOVA)", "x": 0.02},
        "barmode": "group",
        "xaxis": {"title": {"text": "importance (sums to 1 per objective)"}, "range": [0, 1]},
        "margin": {"l": 140, "r": 20, "t": 50, "b": 50},
    }
    height = max(260, 80 + 22 * len(names) * len(shown))
    return "".join(notes) + f'<div class="charts">{plot("importance", data, layout, height=height)}</div>'


def _design_space(
    trials: pd.DataFrame,
    objectives: list[Objective],
    quality: Objective,
    costs: list[Objective],
    run_dir: Path | None,
    importance: bool,
) -> str:
    """Importance, good ranges, Pareto shares, per-choice EDFs + coloured scatters, parallel coordinates."""
    params = analysis.param_columns(trials)
    if not params:
        return '<p class="note">No searched parameters in the trials table.</p>'
    out = ["<h3>Parameter importance</h3>"]
    if importance:
        out.append(_importance_section(design_space.param_importances(trials, objectives, run_dir)))
    else:
        out.append('<p class="note">computed when the search has finished</p>')

    ranges = design_space.good_ranges(trials, quality.metric, quality.maximize)
    out.append("<h3>Good ranges (bootstrapped, 95%)</h3>")
    if len(ranges):
        out.append(
            '<p class="note">pycls: draw 25% of the trials with replacement, keep the best one\'s value, '
            "2000 times; lo–hi is the central 95% of those values.</p>"
        )
        out.append(table_html(ranges.assign(param=ranges["param"].str.removeprefix(analysis.PARAM_PREFIX)), "ranges"))
    else:
        out.append('<p class="note">no numeric choice with complete trials</p>')

    shares = design_space.front_shares(trials, objectives)
    out.append(
        "<h3>Pareto shares per choice</h3>"
        '<p class="note">n_front: Pareto trials (all objectives) with this value; share: of the front; '
        "rate: of the trials with this value.</p>"
    )
    out.append(
        table_html(
            shares.assign(
                param=shares["param"].str.removeprefix(analysis.PARAM_PREFIX),
                share=shares["share"].round(3),
                rate=shares["rate"].round(3),
            ),
            "shares",
        )
    )

    out.append(
        "<h3>Error EDFs and scatters per choice</h3>"
        '<p class="note">Left, EDF F(e): fraction of the trials with this value whose error is below e '
        "(further left and higher is better). Right: the trials coloured by the value (click a point for "
        "its card).</p>"
    )
    out.append(_per_choice_figure(trials, params, quality, costs))

    table, labels = design_space.parallel_table(trials, objectives)
    if len(table):
        dims = []
        for col in table.columns[1:]:
            dim = {"label": col, "values": nums(table[col])}
            if col in labels:
                dim.update(tickvals=list(range(len(labels[col]))), ticktext=labels[col])
            dims.append(dim)
        colour = nums(table[quality.metric]) if quality.metric in table else None
        data = [
            {
                "type": "parcoords",
                "dimensions": dims,
                "line": {"color": colour, "colorscale": "Viridis", "showscale": True},
            }
        ]
        out.append("<h3>Parallel coordinates</h3>")
        out.append('<p class="note">Drag along an axis to filter the trials (drawn when scrolled into view).</p>')
        out.append(plot("parcoords", data, {"margin": {"l": 60, "r": 60, "t": 60, "b": 30}}, height=420, lazy=True))
    return "\n".join(out)


ROW_HEIGHT = 300


def _per_choice_figure(trials: pd.DataFrame, params: list[str], quality: Objective, costs: list[Objective]) -> str:
    """Small multiples in ONE figure (one Plotly.newPlot is far cheaper than one per chart): a row per searched
    parameter, its error EDFs per value on the left, quality vs the first cost coloured by value on the right, and
    a legend per row."""
    edfs = design_space.error_edfs(trials, quality.metric, quality.maximize)
    complete = trials[trials["status"] == analysis.STATUS_COMPLETE]
    cost = costs[0] if costs and costs[0].metric in trials.columns else None
    n = len(params)
    gap = 0.35 / n / 2 if n > 1 else 0.0
    err_label = "error (%)" if is_percent(quality.metric) else quality.metric
    # accuracy stored as a fraction: errors drawn in % like the accuracy axes
    err_scale = 100.0 if is_percent(quality.metric) and len(edfs) and edfs["error"].max() <= 1.0 else 1.0
    data, layout = [], {"showlegend": True, "annotations": [], "margin": {"l": 60, "r": 20, "t": 30, "b": 40}}
    for k, p in enumerate(params):
        name = p.removeprefix(analysis.PARAM_PREFIX)
        top, bottom = 1 - k / n - gap, 1 - (k + 1) / n + gap
        ax_e, ax_s = 2 * k + 1, 2 * k + 2
        legend = "legend" if k == 0 else f"legend{k + 1}"
        layout[legend] = {"x": 0.91, "y": top, "yanchor": "top", "xanchor": "left", "title": {"text": name}}
        layout[f"xaxis{ax_e}"] = {
            "domain": [0, 0.42],
            "anchor": f"y{ax_e}",
            "title": {"text": err_label},
            "gridcolor": "#eee",
        }
        layout[f"yaxis{ax_e}"] = {
            "domain": [bottom, top],
            "anchor": f"x{ax_e}",
            "range": [0, 1.02],
            "title": {"text": "EDF"},
            "gridcolor": "#eee",
        }
        layout["annotations"].append(
            {
                "text": f"<b>{html.escape(name)}</b>",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": top,
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
        keys = complete[p].map(design_space.value_key)
        for j, (value, grp) in enumerate(edfs[edfs["param"] == p].groupby("value", sort=False)):
            colour = PALETTE[j % len(PALETTE)]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "line": {"shape": "hv", "color": colour},
                    "name": f"{value} (n={len(grp)})",
                    "legendgroup": f"{k}-{value}",
                    "legend": legend,
                    "xaxis": f"x{ax_e}",
                    "yaxis": f"y{ax_e}",
                    "x": nums(grp["error"] * err_scale),
                    "y": nums(grp["edf"]),
                }
            )
            if cost is not None:
                rows = complete[keys == value]
                data.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": value,
                        "legendgroup": f"{k}-{value}",
                        "showlegend": False,
                        "xaxis": f"x{ax_s}",
                        "yaxis": f"y{ax_s}",
                        "x": nums(rows[cost.metric]),
                        "y": nums(rows[quality.metric] * scale(quality.metric)),
                        "customdata": [int(x) for x in rows["number"]],
                        # one template per trace, not a text per point: smaller page, faster draw
                        "hovertemplate": f"trial %{{customdata}}: {html.escape(name)}={html.escape(value)}"
                        "<extra></extra>",
                        "marker": {"color": colour, "size": 6, "opacity": 0.8},
                    }
                )
        if cost is not None:
            layout[f"xaxis{ax_s}"] = {
                **axis(cost.metric, complete[cost.metric]),
                "domain": [0.5, 0.9],
                "anchor": f"y{ax_s}",
            }
            layout[f"yaxis{ax_s}"] = {**axis(quality.metric), "domain": [bottom, top], "anchor": f"x{ax_s}"}
    return plot("per-choice", data, layout, css="pareto", height=ROW_HEIGHT * n + 40)


def render_page(
    meta: dict,
    trials: pd.DataFrame,
    *,
    run_dir: str | Path | None = None,
    live: bool = False,
    plotly_src: str | None = f"../{PLOTLY_JS}",
    audit: pd.DataFrame | None = None,
) -> str:
    """The whole index.html of a run, as text. `plotly_src`: where the page loads plotly.min.js from (None inlines
    it). `live`: the page reloads itself and says the search is running; importance waits for the end. `audit`:
    the run's audit rows (`explorer.analysis.audit.load_audit`), drawn as error bars and the audit section."""
    objectives = analysis.parse_objectives(meta["objectives"])
    quality, costs = analysis.split_objectives(objectives)
    epochs = (meta.get("budget") or {}).get("epochs")
    summary: AuditSummary | None = None
    if audit is not None and len(audit) and quality.metric in trials.columns:
        summary = summarize_audit(trials, audit, quality.metric, epochs=epochs)
    metrics = [o.metric for o in objectives]
    metrics += [m for m in analysis.METRIC_COLUMNS if m in trials.columns and m not in metrics]
    params = analysis.param_columns(trials)
    counts = analysis.run_counts(trials)
    run_path = str(run_dir) if run_dir is not None else f"reports/{meta.get('name', 'RUN')}"

    charts = []
    for cost in costs:
        if cost.metric not in trials.columns:
            charts.append(f'<p class="note">No column for objective {html.escape(cost.metric)}.</p>')
            continue
        data, layout = pareto_figure(analysis.pareto_table(trials, [quality, cost]), quality, cost, metrics, params)
        if summary is not None:
            data += audit_traces(summary, trials, quality, cost)
        charts.append(plot(f"fig-{cost.metric}", data, layout, css="pareto", height=460))
    sections = [
        f'<h2>Speed–accuracy</h2><p class="note">Click a point for its card.</p>'
        f'<div class="charts">{"".join(charts)}</div>'
    ]
    if not live:
        sections.append(audit_section(summary, quality, meta.get("audit"), epochs))
    has_complete = counts["complete"] > 0 and all(o.metric in trials.columns for o in objectives)
    if has_complete:
        on_front = analysis.front_mask(trials, objectives)
        hv = analysis.hypervolume_history(trials, objectives)
        ref = f"{analysis.HV_REFERENCE}^{len(objectives)} = {analysis.HV_REFERENCE ** len(objectives):.3g}"
        data = [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "line": {"shape": "hv"},
                "x": nums(hv["number"]),
                "y": nums(hv["hypervolume"]),
                "name": "hypervolume",
            }
        ]
        sections.append(
            "<h2>Hypervolume over trials</h2>"
            f'<p class="note">Objectives normalised to [0, 1] over the complete trials (0 = best seen), reference '
            f"point {analysis.HV_REFERENCE} on every axis, so a single ideal point scores {html.escape(ref)}.</p>"
            + plot(
                "hv",
                data,
                {"xaxis": {"title": {"text": "trial"}}, "yaxis": {"title": {"text": "hypervolume"}}},
                height=320,
            )
        )
        sections.append(
            "<h2>Design space</h2>"
            + _design_space(trials, objectives, quality, costs, Path(run_dir) if run_dir else None, not live)
        )
    else:
        on_front = np.zeros(len(trials), dtype=bool)
        sections.insert(0, '<p class="note">No complete trials yet.</p>')

    title = html.escape(str(meta.get("name", "search run")))
    refresh = f'<meta http-equiv="refresh" content="{LIVE_REFRESH_S}">' if live else ""
    cards = _trial_cards(trials, on_front, metrics, params, run_path)
    return "\n".join(
        [
            "<!doctype html>",
            f'<html lang="en"><head><meta charset="utf-8">{refresh}<title>{title} · explorer report</title>',
            f"<style>{CSS}</style>",
            plotly_tag(plotly_src) + "</head><body>",
            _header(meta, trials, objectives, counts, live),
            *sections,
            "<h2>Trials</h2>",
            '<p class="note">★ = Pareto-optimal over all objectives.</p>',
            _trials_table(trials, on_front, metrics, params),
            '<div id="card" class="card" hidden><button class="close" title="close">×</button><div class="body"></div>'
            "</div>",
            f'<script type="application/json" id="trial-data">{script_json(cards)}</script>',
            f"<script>{JS}</script>",
            "</body></html>",
        ]
    )


def write_report(run_dir: str | Path, live: bool | None = None, self_contained: bool = False) -> Path:
    """Write `<run_dir>/index.html` from the run's files and return its path.

    The page loads `../plotly.min.js` (one copy per reports folder, written when missing or stale) unless
    `self_contained`, which inlines it. `live=None` follows run.json's "state" ("running" → live page)."""
    run_dir = Path(run_dir)
    meta = analysis.load_run_meta(run_dir)
    if meta.get("kind") == "study":
        return write_study_report(run_dir, meta)
    if live is None:
        live = meta.get("state") == "running"
    if not self_contained:
        write_plotly_js(run_dir.resolve().parent)
    page = render_page(
        meta,
        analysis.load_trials(run_dir),
        run_dir=run_dir,
        live=live,
        plotly_src=None if self_contained else f"../{PLOTLY_JS}",
        audit=load_audit(run_dir),
    )
    path = run_dir / "index.html"
    tmp = run_dir / f".index.html.{os.getpid()}.tmp"  # a live page reloads every few seconds: never show half a page
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
