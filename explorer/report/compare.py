"""One page comparing several runs: their fronts per shared cost objective overlaid, their error EDFs, and the
hypervolume of each under ONE normalisation (the union of all runs' complete trials), so the numbers compare."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from explorer import analysis
from explorer.metrics import split_device
from explorer.report.html import (
    CSS,
    PALETTE,
    PLOTLY_JS,
    axis,
    fmt,
    nums,
    plot,
    plotly_tag,
    scale,
    table_html,
    write_plotly_js,
)

_DRAWN_JS = "Promise.all(window.PLOTS||[]).then(()=>{document.body.dataset.plots='drawn';});"


def default_compare_path(run_dirs: Sequence[str | Path]) -> Path:
    """`<folder of the first run>/compare-<run a>-vs-<run b>....html`: next to the runs."""
    dirs = [Path(d) for d in run_dirs]
    return dirs[0].resolve().parent / ("compare-" + "-vs-".join(d.resolve().name for d in dirs) + ".html")


def comparison_table(runs: dict[str, tuple[dict, pd.DataFrame]], objectives: list[analysis.Objective]) -> pd.DataFrame:
    """Per run: trials, complete, Pareto trials and hypervolume, all runs normalised together (see
    `analysis.hypervolume_history`: [0, 1] over the union, reference `HV_REFERENCE` on every axis)."""
    frames = [df.assign(_run=name) for name, (_, df) in runs.items()]
    union = pd.concat(frames, ignore_index=True)
    loss = analysis.normalised_losses(union, objectives)
    rows = []
    for name, (_, df) in runs.items():
        sel = (union["_run"] == name).to_numpy()
        counts = analysis.run_counts(df)
        hv = analysis.hypervolume(loss[sel], [False] * len(objectives), [analysis.HV_REFERENCE] * len(objectives))
        rows.append(
            {
                "run": name,
                "trials": counts["total"],
                "complete": counts["complete"],
                "pareto": int(analysis.front_mask(df, objectives).sum()),
                "hypervolume": round(hv, 4),
            }
        )
    return pd.DataFrame(rows)


def shared_objectives(runs: dict[str, tuple[dict, pd.DataFrame]]) -> tuple[list[analysis.Objective], list[str]]:
    """The first run's objectives that every run's table has. A device metric carries its device in its name, so a
    CPU and a CUDA latency never share an axis; an objective some run lacks is left out with a sentence saying
    which runs lack it (and what they measured instead, for a device metric)."""
    first = next(iter(runs.values()))[0]
    shared, apart = [], []
    for o in analysis.parse_objectives(first["objectives"]):
        lacking = [name for name, (_, df) in runs.items() if o.metric not in df.columns]
        if not lacking:
            shared.append(o)
            continue
        base = split_device(o.metric)[0]
        instead = {
            name: [c for c in runs[name][1].columns if c != o.metric and split_device(c)[0] == base] for name in lacking
        }
        said = "; ".join(
            f"{name}" + (f" measured {', '.join(cols)} instead" if cols else " has no such column")
            for name, cols in instead.items()
        )
        apart.append(f"{o.metric} is not compared: {said}.")
    return shared, apart


def render_comparison(runs: dict[str, tuple[dict, pd.DataFrame]], plotly_src: str | None) -> str:
    """The comparison page: objectives are those of the first run that every run's table has."""
    objectives, apart = shared_objectives(runs)
    quality, costs = analysis.split_objectives(objectives)
    sections = [
        "<h2>Summary</h2>",
        '<p class="note">Hypervolume: objectives normalised to [0, 1] over the '
        f"complete trials of all runs together, reference point {analysis.HV_REFERENCE} per axis.</p>",
        *(f'<p class="note">{html.escape(reason)}</p>' for reason in apart),
        table_html(comparison_table(runs, objectives), "compare"),
    ]
    charts = []
    for cost in costs:
        data = []
        for i, (name, (_, df)) in enumerate(runs.items()):
            table = analysis.pareto_table(df, [quality, cost])
            colour = PALETTE[i % len(PALETTE)]
            for front in (False, True):
                rows = table[table["on_front"] == front]
                data.append(
                    {
                        "type": "scatter",
                        "name": f"{name} " + ("front" if front else "trials"),
                        "legendgroup": name,
                        "showlegend": front,
                        "x": nums(rows[cost.metric]),
                        "y": nums(rows[quality.metric] * scale(quality.metric)),
                        "mode": "lines+markers" if front else "markers",
                        "line": {"shape": "hv", "color": colour},
                        "marker": {"color": colour, "size": 10 if front else 6, "opacity": 1 if front else 0.35},
                        "text": [f"{html.escape(name)} trial {fmt(n)}" for n in rows["number"]],
                        "hovertemplate": "%{text}<extra></extra>",
                    }
                )
        charts.append(
            plot(
                f"front-{cost.metric}",
                data,
                {
                    "title": {"text": html.escape(f"fronts: {quality.metric} vs {cost.metric}"), "x": 0.02},
                    "xaxis": axis(cost.metric),
                    "yaxis": axis(quality.metric),
                },
                css="pareto",
                height=460,
            )
        )
    data = []
    for i, (name, (_, df)) in enumerate(runs.items()):
        acc = df.loc[(df["status"] == analysis.STATUS_COMPLETE), quality.metric].dropna().to_numpy(dtype=float)
        y_scale = scale(quality.metric)
        err = np.sort(y_scale - acc * y_scale if quality.maximize else acc)
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "line": {"shape": "hv", "color": PALETTE[i % len(PALETTE)]},
                "name": f"{name} (n={len(err)})",
                "x": nums(err),
                "y": nums(np.arange(1, len(err) + 1) / max(1, len(err))),
            }
        )
    charts.append(
        plot(
            "edf-runs",
            data,
            {
                "title": {"text": "error EDF per run", "x": 0.02},
                "xaxis": {"title": {"text": "error"}},
                "yaxis": {"title": {"text": "EDF"}},
            },
        )
    )
    sections.append(f'<h2>Fronts and EDFs</h2><div class="charts">{"".join(charts)}</div>')
    names = ", ".join(runs)
    return "\n".join(
        [
            "<!doctype html>",
            f'<html lang="en"><head><meta charset="utf-8"><title>compare '
            f"{html.escape(names)}</title><style>{CSS}</style>",
            plotly_tag(plotly_src) + "</head><body>",
            f"<h1>Comparison: {html.escape(names)}</h1>",
            *sections,
            f"<script>{_DRAWN_JS}</script>",
            "</body></html>",
        ]
    )


def write_comparison(
    run_dirs: Sequence[str | Path], out: str | Path | None = None, self_contained: bool = False
) -> Path:
    """Write the comparison page of `run_dirs` to `out` (default `default_compare_path`) and return its path."""
    if len(run_dirs) < 2:
        raise ValueError(f"a comparison needs at least two run folders, got {len(run_dirs)}")
    kinds = {analysis.load_run_meta(d).get("kind", "search") for d in run_dirs}
    if kinds == {"study"}:  # studies of one factor overlay their paired differences instead
        from explorer.report.study import write_study_comparison

        return write_study_comparison([Path(d) for d in run_dirs], Path(out) if out else default_compare_path(run_dirs))
    if len(kinds) > 1:
        raise ValueError("a comparison takes search runs or study runs, not both")
    runs: dict[str, tuple[dict, pd.DataFrame]] = {}
    for d in run_dirs:
        d = Path(d)
        name = d.resolve().name
        while name in runs:
            name += "'"
        runs[name] = (analysis.load_run_meta(d), analysis.load_trials(d))
    path = Path(out) if out else default_compare_path(run_dirs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not self_contained:
        write_plotly_js(path.parent)
    path.write_text(render_comparison(runs, None if self_contained else PLOTLY_JS), encoding="utf-8")
    return path
