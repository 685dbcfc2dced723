"""explorer.report: the page of a synthetic run folder, offline, with the front drawn from analysis tables."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer.analysis import load_trials, pareto_mask
from explorer.report import write_report

OBJECTIVES = [
    {"metric": "accuracy", "mode": "max"},
    {"metric": "gflops", "mode": "min"},
    {"metric": "latency_cpu_ms", "mode": "min"},
]
ERRORS = {
    5: "RuntimeError: CUDA out of memory <tried 2.0 GiB> & more",
    11: "ValueError: merge needs a set mixer (stage 1: 'conv3d')",
    17: "FloatingPointError: loss is NaN at step 12",
}
INFEASIBLE = {8: "gflops 4.2 > max_gflops 3.0"}
CHROMIUM = Path("/usr/bin/chromium")


def make_run(run_dir: Path, n: int = 20, seed: int = 0, legacy_device: str | None = None) -> pd.DataFrame:
    """A run folder in the search's format: run.json, trials.parquet/.csv, with failed and infeasible rows.
    ``legacy_device``: in the format of versions before device-carrying names, its latency measured there (the
    column ``latency_ms``, the objective ``{metric: latency_ms, device: ...}``)."""
    rng = np.random.default_rng(seed)
    mixers = ["conv3d", "posmlp_parallel", "focal_serial", "attention_joint"]
    rows = []
    for i in range(n):
        mixer = mixers[i % len(mixers)]
        depth, width = int(rng.integers(1, 4)), int(rng.choice([16, 32, 64]))
        gflops = round(0.05 * depth * width / 16 * (1 + rng.random()), 4)
        row = {
            "number": i,
            "trial_id": f"trial_{i:05d}",
            "status": "COMPLETE",
            "error": "",
            "accuracy": round(float(np.clip(0.3 + 0.15 * np.log1p(gflops * 10) + 0.05 * rng.normal(), 0, 1)), 4),
            "gflops": gflops,
            "params_m": round(0.02 * depth * width / 16, 4),
            "latency_cpu_ms": round(3 * gflops + rng.random(), 4),
            "train_time_s": round(10 + 20 * rng.random(), 2),
            "epochs": 2,
            "arch_hash": f"{rng.integers(0, 16**12):012x}",
            "arch_summary": f"conv3d d1 w16 | {mixer} d{depth} w{width}",
            "arch_json": json.dumps({"stages": [{"mixer": mixer, "depth": depth, "width": width}]}),
            "param.mixer": mixer,
            "param.depth": depth,
            "param.width": width,
            # a conditional parameter: only the posmlp mixer has a window
            "param.window": int(rng.choice([4, 8])) if mixer == "posmlp_parallel" else None,
        }
        if i in ERRORS:
            row.update(status="FAILED", error=ERRORS[i], accuracy=np.nan, latency_cpu_ms=np.nan, train_time_s=0.5)
            if i == 11:
                row.update(gflops=np.nan, params_m=np.nan)
        if i in INFEASIBLE:
            row.update(status="INFEASIBLE", error=INFEASIBLE[i], accuracy=np.nan, latency_cpu_ms=np.nan)
        rows.append(row)
    # a duplicate of the best trial (same arch sampled twice): both copies belong on the front
    rows.append({**rows[int(np.nanargmax([r["accuracy"] for r in rows]))], "number": n, "trial_id": f"trial_{n:05d}"})
    df = pd.DataFrame(rows)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": "demo-run <test>",
        "space_file": "search_spaces/tiny.yaml",
        "created": "2026-11-20T10:00:00",
        "objectives": OBJECTIVES,
        "task": "trev/demo",
        "budget": {"trials": n + 1, "epochs": 2},
        "wall_time_s": 754.2,
    }
    if legacy_device is not None:
        df = df.rename(columns={"latency_cpu_ms": "latency_ms"})
        meta["objectives"] = [*OBJECTIVES[:2], {"metric": "latency_ms", "mode": "min", "device": legacy_device}]
    (run_dir / "run.json").write_text(json.dumps(meta))
    df.to_parquet(run_dir / "trials.parquet", index=False)
    df.to_csv(run_dir / "trials.csv", index=False)
    return df


def figure_data(page: str) -> dict[str, list[dict]]:
    """The traces of every plotly figure in the page, by div id."""
    figures = {}
    for match in re.finditer(r'(?:Plotly\.newPlot|lazyPlot)\(\s*"([^"]+)",\s*', page):
        data, _ = json.JSONDecoder().raw_decode(page, match.end())
        figures[match.group(1)] = data
    return figures


@pytest.fixture
def report(tmp_path) -> tuple[Path, pd.DataFrame]:
    df = make_run(tmp_path / "run")
    return write_report(tmp_path / "run"), df


def test_page_is_offline(report) -> None:
    page_path, _ = report
    assert page_path == page_path.parent / "index.html" and page_path.exists()
    page = page_path.read_text(encoding="utf-8")
    assert "cdn.plot.ly" not in page
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", page)
    assert '<script src="../plotly.min.js"' in page  # one copy per reports folder, shared by its runs
    js = page_path.parent.parent / "plotly.min.js"
    assert js.exists() and js.stat().st_size > 1_000_000
    assert not (page_path.parent / "plotly.min.js").exists()
    assert len(page.encode()) < 200_000  # the page itself stays light
    assert '<a href="trials.csv" download>' in page and '<a href="trials.parquet" download>' in page


def test_pareto_points_match_the_mask(report) -> None:
    page_path, df = report
    figures = figure_data(page_path.read_text(encoding="utf-8"))
    assert {"fig-gflops", "fig-latency_cpu_ms", "hv", "per-choice", "importance", "parcoords"} <= set(figures)
    complete = df[df["status"] == "COMPLETE"]
    for cost in ("gflops", "latency_cpu_ms"):
        traces = {t["name"]: t for t in figures[f"fig-{cost}"]}
        front, other = traces["Pareto front"], traces["other trials"]
        expected = pareto_mask(complete[["accuracy", cost]].to_numpy(), [True, False])
        assert len(front["x"]) == int(expected.sum()) >= 2
        assert len(front["x"]) + len(other["x"]) == len(complete)
        # the front points are exactly the masked trials, drawn in % and in cost order as a step line
        want = complete[expected].sort_values([cost, "accuracy"], ascending=[True, False])
        np.testing.assert_allclose(front["x"], want[cost])
        np.testing.assert_allclose(front["y"], 100 * want["accuracy"])
        assert front["line"]["shape"] == "hv" and "lines" in front["mode"]
        assert all(re.match(r"<b>trial \d+</b>", t) and "mixer=" in t for t in front["text"])
        # a click on a point opens the card of the trial in its customdata
        assert front["customdata"] == [int(n) for n in want["number"]]


def test_header_and_trials_table(report) -> None:
    page_path, df = report
    page = page_path.read_text(encoding="utf-8")
    assert "demo-run &lt;test&gt;" in page and "<test>" not in page
    assert "trev/demo" in page and "max accuracy, min gflops, min latency_cpu_ms" in page
    assert "17 complete / 3 failed / 21 total (1 infeasible)" in page
    assert html.escape("12 min 34 s (the driver's last run only)") in page  # rows from before ended_at
    rows = re.findall(r'<tr id="trial-(\d+)" class="([a-z]+)" data-n="\d+">(.*?)</tr>', page, flags=re.S)
    assert [int(r[0]) for r in rows] == list(range(len(df)))
    by_number = {int(number): (css, body) for number, css, body in rows}
    for number, error in {**ERRORS, **INFEASIBLE}.items():
        css, body = by_number[number]
        assert css in ("failed", "infeasible")
        assert f'<td class="err">{html.escape(error)}</td>' in body
    n_front = sum(css == "front" for css, _ in by_number.values())
    complete = df[df["status"] == "COMPLETE"]
    assert (
        n_front
        == pareto_mask(complete[["accuracy", "gflops", "latency_cpu_ms"]].to_numpy(), [True, False, False]).sum()
    )


def test_a_resumed_search_adds_up_the_time_of_every_driver(tmp_path) -> None:
    """Two legs of 10 trials of 60 s each, two at a time (5 min each), an hour apart: the driver that resumed saw
    only its own 5 minutes, the page says 10 (the gap between the legs left out)."""
    run = tmp_path / "run"
    df = make_run(run, n=19)
    start = 1_800_000_000.0
    ends = [start + (i // 10) * 3600 + 60 * ((i % 10) // 2 + 1) for i in range(len(df))]
    df.assign(trial_time_s=60.0, ended_at=ends).to_parquet(run / "trials.parquet", index=False)
    page = write_report(run).read_text(encoding="utf-8")
    assert "10 min 00 s with a trial training, over every run of the driver" in page
    assert "last run only" not in page


def test_csv_fallback_and_rewrite(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run)
    (run / "trials.parquet").unlink()
    first = write_report(run).read_text(encoding="utf-8")
    assert len(load_trials(run)) == 21
    assert write_report(run).read_text(encoding="utf-8") == first  # deterministic, plotly.min.js reused


def test_report_without_complete_trials(tmp_path) -> None:
    run = tmp_path / "run"
    df = make_run(run)
    df.assign(status="FAILED").to_parquet(run / "trials.parquet", index=False)
    page = write_report(run).read_text(encoding="utf-8")
    assert "No complete trials yet." in page and "0 complete / 21 failed / 21 total" in page


def test_report_needs_no_torch_or_ray(tmp_path) -> None:
    make_run(tmp_path / "run")
    code = (
        "import sys; from explorer.report import write_report; write_report(sys.argv[1]); "
        "bad = [m for m in ('torch', 'ray', 'fvcore') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], check=True, timeout=120)


def chromium(*args: str, user_data: Path, timeout: int = 90) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={user_data}",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_page_renders_in_chromium(report, tmp_path) -> None:
    page_path, df = report
    url = page_path.resolve().as_uri()
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", url, user_data=tmp_path / "profile1").stdout
    assert dom.count('class="main-svg"') >= 2, "plotly did not draw (is plotly.min.js loading?)"
    plotted = 2 * int((df["status"] == "COMPLETE").sum())  # every complete trial in each of the two charts
    assert dom.count('class="point plotly-customdata"') >= plotted  # points carrying their trial number
    assert 'id="trial-5" class="failed"' in dom

    png = tmp_path / "shot.png"
    chromium(
        "--virtual-time-budget=5000",
        f"--screenshot={png}",
        "--window-size=1300,1000",
        url,
        user_data=tmp_path / "profile2",
    )
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("PIL.Image").open(png).convert("RGB")
    assert image.size == (1300, 1000)
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # not a blank page
    # the Pareto points' red is on screen
    assert any(r > 180 and g < 90 and b < 90 for _, (r, g, b) in colours)


def test_live_page_reloads_and_finished_page_does_not(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "state": "running"}))
    live = write_report(run).read_text(encoding="utf-8")  # live follows run.json's state by default
    assert '<meta http-equiv="refresh" content="5">' in live
    assert "search running, 21 trials so far" in live
    assert "computed when the search has finished" in live  # importance waits: rendering stays cheap
    (run / "run.json").write_text(json.dumps({**meta, "state": "finished"}))
    done = write_report(run).read_text(encoding="utf-8")
    assert "http-equiv" not in done and "search running" not in done
    assert write_report(run, live=True).read_text(encoding="utf-8").count("search running, 21 trials so far") == 1


def test_self_contained_page_inlines_plotly(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run)
    page = write_report(run, self_contained=True).read_text(encoding="utf-8")
    assert "<script src=" not in page and "plotly.js v" in page and len(page) > 1_000_000
    assert not (tmp_path / "plotly.min.js").exists() and not (run / "plotly.min.js").exists()


def card_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="trial-data">(.*?)</script>', page, flags=re.S)
    return json.loads(match.group(1))


def test_cards_carry_spec_history_cost_and_command(tmp_path) -> None:
    run = tmp_path / "run"
    df = make_run(run)
    history = [{"epoch": 1, "accuracy": 0.3, "train_loss": 2.0}, {"epoch": 2, "accuracy": 0.4, "train_loss": 1.5}]
    cost = {"stem": {"params_m": 0.01, "gflops": 0.02}, "stage1": {"params_m": 0.1, "gflops": 0.3}}
    df = df.assign(history_json=json.dumps(history), cost_json=json.dumps(cost), node_ip="127.0.0.1")
    df.to_parquet(run / "trials.parquet", index=False)
    page = write_report(run).read_text(encoding="utf-8")
    cards = card_data(page)
    assert set(cards) == {str(n) for n in df["number"]}
    card = cards["3"]
    assert card["history"] == history and card["cost"] == cost
    assert card["command"] == f"explorer cost {run}/archs/{df.loc[3, 'arch_hash']}.json --no-latency"
    assert json.loads(card["spec"]) == json.loads(df.loc[3, "arch_json"])
    assert card["params"]["mixer"] == df.loc[3, "param.mixer"] and card["metrics"]["status"] == "COMPLETE"
    assert "<th>node_ip</th>" in page and "127.0.0.1" in page


def test_old_runs_without_new_columns_still_render(tmp_path) -> None:
    run = tmp_path / "run"
    df = make_run(run)
    df.drop(columns=["train_time_s", "epochs", "param.window"]).to_parquet(run / "trials.parquet", index=False)
    page = write_report(run).read_text(encoding="utf-8")
    cards = card_data(page)
    assert cards["0"]["history"] == [] and cards["0"]["cost"] == {}
    assert "Design space" in page and "Pareto shares per choice" in page


def test_design_space_section_shows_the_analysis(report) -> None:
    page_path, df = report
    page = page_path.read_text(encoding="utf-8")
    figures = figure_data(page)
    # one EDF line per (param, value) on the left of the per-choice figure
    edf_traces = [t for t in figures["per-choice"] if t["mode"] == "lines"]
    complete = df[df["status"] == "COMPLETE"]
    n_groups = sum(
        complete[p].map(lambda v: "—" if pd.isna(v) else v).nunique()
        for p in ("param.mixer", "param.depth", "param.width", "param.window")
    )
    assert len(edf_traces) == n_groups
    assert all(t["y"][-1] == 1.0 for t in edf_traces)
    assert {d["label"] for d in figures["parcoords"][0]["dimensions"]} == {
        "mixer",
        "depth",
        "width",
        "window",
        "accuracy",
        "gflops",
        "latency_cpu_ms",
    }
    assert "Good ranges (bootstrapped, 95%)" in page and '<table class="ranges">' in page
    assert '<table class="shares">' in page
    imp = figures["importance"]
    assert [t["name"] for t in imp] == [
        "accuracy (trials table)",
        "gflops (trials table)",
        "latency_cpu_ms (trials table)",
    ]
    hv = figures["hv"][0]["y"]
    assert hv == sorted(hv) and 0 < hv[-1] <= 1.1**3


def test_importance_explains_too_few_trials(tmp_path) -> None:
    run = tmp_path / "run"
    make_run(run, n=5)
    page = write_report(run).read_text(encoding="utf-8")
    # 5 complete trials and a replay of the best one, which counts once
    assert "Importance for accuracy could not be computed: only 5 distinct complete trial(s)" in page


def test_comparison_page_and_cli(tmp_path, capsys) -> None:
    from explorer.cli import main
    from explorer.report import write_comparison

    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    df_a, df_b = make_run(a, seed=0), make_run(b, n=30, seed=1)
    out = write_comparison([a, b])
    assert out == tmp_path / "runs" / "compare-a-vs-b.html" and (tmp_path / "runs" / "plotly.min.js").exists()
    page = out.read_text(encoding="utf-8")
    figures = figure_data(page)
    for name, df in (("a", df_a), ("b", df_b)):
        front = next(t for t in figures["front-gflops"] if t["name"] == f"{name} front")
        complete = df[df["status"] == "COMPLETE"]
        assert len(front["x"]) == pareto_mask(complete[["accuracy", "gflops"]].to_numpy(), [True, False]).sum()
        edf = next(t for t in figures["edf-runs"] if t["name"].startswith(f"{name} (n="))
        assert len(edf["x"]) == len(complete) and edf["y"][-1] == 1.0
    rows = re.findall(r"<tr><td>(a|b)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td><td>([0-9.]+)</td></tr>", page)
    assert [r[:3] for r in rows] == [("a", "21", "17"), ("b", "31", str((df_b["status"] == "COMPLETE").sum()))]

    # the same run twice scores the same hypervolume: one normalisation for all
    twin = tmp_path / "runs" / "a2"
    make_run(twin, seed=0)
    assert main(["report", str(a), str(twin), "--out", str(tmp_path / "cmp.html")]) == 0
    assert capsys.readouterr().out.strip() == f"comparison: {tmp_path / 'cmp.html'}"
    twin_rows = re.findall(
        r"<tr><td>a2?</td>(?:<td>[^<]*</td>){3}<td>([0-9.]+)</td></tr>", (tmp_path / "cmp.html").read_text()
    )
    assert len(twin_rows) == 2 and twin_rows[0] == twin_rows[1]
    assert main(["report", str(a), "--out", str(tmp_path / "x.html")]) == 2


def test_latency_is_labelled_with_its_device(tmp_path) -> None:
    """The latency column carries its device, and so do the Pareto axis and the table head; a run folder of an
    earlier version (one ``latency_ms`` column, its device in run.json) reads as the same device-carrying column."""
    make_run(tmp_path / "cpu")
    page = write_report(tmp_path / "cpu").read_text(encoding="utf-8")
    assert page.count("CPU latency (ms)") >= 2 and "CUDA latency" not in page
    assert "fig-latency_cpu_ms" in figure_data(page)
    for device, other in (("cuda", "CPU"), ("cpu", "CUDA")):
        run = tmp_path / f"legacy-{device}"
        old = make_run(run, legacy_device=device)
        df = load_trials(run)
        assert "latency_ms" not in df.columns
        assert df[f"latency_{device}_ms"].equals(old["latency_ms"].astype(float))
        page = write_report(run).read_text(encoding="utf-8")
        assert page.count(f"{device.upper()} latency (ms)") >= 2 and f"{other} latency" not in page


def test_comparison_leaves_out_a_latency_measured_on_different_devices(tmp_path) -> None:
    """A CPU run and a CUDA run have different latency columns: the comparison draws no latency front for them
    and says why; two CPU runs are drawn as before."""
    from explorer.report import write_comparison

    cpu, cuda, cpu2 = tmp_path / "cpu", tmp_path / "cuda", tmp_path / "cpu2"
    make_run(cpu, seed=0)
    make_run(cuda, seed=1, legacy_device="cuda")  # an earlier version's run folder: its latency_ms was CUDA time
    make_run(cpu2, seed=2)
    page = write_comparison([cpu, cuda], tmp_path / "mixed.html").read_text(encoding="utf-8")
    assert "front-latency_cpu_ms" not in figure_data(page) and "front-gflops" in figure_data(page)
    assert "latency_cpu_ms is not compared: cuda measured latency_cuda_ms instead." in page
    page = write_comparison([cpu, cpu2], tmp_path / "same.html").read_text(encoding="utf-8")
    assert "front-latency_cpu_ms" in figure_data(page) and "not compared" not in page
