"""The search-efficiency benchmark's pieces: enumeration of a conditional space, exact 2-D hypervolume, replay."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from explorer.space import arch_from_params, load_space, parse_space

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "search_efficiency"


def _load(name: str):
    sys.path.insert(0, str(BENCH))  # replay.py imports tabular as a sibling module
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tabular = _load("tabular")
replay = _load("replay")


def _brute_force_hv(points: np.ndarray, ref: tuple[float, float]) -> float:
    """Hypervolume by coordinate compression: every cell of the grid spanned by the points' coordinates is either
    dominated by some point or not (independent of the staircase sweep under test)."""
    xs = sorted({*points[:, 0], ref[0]})
    ys = sorted({*points[:, 1], ref[1]})
    volume = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        if x1 > ref[0] or y1 > ref[1]:
            continue
        if any(px <= x0 and py <= y0 for px, py in points):
            volume += (x1 - x0) * (y1 - y0)
    return volume


def test_hypervolume_2d_hand_example():
    # staircase (0.2, 0.6), (0.5, 0.3) under ref (1, 1): 0.8*0.4 + 0.5*0.3 = 0.47; the dominated (0.6, 0.7) adds 0
    pts = np.array([[0.2, 0.6], [0.5, 0.3], [0.6, 0.7]])
    assert tabular.hypervolume_2d(pts) == pytest.approx(0.47)
    assert tabular.hypervolume_2d(np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0  # on the reference lines: nothing
    assert tabular.hypervolume_2d(np.empty((0, 2))) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_2d_matches_brute_force_and_optuna(seed):
    rng = np.random.default_rng(seed)
    pts = np.round(rng.random((25, 2)) * 1.2, 2)  # rounding makes ties; some points lie outside the reference
    expected = _brute_force_hv(pts, (1.0, 1.0))
    assert tabular.hypervolume_2d(pts) == pytest.approx(expected, abs=1e-12)
    assert tabular.hypervolume_optuna(pts) == pytest.approx(expected, abs=1e-12)


def test_hypervolume_curve_and_trials_to_reach():
    pts = np.array([[0.9, 0.9], [0.9, 0.9], [0.5, 0.5], [0.6, 0.6], [0.1, 0.95]])
    curve = tabular.hypervolume_curve(pts)
    assert curve == pytest.approx([0.01, 0.01, 0.25, 0.25, 0.25 + 0.4 * 0.05])
    assert tabular.trials_to_reach(curve, 0.25) == 3
    assert tabular.trials_to_reach(curve, 0.26) == 5
    assert tabular.trials_to_reach(curve, 0.3) is None


def test_normalise_puts_the_table_in_the_unit_square():
    losses = tabular.normalise([0.1, 0.3, 0.2], [2.0, 4.0, 3.0], (0.1, 0.3), (2.0, 4.0))
    assert losses == pytest.approx(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))


def test_censored_median():
    assert replay.censored_median([3, 1, None], budget=5) == 3.0
    assert replay.censored_median([1, None, None], budget=5) is None
    assert replay.censored_median([4, 1, 2, None], budget=5) == 3.0
    assert replay.censored_median([1, 2, None, None], budget=5) is None


TINY = {
    "name": "tiny-bench",
    "task": {"name": "trev", "preset": "smoke", "seed": 0},
    "stem": {"patch": 4},
    "stages": [
        {
            "depth": 1,
            "width": {"choice": [8, 16]},
            "mixer": {"choice": {"conv3d": {"kernel_t": {"choice": [1, 3]}}, "posmlp": {"groups": 4, "window": 8}}},
        },
        {"depth": {"choice": [1, 2]}, "width": 16, "mixer": "conv3d"},
    ],
}


def test_enumerate_params_walks_the_conditional_space():
    space = parse_space(TINY)
    params = tabular.enumerate_params(space)
    # (conv3d x 2 kernels + posmlp) x 2 widths x 2 depths = 12, not the product 2 x 2 x 2 x 2 = 16 of all choices
    assert len(params) == 12
    assert len({arch_from_params(space, p).content_hash for p in params}) == 12
    assert sum(p["s0.mixer"] == "posmlp" for p in params) == 4
    assert all("s0.conv3d.kernel_t" not in p for p in params if p["s0.mixer"] == "posmlp")


def _tiny_table(space) -> pd.DataFrame:
    rows = []
    for p in tabular.enumerate_params(space):
        cost = p["s0.width"] * p["s1.depth"]
        acc = 0.1 * cost + (0.5 if p["s0.mixer"] == "posmlp" else 0.0) + 0.01 * p.get("s0.conv3d.kernel_t", 0)
        rows.append({"arch_hash": arch_from_params(space, p).content_hash, "accuracy": acc, "gflops": float(cost)})
    return pd.DataFrame(rows)


def test_replay_random_finds_the_true_front_of_a_tiny_table():
    space = parse_space(TINY)
    table = replay.Table(_tiny_table(space), space)
    curve, distinct = replay.replay(table, replay.SAMPLERS["random"], seed=0, budget=60)
    assert np.all(np.diff(curve) >= 0) and curve[-1] <= table.true_hv + 1e-12
    assert curve[-1] == pytest.approx(table.true_hv)  # 60 random draws cover all 12 architectures
    assert distinct[-1] == 12 and distinct[0] == 1
    again, _ = replay.replay(table, replay.SAMPLERS["random"], seed=0, budget=60)
    assert np.array_equal(curve, again)  # seeded: the benchmark is reproducible


def test_space_file_enumerates_96_architectures():
    params = tabular.enumerate_params(load_space(tabular.SPACE_FILE))
    # stage 0: 2 widths x (conv3d k_t 1 | 3, posmlp, morphmlp); stage 1: 2 widths x (conv3d k_t 1 | 3, posmlp,
    # morphmlp, focal parallel | serial)
    assert len(params) == 96
    assert sum(p["s1.mixer"] == "focal" for p in params) == 32


def test_committed_table_covers_the_space_exactly():
    if not tabular.TABLE_FILE.exists():
        pytest.skip("table.csv not built yet (build_table.py)")
    space = load_space(tabular.SPACE_FILE)
    df = pd.read_csv(tabular.TABLE_FILE)
    hashes = {arch_from_params(space, p).content_hash for p in tabular.enumerate_params(space)}
    assert set(df["arch_hash"]) == hashes and len(df) == len(hashes)
    assert df["accuracy"].between(0, 1).all() and (df["gflops"] > 0).all() and (df["params_m"] > 0).all()
    # the proxy learns: accuracies spread far beyond the test-set noise of 500 demo clips (the first table, trained
    # 2 epochs at the smoke preset, had std 1.5 points against 2.1 points of noise and failed this)
    mean = df["accuracy"].mean()
    assert df["accuracy"].std() > 5 * np.sqrt(mean * (1 - mean) / 500)


def test_build_order_puts_the_named_option_last():
    build = _load("build_table")
    space = parse_space(TINY)
    todo = build.put_last(tabular.enumerate_params(space), ["s0.mixer=posmlp"])
    # the 4 PosMLP architectures come last, the 8 conv3d ones keep their enumeration order before them
    assert [p["s0.mixer"] for p in todo] == ["conv3d"] * 8 + ["posmlp"] * 4
    assert todo[:8] == [p for p in tabular.enumerate_params(space) if p["s0.mixer"] == "conv3d"]
    # two groups: depth-2 architectures last of all, then frame-wise stage 0 ones (unless depth 2) before them
    todo = build.put_last(tabular.enumerate_params(space), ["s0.conv3d.kernel_t=1", "s1.depth=2"])
    assert [(p.get("s0.conv3d.kernel_t"), p["s1.depth"]) for p in todo] == (
        [(3, 1)] * 2 + [(None, 1)] * 2 + [(1, 1)] * 2 + [(1, 2), (3, 2)] * 2 + [(None, 2)] * 2
    )
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        build.put_last(todo, ["s0.mixer"])


def test_bootstrap_ratio_brackets_the_ratio_of_medians():
    # every resample of constant hits has the same medians: the interval collapses onto 10 / 40
    assert replay.bootstrap_ratio([10] * 5, 48, [40] * 7, 144) == pytest.approx((0.25, 0.25))
    low, high = replay.bootstrap_ratio([5, 10, 15, None], 48, [30, 40, 50], 144, draws=500)
    assert 5 / 50 <= low <= 10 / 40 <= high <= 49 / 30  # a censored seed counts as budget + 1 = 49


@pytest.mark.slow
def test_replay_on_the_committed_table_reproduces_the_readme():
    """The 10-seed figures of README.md (results.csv): the default TPE reaches 95 % of the true hypervolume in a
    median of 31 trials, random in 57 — a changed sampler, space or table shows up here."""
    if not tabular.TABLE_FILE.exists():
        pytest.skip("table.csv not built yet (build_table.py)")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = replay.Table(pd.read_csv(tabular.TABLE_FILE), load_space(tabular.SPACE_FILE))
    assert table.true_hv == pytest.approx(0.7727, abs=5e-5)
    medians = {}
    for name, budget in (("tpe", 48), ("random", 144)):
        runs = [replay.replay(table, replay.SAMPLERS[name], seed, budget) for seed in range(10)]
        medians[name] = replay.summarise(name, [c for c, _ in runs], [d for _, d in runs], table.true_hv)
    assert medians["tpe"]["hits"] == [24, 30, 36, 25, 31, 18, 40, 37, 39, 31]
    assert medians["tpe"]["median_trials_to_95"] == 31.0
    assert medians["random"]["median_trials_to_95"] == 57.0


@pytest.mark.slow
def test_costaware_default_needs_a_third_of_randoms_trials_on_the_committed_table():
    """Issue 7's target on its own protocol (10 seeds): the default sampler reaches 95 % of the true hypervolume in at
    most a third of random search's 57 trials (README: 16). A GP fit is floating point, so an exact per-seed list
    could differ across CPUs; the median and every seed's reach are asserted instead."""
    if not tabular.TABLE_FILE.exists():
        pytest.skip("table.csv not built yet (build_table.py)")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = replay.Table(pd.read_csv(tabular.TABLE_FILE), load_space(tabular.SPACE_FILE))
    runs = [replay.replay(table, replay.SAMPLERS["costaware"], seed, 48) for seed in range(10)]
    row = replay.summarise("costaware", [c for c, _ in runs], [d for _, d in runs], table.true_hv)
    assert row["reached"] == 10 and row["repeats"] == 0.0
    assert row["median_trials_to_95"] <= 57.0 / 3, row["hits"]
