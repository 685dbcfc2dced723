"""The report in headless Chromium driven by Playwright: Pareto points, click → card, no console errors.

One REAL small run (tests/spaces/smoke.yaml through Ray Tune, ~1 min) is shared by the module; a synthetic run
covers failures, the table's sort and filter, and the comparison page. Screenshots go to tmp_path and, for the
issue note, to /tmp/report_shots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import CHROMIUM, make_run

from explorer.analysis import load_trials, pareto_mask
from explorer.report import write_comparison, write_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api")
SHOTS = Path("/tmp/report_shots")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


def open_page(browser, path: Path):
    """(page, console errors): the page loaded until every eager chart has drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-plots=drawn]", state="attached", timeout=90_000)
    return page, errors


def front_points(page, div_id: str):
    """The drawn markers of the chart's "Pareto front" trace (plotly keeps SVG trace groups in data order)."""
    index = page.evaluate(f"document.getElementById('{div_id}').data.findIndex(t => t.name === 'Pareto front')")
    assert index >= 0
    return page.locator(f"#{div_id} .scatterlayer .trace").nth(index).locator("path.point")


def shoot(page, tmp_path: Path, name: str, full_page: bool = False) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SHOTS / name)
    return path


@pytest.fixture(scope="module")
def real_run(local_ray, tmp_path_factory) -> Path:
    from explorer.search import run_search

    run_dir = tmp_path_factory.mktemp("reports") / "smoke-run"
    # the smoke search with a front audit (2 front points + 1 random trial, another seed, a 2-epoch reference)
    report = run_search("tests/spaces/audit.yaml", run_dir=run_dir, progress=False)
    assert report == run_dir.resolve() / "index.html"
    return run_dir.resolve()


@pytest.mark.slow
def test_real_run_pareto_points_click_to_card(browser, real_run, tmp_path) -> None:
    df = load_trials(real_run)
    complete = df[df["status"] == "COMPLETE"]
    assert len(complete) >= 2, df[["status", "error"]]
    expected = pareto_mask(complete[["accuracy", "gflops"]].to_numpy(), [True, False])
    front_numbers = set(complete.loc[expected, "number"].astype(int))

    page, errors = open_page(browser, real_run / "index.html")
    points = front_points(page, "fig-gflops")
    assert points.count() == int(expected.sum())
    assert page.locator("#card").is_hidden()
    points.first.click(force=True)
    page.wait_for_selector("#card:not([hidden])", timeout=10_000)
    number = int(page.locator("#card").get_attribute("data-trial"))
    assert number in front_numbers
    arch_hash = df.loc[df["number"] == number, "arch_hash"].item()
    assert page.locator("#card code.cmd").inner_text() == (
        f"explorer cost {real_run}/archs/{arch_hash}.json --no-latency"
    )
    assert page.locator("#card h3").inner_text().startswith(f"trial {number}")
    assert (real_run / "archs" / f"{arch_hash}.json").exists()
    shoot(page, tmp_path, "real_run_card.png")
    assert errors == []
    page.close()


@pytest.mark.slow
def test_real_run_full_page(browser, real_run, tmp_path) -> None:
    page, errors = open_page(browser, real_run / "index.html")
    assert page.locator("#live").count() == 0  # a finished run does not reload
    page.locator("#parcoords").scroll_into_view_if_needed()
    page.wait_for_selector("#parcoords[data-drawn='1']", state="attached", timeout=90_000)
    shoot(page, tmp_path, "real_run_full.png", full_page=True)
    assert errors == []
    page.close()


@pytest.mark.slow
def test_real_run_audit_error_bars_and_verdict(browser, real_run, tmp_path) -> None:
    from explorer.analysis.audit import load_audit, summarize_audit

    audit = load_audit(real_run)
    summary = summarize_audit(load_trials(real_run), audit, epochs=1)
    audited = sorted(int(n) for n in summary.points["number"])
    assert len(audited) == 3
    page, errors = open_page(browser, real_run / "index.html")
    trace = page.evaluate(
        "(() => { const d = document.getElementById('fig-gflops').data;"
        " const t = d.find(t => t.name === 'audited: range over seeds');"
        " return t && {n: t.customdata, plus: t.error_y.array, minus: t.error_y.arrayminus}; })()"
    )
    assert trace is not None and sorted(trace["n"]) == audited
    lo_hi = summary.points.set_index("number")
    for n, plus, minus in zip(trace["n"], trace["plus"], trace["minus"], strict=True):  # in %: the seeds' range
        assert plus + minus == pytest.approx(100 * (lo_hi.at[n, "hi"] - lo_hi.at[n, "lo"]), abs=1e-6)
    # plotly drew one error bar per audited point
    assert page.locator("#fig-gflops g.errorbar").count() >= len(audited)
    verdict = page.locator("#audit-verdict").inner_text()
    assert verdict == summary.sentence and "the front's order" in verdict.lower()
    assert page.locator("table.audit tbody tr").count() == len(audited)
    assert "training / " in page.locator("dl.meta").inner_text()  # the header names the proxy's clips
    page.locator("#audit").scroll_into_view_if_needed()
    shoot(page, tmp_path, "real_run_audit.png", full_page=True)
    assert errors == []
    page.close()


def test_synthetic_click_sort_filter_and_live(browser, tmp_path) -> None:
    run = tmp_path / "run"
    df = make_run(run)
    write_report(run)
    page, errors = open_page(browser, run / "index.html")
    complete = df[df["status"] == "COMPLETE"]
    for cost in ("gflops", "latency_cpu_ms"):
        n_front = int(pareto_mask(complete[["accuracy", cost]].to_numpy(), [True, False]).sum())
        assert front_points(page, f"fig-{cost}").count() == n_front
    front_points(page, "fig-latency_cpu_ms").last.click(force=True)
    page.wait_for_selector("#card:not([hidden])", timeout=10_000)
    assert "conv3d d1 w16 |" in page.locator("#card .body p").first.inner_text()
    shoot(page, tmp_path, "synthetic_card.png")
    page.locator("#card .close").click()
    assert page.locator("#card").is_hidden()

    # filter: only the rows whose text matches stay visible
    page.fill("#filter", "CUDA out of memory")
    assert page.locator("#trials tbody tr:visible").count() == 1
    assert page.locator("#shown").inner_text() == "1"
    page.fill("#filter", "")
    # sort by accuracy: descending on the second click, NaN rows last
    header = page.locator("#trials th", has_text="accuracy")
    header.click()
    header.click()
    first = int(page.locator("#trials tbody tr").first.get_attribute("data-n"))
    assert complete.loc[complete["number"] == first, "accuracy"].item() == complete["accuracy"].max()
    assert page.locator("#trials tbody tr").last.locator("td").nth(3).inner_text() == "–"  # no accuracy: last
    # a table row opens its card too
    page.locator("#trial-5").click()
    assert page.locator("#card").get_attribute("data-trial") == "5"
    assert errors == []
    page.close()

    write_report(run, live=True)
    page, errors = open_page(browser, run / "index.html")
    assert page.locator("#live").inner_text().startswith("search running, 21 trials so far")
    shoot(page, tmp_path, "synthetic_live.png")
    assert errors == []
    page.close()


def test_comparison_page_draws(browser, tmp_path) -> None:
    make_run(tmp_path / "a", seed=0)
    make_run(tmp_path / "b", n=30, seed=1)
    out = write_comparison([tmp_path / "a", tmp_path / "b"])
    page, errors = open_page(browser, out)
    assert page.locator("#front-gflops .scatterlayer .trace").count() == 4  # trials + front per run
    shoot(page, tmp_path, "comparison.png", full_page=True)
    assert errors == []
    page.close()
