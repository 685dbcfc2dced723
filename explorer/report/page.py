"""The HTML page of one search run: a header, one accuracy-vs-cost chart per cost objective, the trials table.

Everything drawn here comes from `explorer.analysis`; this module only turns tables into plotly figures and HTML.
The page loads `plotly.min.js` from its own folder (never a CDN), so a run folder opens offline.
"""

from __future__ import annotations

import html
import math
import numbers
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from explorer import analysis
from explorer.analysis import Objective

PLOTLY_JS = "plotly.min.js"
FRONT_TRACE = "Pareto front"
OTHER_TRACE = "other trials"

LABELS = {
    "accuracy": "accuracy (%)",
    "gflops": "GFLOPs",
    "params_m": "params (M)",
    "latency_ms": "latency (ms)",
    "train_time_s": "train time (s)",
}
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f8c9a"

# Charts sit in fixed grid tracks (auto-fill, not flex): plotly sizes each chart when its inline script runs,
# before the next chart exists, so a flex row would first give the whole width to the first chart.
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin:0 0 .3em}
.meta{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin-bottom:1em}
.meta dt{color:#666}.meta dd{margin:0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1em}
.chart{min-width:0}
table{border-collapse:collapse;font-size:.85em;margin-top:.5em}
th,td{border-bottom:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.front td{background:#fdecea}tr.failed td,tr.infeasible td{color:#888}
td.err{color:#b00;white-space:pre-wrap;min-width:16em;max-width:40em;font-family:monospace;font-size:.95em}
.note{color:#666}
"""


def _is_percent(metric: str) -> bool:
    return metric == "accuracy" or metric.startswith(("acc", "top"))


def _label(metric: str) -> str:
    if metric in LABELS:
        return LABELS[metric]
    return f"{metric} (%)" if _is_percent(metric) else metric


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: object, percent: bool = False) -> str:
    """A value as short display text ('–' when missing); `percent` shows a fraction as a percentage."""
    if _is_missing(value):
        return "–"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if percent:
            return f"{100 * number:.1f}"
        return f"{number:.0f}" if abs(number) >= 1e4 else f"{number:.4g}"
    return str(value)


def _fmt_duration(seconds: float | None) -> str:
    if _is_missing(seconds):
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _hover_text(row: pd.Series, metrics: list[str], params: list[str], on_front: bool) -> str:
    """Hover label of one trial: number, architecture, metrics, sampled params (text escaped for plotly)."""
    head = f"<b>trial {_fmt(row['number'])}</b>" + (" · Pareto" if on_front else "")
    lines = [head, html.escape(str(row.get("arch_summary", "")))]
    lines.append(
        " · ".join(f"{m} {_fmt(row[m], _is_percent(m))}{'%' if _is_percent(m) else ''}" for m in metrics)
    )
    pairs = [f"{p.removeprefix(analysis.PARAM_PREFIX)}={_fmt(row[p])}" for p in params if not _is_missing(row[p])]
    lines += [html.escape(", ".join(pairs[i : i + 3])) for i in range(0, len(pairs), 3)]
    return "<br>".join(lines)


def pareto_figure(
    table: pd.DataFrame, quality: Objective, cost: Objective, metrics: list[str], params: list[str]
) -> go.Figure:
    """Scatter of `quality` (y) against `cost` (x) from `analysis.pareto_table`; the front as a step line."""
    scale = 100.0 if _is_percent(quality.metric) else 1.0
    fig = go.Figure()
    for name, rows, colour, size in (
        (OTHER_TRACE, table[~table["on_front"]], OTHER_COLOUR, 7),
        (FRONT_TRACE, table[table["on_front"]], FRONT_COLOUR, 11),
    ):
        front = name == FRONT_TRACE
        fig.add_trace(
            go.Scatter(
                name=name,
                x=rows[cost.metric].tolist(),
                y=(rows[quality.metric] * scale).tolist(),
                mode="lines+markers" if front else "markers",
                # rows come sorted by cost: "hv" draws the attainment staircase of a (min cost, max quality) front
                line={"shape": "hv" if cost.maximize != quality.maximize else "vh", "color": colour, "width": 1.5},
                marker={"color": colour, "size": size, "opacity": 1.0 if front else 0.7,
                        "line": {"width": 1, "color": "white"}},
                text=[_hover_text(r, metrics, params, front) for _, r in rows.iterrows()],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    xs = table[cost.metric].dropna()
    log_x = len(xs) > 1 and (xs > 0).all() and xs.max() / xs.min() > 30
    fig.update_layout(
        template="none",
        title={"text": html.escape(f"{quality.metric} vs {cost.metric}"), "x": 0.02},
        xaxis={"title": {"text": html.escape(_label(cost.metric))}, "type": "log" if log_x else "linear",
               "gridcolor": "#eee", "zeroline": False},
        yaxis={"title": {"text": html.escape(_label(quality.metric))}, "gridcolor": "#eee", "zeroline": False},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        height=460,
        hovermode="closest",
    )
    return fig


def _header(meta: dict, objectives: list[Objective], counts: dict[str, int]) -> str:
    name = meta.get("name", "search run")
    counts_text = f"{counts['complete']} complete / {counts['failed']} failed / {counts['total']} total"
    if counts["infeasible"]:
        counts_text += f" ({counts['infeasible']} infeasible)"
    items = [
        ("task", meta.get("task", "–")),
        ("objectives", ", ".join(str(o) for o in objectives)),
        ("trials", counts_text),
        ("wall time", _fmt_duration(meta.get("wall_time_s"))),
        ("created", meta.get("created", "–")),
        ("space", meta.get("space_file", "–")),
    ]
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items)
    return f"<h1>{html.escape(str(name))}</h1>\n<dl class=\"meta\">{rows}</dl>"


def _trials_table(df: pd.DataFrame, on_front: pd.Series, metrics: list[str], params: list[str]) -> str:
    """All trials, in trial order: Pareto rows (over all objectives) marked, failures with their error."""
    extra = [c for c in ("train_time_s", "epochs") if c in df.columns]
    head = ["#", "status", "Pareto"] + [_label(m) for m in metrics + extra] + ["architecture"]
    head += [p.removeprefix(analysis.PARAM_PREFIX) for p in params] + ["error"]
    out = ["<table><thead><tr>", *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for (_, row), front in zip(df.iterrows(), on_front, strict=True):
        status = str(row.get("status", ""))
        css = "front" if front else status.lower()
        cells = [f'<td class="num">{html.escape(_fmt(row["number"]))}</td>', f"<td>{html.escape(status)}</td>",
                 f"<td>{'★' if front else ''}</td>"]
        cells += [f'<td class="num">{html.escape(_fmt(row[c], _is_percent(c)))}</td>' for c in metrics + extra]
        cells.append(f"<td>{html.escape(str(row.get('arch_summary', '')))}</td>")
        cells += [f"<td>{html.escape(_fmt(row[p]))}</td>" for p in params]
        cells.append(f'<td class="err">{html.escape(str(row.get("error", "")))}</td>')
        out.append(f'<tr id="trial-{html.escape(_fmt(row["number"]))}" class="{css}">{"".join(cells)}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def _write_plotly_js(out_dir: Path) -> None:
    """plotly.min.js beside the page, rewritten only when plotly's bundle differs (it is ~4.8 MB)."""
    js = get_plotlyjs().encode("utf-8")
    path = out_dir / PLOTLY_JS
    if not path.exists() or path.stat().st_size != len(js) or path.read_bytes() != js:
        path.write_bytes(js)


def render_page(meta: dict, trials: pd.DataFrame) -> str:
    """The whole index.html of a run, as text (expects `plotly.min.js` beside it)."""
    objectives = analysis.parse_objectives(meta["objectives"])
    quality, costs = analysis.split_objectives(objectives)
    metrics = [o.metric for o in objectives]
    metrics += [m for m in analysis.METRIC_COLUMNS if m in trials.columns and m not in metrics]
    params = analysis.param_columns(trials)
    counts = analysis.run_counts(trials)

    charts = []
    for cost in costs:
        if cost.metric not in trials.columns:
            charts.append(f'<p class="note">No column for objective {html.escape(cost.metric)}.</p>')
            continue
        table = analysis.pareto_table(trials, [quality, cost])
        fig = pareto_figure(table, quality, cost, metrics, params)
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{cost.metric}",
                          default_height="460px", config={"displaylogo": False, "responsive": True})
        charts.append(f'<div class="chart">{div}</div>')
    if not counts["complete"]:
        charts.insert(0, '<p class="note">No complete trials yet.</p>')

    on_front = analysis.front_mask(trials, objectives) if counts["complete"] else [False] * len(trials)
    title = html.escape(str(meta.get("name", "search run")))
    return "\n".join([
        "<!doctype html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{title} · explorer report</title>',
        f"<style>{_CSS}</style>",
        f'<script src="{PLOTLY_JS}" charset="utf-8"></script></head><body>',
        _header(meta, objectives, counts),
        f'<h2>Speed–accuracy</h2><div class="charts">{"".join(charts)}</div>',
        "<h2>Trials</h2>",
        '<p class="note">★ = Pareto-optimal over all objectives. Hover a chart point for its architecture.</p>',
        _trials_table(trials, on_front, metrics, params),
        "</body></html>",
    ])


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/index.html` (and `plotly.min.js` beside it) from the run's files; return the page."""
    run_dir = Path(run_dir)
    page = render_page(analysis.load_run_meta(run_dir), analysis.load_trials(run_dir))
    _write_plotly_js(run_dir)
    path = run_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
