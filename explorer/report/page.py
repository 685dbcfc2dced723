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
import math
import numbers
import os
from pathlib import Path

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from explorer import analysis
from explorer.analysis import Objective

PLOTLY_JS = "plotly.min.js"
FRONT_TRACE = "Pareto front"
OTHER_TRACE = "other trials"
LIVE_REFRESH_S = 5

LABELS = {
    "accuracy": "accuracy (%)",
    "test_accuracy": "test accuracy (%)",
    "gflops": "GFLOPs",
    "params_m": "params (M)",
    "latency_ms": "latency (ms)",
    "predicted_latency_ms": "predicted latency (ms)",
    "throughput": "throughput (clips/s)",
    "peak_mem_mb": "peak memory (MB)",
    "train_time_s": "train time (s)",
}
FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f8c9a"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

# Charts sit in fixed grid tracks (auto-fill, not flex): plotly sizes each chart when its script runs, before the
# next chart exists, so a flex row would first give the whole width to the first chart.
_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin:0 0 .3em}h2{margin-top:1.4em;border-bottom:1px solid #ddd}
.meta{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin-bottom:1em}
.meta dt{color:#666}.meta dd{margin:0}
.live{background:#fff3cd;border:1px solid #e0c36a;padding:.4em .8em;display:inline-block;margin-bottom:.6em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1em}
.chart{min-width:0}
table{border-collapse:collapse;font-size:.85em;margin-top:.5em}
th,td{border-bottom:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}#trials th{position:sticky;top:0}
#trials th{cursor:pointer}#trials th.asc::after{content:" ▲"}#trials th.desc::after{content:" ▼"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.front td{background:#fdecea}tr.failed td,tr.infeasible td,tr.stopped td{color:#888}
#trials tbody tr{cursor:pointer}
td.err{color:#b00;white-space:pre-wrap;min-width:16em;max-width:40em;font-family:monospace;font-size:.95em}
.note{color:#666}
.card{position:fixed;right:1em;top:1em;width:min(560px,45vw);max-height:92vh;overflow:auto;background:#fff;
 border:1px solid #bbb;box-shadow:0 4px 18px rgba(0,0,0,.25);padding:.8em 1em;z-index:10}
.card pre{background:#f6f6f6;padding:.5em;max-height:18em;overflow:auto;font-size:.8em}
.card code{background:#f6f6f6;padding:.2em .4em;display:block;word-break:break-all}
.card .close{float:right;cursor:pointer;border:none;background:none;font-size:1.3em}
"""

# The page's behaviour: clickable points, the trial card, the sortable/filterable table, "plots drawn" marker.
_JS = r"""
// parsed on the first card opened: ~1.5 MB for 1,000 trials, no need to pay for it before the charts show
let TRIALS=null;
const trial=n=>(TRIALS??=JSON.parse(document.getElementById('trial-data').textContent))[n];
const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
function kv(obj){return '<table>'+Object.entries(obj).map(([k,v])=>'<tr><th>'+esc(k)+'</th><td>'+esc(v)+'</td></tr>').join('')+'</table>';}
function costTable(c){
  if(!c||!Object.keys(c).length) return '<p class="note">no cost breakdown recorded for this trial</p>';
  const rows=Object.entries(c);
  if(rows.every(([k,v])=>v&&typeof v==='object'&&!Array.isArray(v))){
    const cols=[...new Set(rows.flatMap(([k,v])=>Object.keys(v)))];
    return '<table><tr><th></th>'+cols.map(x=>'<th>'+esc(x)+'</th>').join('')+'</tr>'+rows.map(([k,v])=>'<tr><th>'+esc(k)+'</th>'+cols.map(x=>'<td class="num">'+esc(v[x]??'')+'</td>').join('')+'</tr>').join('')+'</table>';}
  return kv(Object.fromEntries(rows.map(([k,v])=>[k,typeof v==='object'?JSON.stringify(v):v])));
}
function showCard(n){
  const t=trial(n); if(!t) return;
  const card=document.getElementById('card');
  card.querySelector('.body').innerHTML=
    '<h3>trial '+esc(n)+(t.front?' · Pareto':'')+'</h3><p>'+esc(t.summary)+'</p>'+
    '<h4>metrics</h4>'+kv(t.metrics)+'<h4>choices</h4>'+kv(t.params)+
    '<h4>cost breakdown</h4>'+costTable(t.cost)+
    '<h4>training curve</h4><div id="card-curve" style="height:240px"></div>'+
    '<h4>reproduce</h4><code class="cmd">'+esc(t.command)+'</code>'+
    '<h4>spec</h4><pre>'+esc(t.spec)+'</pre>';
  card.hidden=false; card.dataset.trial=n;
  const h=t.history||[];
  if(h.length){
    const ep=h.map((r,i)=>r.epoch??i+1), tr=[];
    if(h.some(r=>r.accuracy!=null)) tr.push({x:ep,y:h.map(r=>r.accuracy),name:'accuracy',mode:'lines+markers'});
    if(h.some(r=>r.train_loss!=null)) tr.push({x:ep,y:h.map(r=>r.train_loss),name:'train loss',yaxis:'y2',mode:'lines+markers'});
    Plotly.newPlot('card-curve',tr,{template:'none',margin:{l:45,r:45,t:10,b:35},xaxis:{title:{text:'epoch'}},
      yaxis:{title:{text:'accuracy'}},yaxis2:{title:{text:'loss'},overlaying:'y',side:'right'},
      legend:{orientation:'h',y:1.15}},{displaylogo:false});
  } else document.getElementById('card-curve').outerHTML='<p class="note">no per-epoch history recorded</p>';
}
document.querySelectorAll('.js-plotly-plot.pareto').forEach(d=>d.on('plotly_click',e=>{
  const p=e.points[0]; if(p&&p.customdata!=null) showCard(p.customdata);}));
document.querySelector('#card .close').onclick=()=>{document.getElementById('card').hidden=true;};
const rows=document.querySelector('#trials tbody');  // one delegated listener, not one per row
if(rows) rows.addEventListener('click',e=>{const r=e.target.closest('tr');if(r) showCard(r.dataset.n);});
const table=document.getElementById('trials');
if(table){
  const body=table.tBodies[0];
  table.querySelectorAll('th').forEach((th,i)=>th.onclick=()=>{
    const asc=!th.classList.contains('asc');
    table.querySelectorAll('th').forEach(x=>x.classList.remove('asc','desc'));
    th.classList.add(asc?'asc':'desc');
    const key=r=>{const v=r.cells[i].dataset.v??r.cells[i].textContent;const f=parseFloat(v);return isNaN(f)?v:f;};
    const rows=[...body.rows].sort((a,b)=>{const x=key(a),y=key(b);
      if(typeof x!==typeof y) return typeof x==='number'?-1:1; return (x<y?-1:x>y?1:0)*(asc?1:-1);});
    rows.forEach(r=>body.appendChild(r));});
  document.getElementById('filter').oninput=e=>{
    const q=e.target.value.toLowerCase();let shown=0;
    [...body.rows].forEach(r=>{const ok=!q||r.textContent.toLowerCase().includes(q);r.hidden=!ok;shown+=ok;});
    document.getElementById('shown').textContent=shown;};
}
Promise.all(window.PLOTS||[]).then(()=>{document.body.dataset.plots='drawn';});
"""


def _is_percent(metric: str) -> bool:
    return metric.endswith("accuracy") or metric.startswith(("acc", "top"))


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


def _clean(value: object) -> object:
    """JSON-safe: NaN → null, numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_clean(v) for v in value]
    if _is_missing(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _nums(values) -> list:
    """A float column as a JSON list (NaN → null)."""
    arr = np.asarray(values, dtype=float)
    return [None if math.isnan(v) else float(v) for v in arr.tolist()]


def _script_json(obj: object) -> str:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    try:  # fast path: figure data is built clean (NaN already null); _clean walks everything and is slow
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(_clean(obj), separators=(",", ":"))
    return text.replace("</", "<\\/")


# Charts drawn only once scrolled into view: WebGL ones (parcoords) take seconds in software GL (headless, no GPU).
_LAZY_JS = """<script>function lazyPlot(id,d,l,c){const el=document.getElementById(id);
const io=new IntersectionObserver(es=>{if(es.some(e=>e.isIntersecting)){io.disconnect();
Plotly.newPlot(id,d,l,c).then(()=>{el.dataset.drawn='1';});}});io.observe(el);}</script>"""


def _plot(div_id: str, data: list[dict], layout: dict, css: str = "", height: int = 420, lazy: bool = False) -> str:
    """A div and the `Plotly.newPlot` call drawing it (its promise joins `window.PLOTS`); `lazy`: drawn when it
    scrolls into view instead (not waited for by the page's "plots drawn" marker)."""
    base = {"template": "none", "height": height, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "hovermode": "closest"}
    args = f'"{div_id}", {_script_json(data)}, {_script_json({**base, **layout})}, {_script_json(PLOT_CONFIG)}'
    return (f'<div class="chart"><div id="{div_id}" class="plotly-graph-div {css}" style="height:{height}px"></div>'
            + (f"<script>lazyPlot({args});</script></div>" if lazy else
               f"<script>(window.PLOTS=window.PLOTS||[]).push(Plotly.newPlot({args}));</script></div>"))


def _axis(metric: str, values: pd.Series | None = None) -> dict:
    axis = {"title": {"text": html.escape(_label(metric))}, "gridcolor": "#eee", "zeroline": False}
    if values is not None:
        xs = values.dropna()
        if len(xs) > 1 and (xs > 0).all() and xs.max() / xs.min() > 30:
            axis["type"] = "log"
    return axis


def _scale(metric: str) -> float:
    return 100.0 if _is_percent(metric) else 1.0


def _hover_text(row: dict, metrics: list[str], params: list[str], on_front: bool) -> str:
    """Hover label of one trial: number, architecture, metrics, sampled params (text escaped for plotly)."""
    head = f"<b>trial {_fmt(row['number'])}</b>" + (" · Pareto" if on_front else "")
    lines = [head, html.escape(str(row.get("arch_summary", "")))]
    lines.append(" · ".join(f"{m} {_fmt(row.get(m), _is_percent(m))}{'%' if _is_percent(m) else ''}"
                            for m in metrics))
    pairs = [f"{p.removeprefix(analysis.PARAM_PREFIX)}={_fmt(row[p])}" for p in params if not _is_missing(row[p])]
    lines += [html.escape(", ".join(pairs[i : i + 3])) for i in range(0, len(pairs), 3)]
    return "<br>".join(lines)


def pareto_figure(table: pd.DataFrame, quality: Objective, cost: Objective, metrics: list[str],
                  params: list[str]) -> tuple[list[dict], dict]:
    """(data, layout) of `quality` (y) against `cost` (x) from `analysis.pareto_table`; front as a step line.
    Every point carries its trial number as `customdata` (a click opens the trial's card)."""
    scale = _scale(quality.metric)
    data = []
    for name, rows, colour, size in ((OTHER_TRACE, table[~table["on_front"]], OTHER_COLOUR, 7),
                                     (FRONT_TRACE, table[table["on_front"]], FRONT_COLOUR, 11)):
        front = name == FRONT_TRACE
        records = rows.to_dict("records")
        data.append({
            "type": "scatter", "name": name, "x": _nums(rows[cost.metric]), "y": _nums(rows[quality.metric] * scale),
            "customdata": [int(r["number"]) for r in records],
            "mode": "lines+markers" if front else "markers",
            # rows come sorted by cost: "hv" draws the attainment staircase of a (min cost, max quality) front
            "line": {"shape": "hv" if cost.maximize != quality.maximize else "vh", "color": colour, "width": 1.5},
            "marker": {"color": colour, "size": size, "opacity": 1.0 if front else 0.7,
                       "line": {"width": 1, "color": "white"}},
            "text": [_hover_text(r, metrics, params, front) for r in records],
            "hovertemplate": "%{text}<extra></extra>",
        })
    layout = {"title": {"text": html.escape(f"{quality.metric} vs {cost.metric}"), "x": 0.02},
              "xaxis": _axis(cost.metric, table[cost.metric]), "yaxis": _axis(quality.metric),
              "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}}
    return data, layout


def _header(meta: dict, objectives: list[Objective], counts: dict[str, int], live: bool) -> str:
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
    banner = (f'<p class="live" id="live">search running, {counts["total"]} trials so far '
              f"(this page reloads every {LIVE_REFRESH_S} s)</p>" if live else "")
    downloads = ('<p class="downloads">download: <a href="trials.csv" download>trials.csv</a> · '
                 '<a href="trials.parquet" download>trials.parquet</a> · <a href="run.json">run.json</a></p>')
    return f"<h1>{html.escape(str(name))}</h1>\n{banner}<dl class=\"meta\">{rows}</dl>{downloads}"


def _trials_table(df: pd.DataFrame, on_front: np.ndarray, metrics: list[str], params: list[str]) -> str:
    """All trials, in trial order: Pareto rows (over all objectives) marked, failures with their error; cells carry
    their sort value in data-v (the page's script sorts on header clicks and filters on the search box)."""
    extra = [c for c in ("train_time_s", "epochs", "node_ip") if c in df.columns]
    head = ["#", "status", "Pareto"] + [_label(m) for m in metrics + extra] + ["architecture"]
    head += [p.removeprefix(analysis.PARAM_PREFIX) for p in params] + ["error"]
    out = [f'<p><input id="filter" type="search" placeholder="filter rows (any text)" size="40"> '
           f'<span class="note"><span id="shown">{len(df)}</span> of {len(df)} trials shown; click a header to '
           "sort, a row for its card</span></p>",
           '<table id="trials"><thead><tr>', *(f"<th>{html.escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    esc = html.escape
    for row, front in zip(df.to_dict("records"), on_front, strict=True):
        status = str(row.get("status", ""))
        number = esc(_fmt(row["number"]))
        css = "front" if front else status.lower()
        cells = [f'<td class="num">{number}</td><td>{esc(status)}</td><td>{"★" if front else ""}</td>']
        for c in metrics + extra:
            v = row.get(c)
            sort = "" if _is_missing(v) or isinstance(v, str) else f' data-v="{float(v)!r}"'
            cells.append(f'<td class="num"{sort}>{esc(_fmt(v, _is_percent(c)))}</td>')
        cells.append(f"<td>{esc(str(row.get('arch_summary', '')))}</td>")
        cells += [f"<td>{esc(_fmt(row[p]))}</td>" for p in params]
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


def _trial_cards(df: pd.DataFrame, on_front: np.ndarray, metrics: list[str], params: list[str],
                 run_path: str) -> dict:
    """What a card shows, per trial number: summary, metrics, choices, cost breakdown, history, spec, command."""
    cards = {}
    for row, front in zip(df.to_dict("records"), on_front, strict=True):
        arch_hash = str(row.get("arch_hash", ""))
        spec = _parse_json(row.get("arch_json"), None)
        cards[str(int(row["number"]))] = {
            "summary": str(row.get("arch_summary", "")), "front": bool(front),
            "metrics": {"status": row.get("status", ""), **{m: _fmt(row.get(m), _is_percent(m)) for m in metrics}},
            "params": {p.removeprefix(analysis.PARAM_PREFIX): _fmt(row[p]) for p in params if not _is_missing(row[p])},
            "cost": _parse_json(row.get("cost_json"), {}),
            "history": _parse_json(row.get("history_json"), []),
            "spec": json.dumps(spec, indent=1) if spec is not None else "(no spec: the sample was not buildable)",
            "command": (f"explorer cost {run_path}/archs/{arch_hash}.json --no-latency" if arch_hash
                        else f"explorer export {run_path} --pareto"),
        }
    return cards


def _importance_section(importances: list[analysis.Importance]) -> str:
    """One grouped bar chart (a bar group per parameter, a colour per objective) and a note per objective whose
    importance could not be computed."""
    notes = [f'<p class="note">Importance for {html.escape(i.objective)} could not be computed: '
             f"{html.escape(i.reason)}</p>" for i in importances if not i.values]
    shown = [i for i in importances if i.values]
    if not shown:
        return "".join(notes)
    names = sorted({n for i in shown for n in i.values}, key=lambda n: max(i.values.get(n, 0) for i in shown))
    data = [{"type": "bar", "orientation": "h", "name": f"{imp.objective} ({imp.source})", "y": names,
             "x": [imp.values.get(n, 0.0) for n in names], "marker": {"color": PALETTE[k % len(PALETTE)]}}
            for k, imp in enumerate(shown)]
    layout = {"title": {"text": "parameter importance per objective (PED-ANOVA)", "x": 0.02}, "barmode": "group",
              "xaxis": {"title": {"text": "importance (sums to 1 per objective)"}, "range": [0, 1]},
              "margin": {"l": 140, "r": 20, "t": 50, "b": 50}}
    height = max(260, 80 + 22 * len(names) * len(shown))
    return "".join(notes) + f'<div class="charts">{_plot("importance", data, layout, height=height)}</div>'


def _table_html(df: pd.DataFrame, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _design_space(trials: pd.DataFrame, objectives: list[Objective], quality: Objective, costs: list[Objective],
                  run_dir: Path | None, importance: bool) -> str:
    """Importance, good ranges, Pareto shares, per-choice EDFs + coloured scatters, parallel coordinates."""
    params = analysis.param_columns(trials)
    if not params:
        return '<p class="note">No searched parameters in the trials table.</p>'
    out = ["<h3>Parameter importance</h3>"]
    if importance:
        out.append(_importance_section(analysis.param_importances(trials, objectives, run_dir)))
    else:
        out.append('<p class="note">computed when the search has finished</p>')

    ranges = analysis.good_ranges(trials, quality.metric, quality.maximize)
    out.append("<h3>Good ranges (bootstrapped, 95%)</h3>")
    if len(ranges):
        out.append('<p class="note">pycls: draw 25% of the trials with replacement, keep the best one\'s value, '
                   "2000 times; lo–hi is the central 95% of those values.</p>")
        out.append(_table_html(ranges.assign(param=ranges["param"].str.removeprefix(analysis.PARAM_PREFIX)),
                               "ranges"))
    else:
        out.append('<p class="note">no numeric choice with complete trials</p>')

    shares = analysis.front_shares(trials, objectives)
    out.append("<h3>Pareto shares per choice</h3>"
               '<p class="note">n_front: Pareto trials (all objectives) with this value; share: of the front; '
               "rate: of the trials with this value.</p>")
    out.append(_table_html(shares.assign(param=shares["param"].str.removeprefix(analysis.PARAM_PREFIX),
                                         share=shares["share"].round(3), rate=shares["rate"].round(3)), "shares"))

    out.append("<h3>Error EDFs and scatters per choice</h3>"
               '<p class="note">Left, EDF F(e): fraction of the trials with this value whose error is below e '
               "(further left and higher is better). Right: the trials coloured by the value (click a point for "
               "its card).</p>")
    out.append(_per_choice_figure(trials, params, quality, costs))

    table, labels = analysis.parallel_table(trials, objectives)
    if len(table):
        dims = []
        for col in table.columns[1:]:
            dim = {"label": col, "values": _nums(table[col])}
            if col in labels:
                dim.update(tickvals=list(range(len(labels[col]))), ticktext=labels[col])
            dims.append(dim)
        colour = _nums(table[quality.metric]) if quality.metric in table else None
        data = [{"type": "parcoords", "dimensions": dims,
                 "line": {"color": colour, "colorscale": "Viridis", "showscale": True}}]
        out.append("<h3>Parallel coordinates</h3>")
        out.append('<p class="note">Drag along an axis to filter the trials (drawn when scrolled into view).</p>')
        out.append(_plot("parcoords", data, {"margin": {"l": 60, "r": 60, "t": 60, "b": 30}}, height=420,
                         lazy=True))
    return "\n".join(out)


ROW_HEIGHT = 300


def _per_choice_figure(trials: pd.DataFrame, params: list[str], quality: Objective, costs: list[Objective]) -> str:
    """Small multiples in ONE figure (one Plotly.newPlot is far cheaper than one per chart): a row per searched
    parameter, its error EDFs per value on the left, quality vs the first cost coloured by value on the right, and
    a legend per row."""
    edfs = analysis.error_edfs(trials, quality.metric, quality.maximize)
    complete = trials[trials["status"] == analysis.STATUS_COMPLETE]
    cost = costs[0] if costs and costs[0].metric in trials.columns else None
    n = len(params)
    gap = 0.35 / n / 2 if n > 1 else 0.0
    err_label = "error (%)" if _is_percent(quality.metric) else quality.metric
    # accuracy stored as a fraction: errors drawn in % like the accuracy axes
    err_scale = 100.0 if _is_percent(quality.metric) and len(edfs) and edfs["error"].max() <= 1.0 else 1.0
    data, layout = [], {"showlegend": True, "annotations": [], "margin": {"l": 60, "r": 20, "t": 30, "b": 40}}
    for k, p in enumerate(params):
        name = p.removeprefix(analysis.PARAM_PREFIX)
        top, bottom = 1 - k / n - gap, 1 - (k + 1) / n + gap
        ax_e, ax_s = 2 * k + 1, 2 * k + 2
        legend = "legend" if k == 0 else f"legend{k + 1}"
        layout[legend] = {"x": 0.91, "y": top, "yanchor": "top", "xanchor": "left", "title": {"text": name}}
        layout[f"xaxis{ax_e}"] = {"domain": [0, 0.42], "anchor": f"y{ax_e}", "title": {"text": err_label},
                                  "gridcolor": "#eee"}
        layout[f"yaxis{ax_e}"] = {"domain": [bottom, top], "anchor": f"x{ax_e}", "range": [0, 1.02],
                                  "title": {"text": "EDF"}, "gridcolor": "#eee"}
        layout["annotations"].append({"text": f"<b>{html.escape(name)}</b>", "xref": "paper", "yref": "paper",
                                      "x": 0, "y": top, "yanchor": "bottom", "showarrow": False})
        keys = complete[p].map(analysis._value_key)
        for j, (value, grp) in enumerate(edfs[edfs["param"] == p].groupby("value", sort=False)):
            colour = PALETTE[j % len(PALETTE)]
            data.append({"type": "scatter", "mode": "lines", "line": {"shape": "hv", "color": colour},
                         "name": f"{value} (n={len(grp)})", "legendgroup": f"{k}-{value}", "legend": legend,
                         "xaxis": f"x{ax_e}", "yaxis": f"y{ax_e}", "x": _nums(grp["error"] * err_scale), "y": _nums(grp["edf"])})
            if cost is not None:
                rows = complete[keys == value]
                data.append({"type": "scatter", "mode": "markers", "name": value, "legendgroup": f"{k}-{value}",
                             "showlegend": False, "xaxis": f"x{ax_s}", "yaxis": f"y{ax_s}",
                             "x": _nums(rows[cost.metric]), "y": _nums(rows[quality.metric] * _scale(quality.metric)),
                             "customdata": [int(x) for x in rows["number"]],
                             # one template per trace, not a text per point: smaller page, faster draw
                             "hovertemplate": f"trial %{{customdata}}: {html.escape(name)}={html.escape(value)}"
                                              "<extra></extra>",
                             "marker": {"color": colour, "size": 6, "opacity": 0.8}})
        if cost is not None:
            layout[f"xaxis{ax_s}"] = {**_axis(cost.metric, complete[cost.metric]), "domain": [0.5, 0.9],
                                      "anchor": f"y{ax_s}"}
            layout[f"yaxis{ax_s}"] = {**_axis(quality.metric), "domain": [bottom, top], "anchor": f"x{ax_s}"}
    return _plot("per-choice", data, layout, css="pareto", height=ROW_HEIGHT * n + 40)


def _plotly_tag(src: str | None) -> str:
    if src is None:
        return f'<script charset="utf-8">{get_plotlyjs()}</script>' + _LAZY_JS
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>' + _LAZY_JS


def render_page(meta: dict, trials: pd.DataFrame, *, run_dir: str | Path | None = None, live: bool = False,
                plotly_src: str | None = f"../{PLOTLY_JS}") -> str:
    """The whole index.html of a run, as text. `plotly_src`: where the page loads plotly.min.js from (None inlines
    it). `live`: the page reloads itself and says the search is running; importance waits for the end."""
    objectives = analysis.parse_objectives(meta["objectives"])
    quality, costs = analysis.split_objectives(objectives)
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
        charts.append(_plot(f"fig-{cost.metric}", data, layout, css="pareto", height=460))
    sections = [f'<h2>Speed–accuracy</h2><p class="note">Click a point for its card.</p>'
                f'<div class="charts">{"".join(charts)}</div>']
    has_complete = counts["complete"] > 0 and all(o.metric in trials.columns for o in objectives)
    if has_complete:
        on_front = analysis.front_mask(trials, objectives)
        hv = analysis.hypervolume_history(trials, objectives)
        ref = f"{analysis.HV_REFERENCE}^{len(objectives)} = {analysis.HV_REFERENCE ** len(objectives):.3g}"
        data = [{"type": "scatter", "mode": "lines+markers", "line": {"shape": "hv"}, "x": _nums(hv["number"]),
                 "y": _nums(hv["hypervolume"]), "name": "hypervolume"}]
        sections.append(
            "<h2>Hypervolume over trials</h2>"
            f'<p class="note">Objectives normalised to [0, 1] over the complete trials (0 = best seen), reference '
            f"point {analysis.HV_REFERENCE} on every axis, so a single ideal point scores {html.escape(ref)}.</p>"
            + _plot("hv", data, {"xaxis": {"title": {"text": "trial"}}, "yaxis": {"title": {"text": "hypervolume"}}},
                    height=320))
        sections.append("<h2>Design space</h2>" + _design_space(trials, objectives, quality, costs,
                                                                 Path(run_dir) if run_dir else None, not live))
    else:
        on_front = np.zeros(len(trials), dtype=bool)
        sections.insert(0, '<p class="note">No complete trials yet.</p>')

    title = html.escape(str(meta.get("name", "search run")))
    refresh = f'<meta http-equiv="refresh" content="{LIVE_REFRESH_S}">' if live else ""
    cards = _trial_cards(trials, on_front, metrics, params, run_path)
    return "\n".join([
        "<!doctype html>",
        f'<html lang="en"><head><meta charset="utf-8">{refresh}<title>{title} · explorer report</title>',
        f"<style>{_CSS}</style>",
        _plotly_tag(plotly_src) + "</head><body>",
        _header(meta, objectives, counts, live),
        *sections,
        "<h2>Trials</h2>",
        '<p class="note">★ = Pareto-optimal over all objectives.</p>',
        _trials_table(trials, on_front, metrics, params),
        '<div id="card" class="card" hidden><button class="close" title="close">×</button><div class="body"></div>'
        "</div>",
        f'<script type="application/json" id="trial-data">{_script_json(cards)}</script>',
        f"<script>{_JS}</script>",
        "</body></html>",
    ])


def write_plotly_js(out_dir: Path) -> Path:
    """plotly.min.js in `out_dir`, rewritten only when plotly's bundle differs (it is ~4.8 MB)."""
    js = get_plotlyjs().encode("utf-8")
    path = out_dir / PLOTLY_JS
    if not path.exists() or path.stat().st_size != len(js) or path.read_bytes() != js:
        # atomic: several runs of one reports folder (live searches) may write it at once while a browser reads it
        tmp = path.with_name(f".{PLOTLY_JS}.{os.getpid()}.tmp")
        tmp.write_bytes(js)
        os.replace(tmp, path)
    return path


def write_report(run_dir: str | Path, live: bool | None = None, self_contained: bool = False) -> Path:
    """Write `<run_dir>/index.html` from the run's files and return its path.

    The page loads `../plotly.min.js` (one copy per reports folder, written when missing or stale) unless
    `self_contained`, which inlines it. `live=None` follows run.json's "state" ("running" → live page)."""
    run_dir = Path(run_dir)
    meta = analysis.load_run_meta(run_dir)
    if live is None:
        live = meta.get("state") == "running"
    if not self_contained:
        write_plotly_js(run_dir.resolve().parent)
    page = render_page(meta, analysis.load_trials(run_dir), run_dir=run_dir, live=live,
                       plotly_src=None if self_contained else f"../{PLOTLY_JS}")
    path = run_dir / "index.html"
    tmp = run_dir / f".index.html.{os.getpid()}.tmp"  # a live page reloads every few seconds: never show half a page
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
