"""Page-building primitives shared by the run page (`explorer.report.page`) and the comparison page
(`explorer.report.compare`): labels and palette, value formatting, JSON for <script> elements, plotly chart divs,
plain HTML tables, the plotly.js tag, and the page's CSS and JS (`static/report.css`, `static/report.js`).

Figures are plotly figure dicts serialised directly (not through `plotly.graph_objects`, whose validation would
cost most of the render time).
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from plotly.offline import get_plotlyjs

from explorer.analysis import busy_seconds
from explorer.metrics import METRICS

PLOTLY_JS = "plotly.min.js"

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_STATIC = files("explorer.report") / "static"
# The pages' style, inlined in a <style> element. Charts sit in fixed grid tracks (auto-fill, not flex): plotly
# sizes each chart when its script runs, before the next chart exists, so a flex row would first give the whole
# width to the first chart.
CSS = (_STATIC / "report.css").read_text(encoding="utf-8")
# The run page's behaviour, inlined in a <script> element: clickable points, the trial card, the
# sortable/filterable table, "plots drawn" marker.
JS = (_STATIC / "report.js").read_text(encoding="utf-8")

# Charts drawn only once scrolled into view: WebGL ones (parcoords) take seconds in software GL (headless, no GPU).
LAZY_JS = """<script>function lazyPlot(id,d,l,c){const el=document.getElementById(id);
const io=new IntersectionObserver(es=>{if(es.some(e=>e.isIntersecting)){io.disconnect();
Plotly.newPlot(id,d,l,c).then(()=>{el.dataset.drawn='1';});}});io.observe(el);}</script>"""


def is_percent(metric: str) -> bool:
    return metric.endswith("accuracy") or metric.startswith(("acc", "top"))


def label(metric: str) -> str:
    """A column's display name from the metrics registry; a metric measured on a device says which
    (``CPU latency (ms)``)."""
    if metric in METRICS:
        return METRICS[metric].label
    return f"{metric} (%)" if is_percent(metric) else metric


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def fmt(value: object, percent: bool = False) -> str:
    """A value as short display text ('–' when missing); `percent` shows a fraction as a percentage."""
    if is_missing(value):
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


def fmt_duration(seconds: float | None) -> str:
    if is_missing(seconds):
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def wall_text(meta: dict, rows: pd.DataFrame, unit: str) -> str:
    """A run's wall time: while a `unit` ("trial", "cell") trained, over every run of its driver, when every row
    carries its end time (`analysis.busy_seconds`); else the driver's own clock, which knows only its last run."""
    busy = busy_seconds(rows)
    if busy is not None:
        return f"{fmt_duration(busy)} with a {unit} training, over every run of the driver"
    return f"{fmt_duration(meta.get('wall_time_s'))} (the driver's last run only)"


def clean(value: object) -> object:
    """JSON-safe: NaN → null, numpy scalars → Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [clean(v) for v in value]
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        return clean(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def nums(values) -> list:
    """A float column as a JSON list (NaN → null)."""
    arr = np.asarray(values, dtype=float)
    return [None if math.isnan(v) else float(v) for v in arr.tolist()]


def script_json(obj: object) -> str:
    """JSON safe inside a <script> element (no '</script>' can close it early)."""
    try:  # fast path: figure data is built clean (NaN already null); clean() walks everything and is slow
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = json.dumps(clean(obj), separators=(",", ":"))
    return text.replace("</", "<\\/")


def plot(div_id: str, data: list[dict], layout: dict, css: str = "", height: int = 420, lazy: bool = False) -> str:
    """A div and the `Plotly.newPlot` call drawing it (its promise joins `window.PLOTS`); `lazy`: drawn when it
    scrolls into view instead (not waited for by the page's "plots drawn" marker)."""
    base = {
        "template": "none",
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "hovermode": "closest",
    }
    args = f'"{div_id}", {script_json(data)}, {script_json({**base, **layout})}, {script_json(PLOT_CONFIG)}'
    return f'<div class="chart"><div id="{div_id}" class="plotly-graph-div {css}" style="height:{height}px"></div>' + (
        f"<script>lazyPlot({args});</script></div>"
        if lazy
        else f"<script>(window.PLOTS=window.PLOTS||[]).push(Plotly.newPlot({args}));</script></div>"
    )


def axis(metric: str, values: pd.Series | None = None) -> dict:
    """A plotly axis titled by `label(metric)`; logarithmic when positive `values` span more than 30×."""
    out = {"title": {"text": html.escape(label(metric))}, "gridcolor": "#eee", "zeroline": False}
    if values is not None:
        xs = values.dropna()
        if len(xs) > 1 and (xs > 0).all() and xs.max() / xs.min() > 30:
            out["type"] = "log"
    return out


def scale(metric: str) -> float:
    """The factor a stored value is drawn with: 100 for percentages stored as fractions."""
    return 100.0 if is_percent(metric) else 1.0


def table_html(df: pd.DataFrame, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False)
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def plotly_tag(src: str | None) -> str:
    """The <script> loading plotly.js from `src` (None inlines it), then the `lazyPlot` helper."""
    if src is None:
        return f'<script charset="utf-8">{get_plotlyjs()}</script>' + LAZY_JS
    return f'<script src="{html.escape(src)}" charset="utf-8"></script>' + LAZY_JS


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
