"""Factor studies: the paired analysis finds a known effect and not an absent one at the stated rates, study files
fail with file:line errors, and a tiny study runs on a real local Ray and resumes after SIGKILL without losing or
repeating cells."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processes import stop_process_group

from explorer.analysis import STUDY_ROLE, busy_seconds, load_trials
from explorer.analysis.study import BETTER, SAME, WORSE, cell_table, paired_difference, summarize_study
from explorer.space import SpaceError
from explorer.space.study import draw_cells, load_study

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "tests" / "spaces"
STUDY = ROOT / "tests" / "studies" / "smoke_mixer.yaml"


def _cells(effect: float, rng: np.random.Generator, bases: int = 8, seeds: int = 2) -> pd.DataFrame:
    """Synthetic cells: each base has its own level (sd 10 points, shared by both values: the paired design
    removes it), value "b" adds ``effect``, each training adds seed noise (sd 2 points)."""
    rows = []
    for base in range(bases):
        level = 0.5 + 0.1 * rng.standard_normal()
        for value, shift in (("a", 0.0), ("b", effect)):
            for seed in range(seeds):
                rows.append(
                    {
                        "base": base,
                        "value": value,
                        "seed": seed,
                        "status": "COMPLETE",
                        "accuracy": level + shift + 0.02 * rng.standard_normal(),
                        "gflops": 1.0 + shift,
                    }
                )
    return pd.DataFrame(rows)


def _brute_mean(cells: pd.DataFrame, a: str, b: str) -> float:
    means = cells.groupby(["base", "value"])["accuracy"].mean().unstack()
    return float(np.mean([means.at[k, a] - means.at[k, b] for k in means.index]))


def test_paired_difference_is_the_mean_of_per_base_differences() -> None:
    cells = _cells(0.03, np.random.default_rng(0))
    diff = paired_difference(cells, "b", "a", draws=500)
    assert diff.mean == pytest.approx(_brute_mean(cells, "b", "a"))
    assert diff.lo < diff.mean < diff.hi and diff.bases == 8
    # the shared base levels (sd 10 points) cancel: the interval is far narrower than an unpaired one would be
    assert diff.hi - diff.lo < 0.05


def test_verdicts_find_a_real_effect_and_rarely_an_absent_one() -> None:
    rng = np.random.default_rng(1)
    found = [paired_difference(_cells(0.04, rng), "b", "a", draws=300, seed=i).verdict for i in range(60)]
    null = [paired_difference(_cells(0.0, rng), "b", "a", draws=300, seed=i).verdict for i in range(100)]
    assert found.count(BETTER) / len(found) >= 0.9  # +4 points against 2 points of seed noise, 8 bases, 2 seeds
    false = (null.count(BETTER) + null.count(WORSE)) / len(null)
    assert false <= 0.2  # nominally 10 % at 90 % confidence; the percentile bootstrap of 8 bases runs a bit over
    assert paired_difference(_cells(-0.04, rng), "b", "a", draws=300).verdict == WORSE


def test_an_indistinguishable_pair_says_how_many_bases_would_separate_it() -> None:
    cells = _cells(0.005, np.random.default_rng(2), bases=4)
    summary = summarize_study(cells, ["a", "b"], confidence=0.9)
    pair = summary.pairs[0]
    assert pair.verdict == SAME and pair.bases_needed is not None and pair.bases_needed > 4
    assert "bases would separate" in summary.sentences[0]


def test_an_indistinguishable_pair_never_needs_fewer_bases_than_it_has() -> None:
    """The bases that would separate a pair come from its interval, seeds' noise included: two or three bases whose
    differences happen to agree must not read as "about 2 bases would separate it" while their interval, wide with
    seed noise, still spans 0 (an estimate from the spread between bases alone said so)."""
    rng = np.random.default_rng(4)
    checked = 0
    for trial in range(40):
        bases = 2 + trial % 3
        cells = _cells(0.003, rng, bases=bases)
        cells["accuracy"] += 0.03 * rng.standard_normal(len(cells))  # seed noise 3.6 points in all
        pair = paired_difference(cells, "b", "a", draws=300, seed=trial)
        if pair.verdict == SAME and pair.bases_needed is not None:
            assert pair.bases_needed >= bases, (bases, pair)
            checked += 1
    assert checked >= 20


def test_numeric_factor_saving_within_tolerance() -> None:
    rng = np.random.default_rng(3)
    rows = []
    for base in range(8):
        level = 0.5 + 0.1 * rng.standard_normal()
        for value, loss, cost in ((0, 0.0, 1.0), (4, 0.001, 0.8), (8, 0.05, 0.5)):  # 8 loses 5 points
            for seed in range(2):
                rows.append(
                    {
                        "base": base,
                        "value": str(value),
                        "seed": seed,
                        "status": "COMPLETE",
                        "accuracy": level - loss + 0.002 * rng.standard_normal(),
                        "gflops": cost,
                    }
                )
    summary = summarize_study(pd.DataFrame(rows), ["0", "4", "8"], tolerance=0.01, numeric=True)
    assert summary.saving is not None and summary.saving.startswith("4 saves 20 % of 0's gflops and loses at most")
    # value 4 gains a point on every base: its saving loses nothing, said without a negative loss
    gains = pd.DataFrame(rows).assign(accuracy=lambda d: d["accuracy"] + 0.011 * (d["value"] == "4"))
    summary = summarize_study(gains, ["0", "4", "8"], tolerance=0.01, numeric=True)
    assert summary.saving.startswith("4 saves 20 % of 0's gflops and loses nothing (the interval's lower end is +")
    # value 4 gains or loses 3 points, alternately over 8 bases, without seed noise: no value is certified. The
    # interval's lower side is the bootstrap's 5th percentile of the mean of 8 resampled +-3 differences, -1.5
    # (2 gains of 8: 0.75 * 2 - 3) or a little below it by interpolation; shrinking as 1/sqrt(bases) it clears
    # -1 point at 8 * (1.5 / 1)^2 = 18 bases and a little more
    swing = pd.DataFrame(rows).assign(
        accuracy=lambda d: (
            0.5
            + np.where(d["value"] == "4", np.where(d["base"] % 2 == 0, 0.03, -0.03), 0.0)
            - 0.05 * (d["value"] == "8")
        )
    )
    summary = summarize_study(swing, ["0", "4", "8"], tolerance=0.01, numeric=True)
    assert summary.saving == (
        "No value stays within 1.0 point(s) of 0 at this confidence. The cheapest whose mean loss is within it, "
        "4 (+0.0 points), would need about 19 bases at this spread to be certified (8 now)."
    )
    # the reference is the cheapest value (a study of what more of something buys): there is no saving to state
    assert summarize_study(pd.DataFrame(rows), ["8", "4", "0"], tolerance=0.01, numeric=True).saving is None
    # one base: the interval is the seeds' alone, and nothing says how many bases would separate it
    one = summarize_study(pd.DataFrame(rows).query("base == 0"), ["0", "4", "8"], numeric=True)
    assert "(90 % CI" in one.sentences[0] and ", 1 base)" in one.sentences[0]
    assert one.pairs[0].verdict == SAME and "one base shows no spread" in one.sentences[0]


def test_busy_seconds_is_the_union_of_the_cells_spans() -> None:
    rng = np.random.default_rng(3)
    ends = rng.uniform(0, 600, 30).round()
    rows = pd.DataFrame({"ended_at": ends, "trial_time_s": rng.uniform(1, 60, 30)})
    grid = np.arange(-100, 700, 0.01)  # brute force: count the grid points some span covers
    covered = np.zeros_like(grid, dtype=bool)
    for end, length in zip(rows["ended_at"], rows["trial_time_s"]):
        covered |= (grid >= end - length) & (grid < end)
    assert busy_seconds(rows) == pytest.approx(covered.sum() * 0.01, abs=0.05)
    assert busy_seconds(rows) < rows["trial_time_s"].sum()  # overlapping cells count once
    rows.loc[3, "ended_at"] = float("nan")  # a row from before end times were kept: no partial sum
    assert busy_seconds(rows) is None and busy_seconds(rows.drop(columns="ended_at")) is None


# --- the study file ------------------------------------------------------------------------------------------------


def test_cells_are_every_base_value_seed_with_the_other_parameters_held() -> None:
    study, space = load_study(STUDY)
    cells = draw_cells(study, space)
    assert len(cells) == 2 * 2 * 2
    for base in (0, 1):
        mine = [c for c in cells if c.base == base]
        widths = {c.params["s0.width"] for c in mine}
        assert len(widths) == 1  # the base's other parameter is the same for both values
        assert {c.params["s0.mixer"] for c in mine} == {"conv3d", "posmlp"}
        assert sorted({c.seed for c in mine}) == [0, 1]
    assert [c.arch_json for c in cells] == [c.arch_json for c in draw_cells(study, space)]  # seeded


def test_bases_share_no_cell_and_a_space_with_too_few_stops_at_bases(tmp_path) -> None:
    """The token-merging ViT varies only its width and heads besides merging: four bases, all of them, no repeat."""
    text = (
        f"name: r\nspace: {ROOT / 'search_spaces' / 'token_merging.yaml'}\n"
        "factor: {param: s0.merge.tome.r, values: [8, 32]}\nfixed: {s0.merge: tome}\nseeds: 1\n"
    )
    path = tmp_path / "ratio.yaml"
    path.write_text(text + "bases: 4\n")
    study, space = load_study(path)
    cells = draw_cells(study, space)
    bases = {(c.params["s0.width"], c.params["s0.attention.heads"]) for c in cells if c.value == 8}
    assert bases == {(48, 2), (48, 4), (64, 2), (64, 4)}
    assert len({(c.arch_json, c.seed) for c in cells}) == len(cells) == 4 * 2
    path.write_text(text + "bases: 5\n")
    with pytest.raises(SpaceError, match=r"ratio.yaml:6: bases: .*only 4 bases without a cell in common"):
        load_study(path)
    # a method factor: ToMe's r differs per base, but the none cells have only width and heads: still 4 bases
    method = path.with_name("method.yaml")
    method.write_text(
        text.replace("s0.merge.tome.r, values: [8, 32]}\nfixed: {s0.merge: tome}", "s0.merge, values: [none, tome]}")
    )
    with pytest.raises(SpaceError, match=r"method.yaml:1: bases: .*only 4 bases"):  # 8 by default, not in the file
        load_study(method)
    method.write_text(method.read_text() + "bases: 4\n")
    cells = draw_cells(*load_study(method))
    none = [c.arch_json for c in cells if c.value == "none"]
    assert len(set(none)) == len(none) == 4


@pytest.mark.parametrize(
    "text, where, message",
    [
        ("factor: {param: s0.mixer, values: [conv3d]}", "factor.values", "at least 2"),
        ("factor: {param: s0.nothing, values: [1, 2]}", "factor.param", "not a parameter"),
        ("factor: {param: s0.mixer, values: [conv3d, transformer]}", "factor.values", "'transformer' is not a value"),
        ("factor: {param: s0.mixer, values: [conv3d, posmlp]}\nbases: 0", "bases", "greater than or equal to 1"),
        ("factor: {param: s0.mixer, values: [conv3d, posmlp]}\nbudget: {epochs: 0}", "budget.epochs", "greater"),
        ("factor: {param: s0.mixer, values: [conv3d, posmlp]}\nseeds: 2\nsedes: 3", "sedes", "unknown key"),
        (
            "factor: {param: s0.mixer, values: [conv3d, posmlp]}\ncost_match: {adjust: s0.depth}",
            "cost_match.adjust",
            "not a sampled parameter",
        ),
        (
            "factor: {param: s0.width, values: [8, 16]}\ncost_match: {adjust: s0.mixer, choices: [1, 2]}",
            "cost_match.choices",
            "only replace a stage's width or depth",
        ),
    ],
)
def test_bad_study_files_name_the_line_and_field(tmp_path, text, where, message) -> None:
    path = tmp_path / "bad.yaml"
    (tmp_path / "smoke.yaml").write_text((SPACES / "smoke.yaml").read_text())
    path.write_text(f"name: bad\nspace: smoke.yaml\n{text}\n")
    with pytest.raises(SpaceError) as err:
        load_study(path)
    assert str(err.value).startswith(f"{path}:") and where in str(err.value) and message in str(err.value)
    assert err.value.line is not None


def test_explorer_study_refuses_a_bad_file_before_anything_starts(tmp_path, capsys) -> None:
    from explorer.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nspace: nowhere.yaml\nfactor: {param: s0.mixer, values: [a, b]}\n")
    assert main(["study", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:2: space: no space file" in err
    assert not (tmp_path / "runs").exists()


# --- a real study on Ray, killed and resumed ----------------------------------------------------------------------


def _study_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "explorer.cli", "study", *args, "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_tiny_study_resumes_after_sigkill_or_ctrl_c_without_losing_or_repeating_cells(tmp_path, stop) -> None:
    """Killed, or stopped with Ctrl-C (which Tune catches: the cells it cut short must stay pending, not be
    recorded as done with a partial training)."""
    env = {**os.environ, "EXPLORER_CACHE": str(tmp_path / "cache")}
    started = time.time() - 1  # Tune's timestamps are whole seconds
    study = tmp_path / "study.yaml"
    (tmp_path / "smoke.yaml").write_text(
        (SPACES / "smoke.yaml").read_text().replace("concurrency: 2", "concurrency: 1")
    )
    study.write_text(
        STUDY.read_text()
        .replace("seeds: 2", "seeds: 3")  # 12 cells, one at a time
        .replace("../spaces/smoke.yaml", "smoke.yaml")
        + "budget: {epochs: 3}\n"  # a cell is mid-training most of the time: the signal lands in one
    )
    log = open(tmp_path / "first.log", "w")
    driver = subprocess.Popen(
        _study_cmd(str(study), "--out", str(tmp_path / "runs")),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    run_dir, before = None, pd.DataFrame()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(before) < 3:
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.3)
            runs = sorted((tmp_path / "runs").glob("smoke-study-*"))
            if runs and (runs[0] / "trials.parquet").exists():
                run_dir = runs[0]
                before = load_trials(run_dir, role=STUDY_ROLE)
        assert 3 <= len(before) < 12, "the study finished before it could be interrupted"
        time.sleep(2.5)  # in Tune's saved state too
        before = load_trials(run_dir, role=STUDY_ROLE)
        driver.send_signal(stop)
        code = driver.wait(timeout=120)
        if stop == signal.SIGINT:
            assert code == 130, (tmp_path / "first.log").read_text()[-2000:]
            assert "stopped: " in (tmp_path / "first.log").read_text()
            before = load_trials(run_dir, role=STUDY_ROLE)
            assert (before["status"] == "COMPLETE").all() and (before["epochs"] == 3).all(), before
    finally:
        stop_process_group(driver)
        log.close()
    resumed = subprocess.run(
        _study_cmd("--resume", str(run_dir)), cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.strip() == f"study: {run_dir.resolve() / 'index.html'}"
    after = load_trials(run_dir, role=STUDY_ROLE)
    assert sorted(after["trial_id"]) == sorted(f"cell-{i}" for i in range(12))  # every cell once
    assert (after["status"] == "COMPLETE").all(), after[["status", "error"]]
    kept = after.set_index("trial_id").loc[before["trial_id"]]
    assert kept["trial_time_s"].tolist() == pytest.approx(before["trial_time_s"].tolist())  # not trained again
    assert after["ended_at"].between(started, time.time()).all()
    new = after[~after["trial_id"].isin(before["trial_id"])]
    assert busy_seconds(after) == pytest.approx(busy_seconds(before) + busy_seconds(new), abs=1.0)  # both legs
    cells = cell_table(after)
    assert sorted(cells.groupby(["base", "value"]).size()) == [3] * 4
    page = (run_dir / "index.html").read_text()
    assert 'id="verdicts"' in page and "posmlp vs conv3d" in page


@pytest.mark.parametrize("path", sorted((ROOT / "experiments" / "seed_studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_seed_studies_load_and_draw_their_cells(path) -> None:
    study, space = load_study(path)
    cells = draw_cells(study, space, match_costs=False)  # the cost match's builds are the driver's, at run time
    assert len(cells) == study.bases * len(study.factor.values) * study.seeds
    assert space.budget.epochs == 24  # the ready spaces' proxy budget


def test_cost_match_picks_the_closest_width_and_flags_cells_outside_the_tolerance(tmp_path) -> None:
    path = tmp_path / "matched.yaml"
    path.write_text(
        STUDY.read_text().replace("../spaces/smoke.yaml", str(SPACES / "smoke.yaml"))
        + "cost_match: {metric: gflops, adjust: s0.width, tolerance: 0.2}\n"
    )
    study, space = load_study(path)
    cells = draw_cells(study, space)
    from explorer.cost import count_flops, example_input
    from explorer.models import build

    def gflops(cell):
        from explorer.arch import Arch

        arch = Arch.from_json(cell.arch_json)
        return count_flops(build(arch), example_input(arch)) / 1e9

    for base in (0, 1):
        ref = next(c for c in cells if c.base == base and c.value == "conv3d")
        other = next(c for c in cells if c.base == base and c.value == "posmlp")
        assert ref.cost_ratio == 1.0 and ref.matched
        # brute force over the width choices: the match is the width whose GFLOPs are closest to conv3d's
        ratios = {}
        for width in (8, 16):
            params = {**other.params, "s0.width": width}
            from explorer.space import arch_from_params

            arch = arch_from_params(space, params)
            ratios[width] = count_flops(build(arch), example_input(arch)) / 1e9 / gflops(ref)
        best = min(ratios, key=lambda w: abs(ratios[w] - 1))
        assert other.params["s0.width"] == best and other.cost_ratio == pytest.approx(ratios[best])
        assert other.matched == (abs(ratios[best] - 1) <= 0.2)
    rows = pd.DataFrame(
        [
            {
                "base": c.base,
                "value": c.value,
                "seed": c.seed,
                "status": "COMPLETE",
                "accuracy": 0.5,
                "matched": c.matched,
            }
            for c in cells
        ]
    )
    assert len(cell_table(rows)) == sum(c.matched for c in cells)  # unmatched cells stay out of the verdicts


def test_cost_match_choices_finer_than_the_spaces_grid_match_where_the_grid_cannot(tmp_path) -> None:
    from explorer.arch import Arch
    from explorer.blocks.registry import InvalidCombination
    from explorer.cost import count_flops, example_input
    from explorer.models import build

    def gflops(arch: Arch) -> float:
        return count_flops(build(arch), example_input(arch)) / 1e9

    path = tmp_path / "fine.yaml"
    finer = [4, 6, 8, 10, 12, 14, 16]  # 6, 10 and 14 are not divisible by posmlp's 4 groups: skipped, not fatal
    path.write_text(
        STUDY.read_text().replace("../spaces/smoke.yaml", str(SPACES / "smoke.yaml"))
        + f"cost_match: {{metric: gflops, adjust: s0.width, tolerance: 0.15, choices: {finer}}}\n"
    )
    study, space = load_study(path)
    cells = draw_cells(study, space)
    only_the_finer_grid_matched = 0
    for base in (0, 1):
        ref = next(c for c in cells if c.base == base and c.value == "conv3d")
        other = next(c for c in cells if c.base == base and c.value == "posmlp")
        assert ref.params["s0.width"] in (8, 16)  # the bases still draw from the space's own grid
        # brute force over the listed widths, built by hand from the cell's Arch with only the width changed
        spec = Arch.from_json(other.arch_json).to_dict()
        ratios = {}
        for width in finer:
            spec["stages"][0]["width"] = width
            try:
                ratios[width] = gflops(Arch.from_dict(spec)) / gflops(Arch.from_json(ref.arch_json))
            except InvalidCombination:
                continue
        assert sorted(ratios) == [4, 8, 12, 16]
        best = min(ratios, key=lambda w: abs(ratios[w] - 1))
        assert other.params["s0.width"] == best and other.cost_ratio == pytest.approx(ratios[best])
        assert other.matched == (abs(ratios[best] - 1) <= 0.15)
        grid_matched = min(abs(ratios[w] - 1) for w in (8, 16)) <= 0.15
        only_the_finer_grid_matched += other.matched and not grid_matched
    assert only_the_finer_grid_matched >= 1


def _study_run(path: Path, factor: str = "s0.mixer", shift: float = 0.0) -> Path:
    """A study run folder in the runner's format, from synthetic cells."""
    import json

    from explorer.search.rundir import write_table

    path.mkdir(parents=True)
    cells = _cells(0.03 + shift, np.random.default_rng(4))
    rows = cells.assign(
        number=range(len(cells)),
        trial_id=[f"cell-{i}" for i in range(len(cells))],
        role="study",
        arch_summary="x",
        error="",
        params_m=0.01,
    )
    write_table(rows, path)
    study = {
        "factor": {"param": factor, "values": ["a", "b"]},
        "bases": 8,
        "seeds": 2,
        "confidence": 0.9,
        "tolerance": 0.01,
        "description": "",
        "cost_match": None,
    }
    (path / "run.json").write_text(
        json.dumps(
            {
                "name": path.name,
                "kind": "study",
                "study": study,
                "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "gflops", "mode": "min"}],
                "budget": {"epochs": 1, "batch_size": 8, "lr": 0.001},
            }
        )
    )
    return path


def test_explorer_report_draws_a_study_and_overlays_two_of_one_factor(tmp_path, capsys) -> None:
    from explorer.cli import main

    a, b = _study_run(tmp_path / "a"), _study_run(tmp_path / "b", shift=0.02)
    assert main(["report", str(a)]) == 0
    page = (a / "index.html").read_text()
    assert "b vs a: +" in page and "b is better" in page
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "both.html")]) == 0
    both = (tmp_path / "both.html").read_text()
    assert both.count('<ul class="verdict">') == 2 and "Studies of s0.mixer" in both
    other = _study_run(tmp_path / "c", factor="s0.width")
    capsys.readouterr()
    assert main(["report", str(a), str(other)]) == 2
    assert "compare different factors" in capsys.readouterr().err


def test_the_seed_studies_summary_prints_both_verdicts_and_writes_every_cell(tmp_path) -> None:
    run = _study_run(tmp_path / "run", shift=0.02)
    rows = load_trials(run, role=STUDY_ROLE)
    from explorer.search.rundir import write_table

    write_table(
        rows.assign(val_accuracy=rows["accuracy"], test_accuracy=rows["accuracy"] - 0.05, trial_time_s=60.0), run
    )
    out = tmp_path / "cells.csv"
    done = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "seed_studies" / "summarize.py"), str(run), "--csv", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    validation, test = done.stdout.split("-- test clips")
    assert "b is better" in validation and "b is better" in test  # the 5-point shift cancels in the pairs
    assert "0.53 core-h" in done.stdout  # 32 cells of a minute
    cells = pd.read_csv(out)
    assert len(cells) == 32 and {"val_accuracy", "test_accuracy", "gflops"} <= set(cells.columns)
    first = subprocess.run(  # a study stopped early: its first bases only
        [sys.executable, str(ROOT / "experiments" / "seed_studies" / "summarize.py"), str(run), "--bases", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "12 of 12 (3 bases" in first.stdout and "3 bases)" in first.stdout.split("-- test clips")[0]


def test_a_committed_seed_study_gives_its_readme_verdicts_again_from_its_cells() -> None:
    """The PosMLP-Video arrangement study's verdicts as its README states them, from the committed cells and the
    study file alone (no run folder)."""
    here = ROOT / "experiments" / "seed_studies"
    done = subprocess.run(
        [
            sys.executable,
            str(here / "summarize.py"),
            "--cells",
            str(here / "results" / "posmlp_arrangement.csv"),
            "--study",
            str(here / "posmlp_arrangement.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    validation = done.stdout.split("-- test clips")[0]
    assert "cells complete: 64 of 64 (8 bases x 4 values x 2 seeds)" in validation
    assert "joint vs parallel: -6.0 points (90 % CI -8.4 to -3.5, 8 bases): joint is worse." in validation
    assert "spatial_temporal vs parallel: -0.8 points (90 % CI -2.7 to +1.1, 8 bases)" in validation
    assert "about 45 bases would separate" in validation
