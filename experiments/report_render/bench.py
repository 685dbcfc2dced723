"""Render time of the report of a synthetic 1,000-trial run: Python write + headless Chromium load to "plots drawn".

    .venv/bin/python experiments/report_render/bench.py --trials 1000 --repeats 3 --out /tmp/report_render

"plots drawn" = the page sets <body data-plots="drawn"> once every eager Plotly.newPlot promise has resolved
(the Pareto charts, hypervolume, importance, the per-choice EDF/scatter grid); the WebGL parallel-coordinates chart
draws when scrolled into view and is timed separately. Besides wall time it records CPU time (Python process
time of the write; the renderer main thread's DevTools "ThreadTime" for the browser) and the floor any plotly page
pays (plotly.min.js + one 2-point chart), because a shared machine inflates wall time. Writes results.csv here.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

MIXERS = ["conv3d", "posmlp_parallel", "posmlp_serial", "focal_parallel", "focal_serial", "attention_joint"]


def synthetic_run(run_dir: Path, n: int, seed: int = 0) -> None:
    """A run folder in the search's format with `n` trials (5% failed, 2% infeasible), history and cost columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        mixer, depth, width = str(rng.choice(MIXERS)), int(rng.integers(1, 6)), int(rng.choice([16, 32, 48, 64, 96]))
        ratio, tokens, window = float(rng.choice([2.0, 3.0, 4.0])), int(rng.choice([0, 3, 6])), int(rng.choice([4, 8]))
        gflops = 0.02 * depth * width / 16 * ratio * (1 + 0.3 * rng.random())
        acc = float(
            np.clip(
                0.25 + 0.12 * np.log1p(gflops * 10) + 0.03 * (mixer.startswith("focal")) + 0.04 * rng.normal(), 0, 1
            )
        )
        history = [
            {"epoch": e, "accuracy": acc * (0.6 + 0.2 * e), "train_loss": 2.3 / e, "gflops": gflops} for e in (1, 2)
        ]
        status, error = "COMPLETE", ""
        if rng.random() < 0.05:
            status, error, acc = "FAILED", "RuntimeError: out of memory", float("nan")
        elif rng.random() < 0.02:
            status, error, acc = "INFEASIBLE", "gflops > max_gflops", float("nan")
        rows.append(
            {
                "number": i,
                "trial_id": f"t{i:05d}",
                "status": status,
                "error": error,
                "accuracy": acc,
                "gflops": gflops,
                "params_m": 0.03 * depth * width / 16,
                "latency_cpu_ms": 3 * gflops + rng.random(),
                "train_time_s": 10 + 20 * rng.random(),
                "epochs": 2,
                "node_ip": "127.0.0.1",
                "arch_hash": f"{i:012x}",
                "arch_summary": f"conv3d d1 w16 | {mixer} d{depth} w{width}",
                "arch_json": json.dumps({"stages": [{"mixer": mixer, "depth": depth, "width": width}]}),
                "history_json": json.dumps(history),
                "cost_json": json.dumps(
                    {
                        "stem": {"params_m": 0.01, "gflops": 0.1 * gflops},
                        "stage1": {"params_m": 0.02, "gflops": 0.9 * gflops},
                    }
                ),
                "param.mixer": mixer,
                "param.depth": depth,
                "param.width": width,
                "param.mlp_ratio": ratio,
                "param.global_tokens": tokens,
                "param.window": window if mixer.startswith("posmlp") else None,
            }
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": run_dir.name,
        "space_file": "synthetic",
        "created": "2026-11-23T12:00:00",
        "task": "synthetic",
        "objectives": [
            {"metric": "accuracy", "mode": "max"},
            {"metric": "gflops", "mode": "min"},
            {"metric": "latency_cpu_ms", "mode": "min"},
        ],
        "wall_time_s": 3600.0,
        "state": "finished",
    }
    (run_dir / "run.json").write_text(json.dumps(meta))
    pd.DataFrame(rows).to_parquet(run_dir / "trials.parquet", index=False)


BASELINE = """<!doctype html><html><head><script src="plotly.min.js"></script></head><body><div id="x"></div>
<script>Plotly.newPlot("x",[{x:[1,2],y:[1,2]}],{}).then(()=>{document.body.dataset.plots='drawn';});</script>
</body></html>"""


def _cpu_meter(page):
    """A DevTools session counting from now (call before navigating); `_main_thread_cpu` reads it."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    return cdp


def _main_thread_cpu(cdp) -> float:
    """CPU seconds of the renderer's main thread since `_cpu_meter` (DevTools Performance "ThreadTime")."""
    return next(m["value"] for m in cdp.send("Performance.getMetrics")["metrics"] if m["name"] == "ThreadTime")


def _time_to_drawn(page, page_path: Path) -> tuple[float, float]:
    """(wall seconds, renderer main-thread CPU seconds) from navigating to ``page_path`` until its eager plots are
    drawn (the page sets ``<body data-plots="drawn">``)."""
    meter = _cpu_meter(page)
    start = time.perf_counter()
    page.goto(page_path.resolve().as_uri())
    page.wait_for_selector("body[data-plots=drawn]", state="attached", timeout=120_000)
    return time.perf_counter() - start, _main_thread_cpu(meter)


def baseline_time(reports: Path) -> tuple[float, float]:
    """Seconds to load plotly.min.js and draw ONE 2-point chart: the floor any plotly page pays on this machine
    (a measure of how loaded the machine is when the report is timed)."""
    from playwright.sync_api import sync_playwright

    page_path = reports / "baseline.html"
    page_path.write_text(BASELINE)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        seconds, cpu = _time_to_drawn(browser.new_page(), page_path)
        browser.close()
    return seconds, cpu


def browser_time(page_path: Path) -> tuple[float, float, float, int]:
    """(seconds from navigation to "plots drawn", to the lazy parcoords drawn after scrolling, console errors)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        drawn, drawn_cpu = _time_to_drawn(page, page_path)
        start = time.perf_counter()
        page.locator("#parcoords").scroll_into_view_if_needed()
        page.wait_for_selector("#parcoords[data-drawn='1']", state="attached", timeout=120_000)
        lazy = time.perf_counter() - start
        browser.close()
    return drawn, drawn_cpu, lazy, len(errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="/tmp/report_render")
    args = ap.parse_args()
    from explorer.report import write_report

    run = Path(args.out) / f"synthetic-{args.trials}"
    synthetic_run(run, args.trials)
    (run / ".importance.json").unlink(missing_ok=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    write_report(run)  # cold: imports, plotly.min.js (once per reports folder), importance computed and cached
    cold = {
        "cold_write_s": round(time.perf_counter() - start, 3),
        "cold_write_cpu_s": round(time.process_time() - cpu_start, 3),
    }
    print(cold, flush=True)
    results = []
    for r in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        page = write_report(run)
        write_s, write_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        drawn_s, drawn_cpu, lazy_s, errors = browser_time(page)
        floor_s, floor_cpu = baseline_time(run.parent)
        row = {
            "trials": args.trials,
            "repeat": r,
            "write_s": round(write_s, 3),
            "browser_drawn_s": round(drawn_s, 3),
            "total_s": round(write_s + drawn_s, 3),
            "parcoords_lazy_s": round(lazy_s, 3),
            "plotly_floor_s": round(floor_s, 3),
            "write_cpu_s": round(write_cpu, 3),
            "browser_cpu_s": round(drawn_cpu, 3),
            "total_cpu_s": round(write_cpu + drawn_cpu, 3),
            "plotly_floor_cpu_s": round(floor_cpu, 3),
            **cold,
            "page_kb": page.stat().st_size // 1024,
            "console_errors": errors,
            "load_avg_1min": round(os.getloadavg()[0], 1),
            "cpus": os.cpu_count(),
        }
        print(row, flush=True)
        results.append(row)
    out = Path(__file__).with_name("results.csv")
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
