"""explorer.analysis: the Pareto mask against a brute-force reference, and the run-folder readers."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from explorer.analysis import (
    Objective,
    RunFolderError,
    front_mask,
    load_run_meta,
    load_trials,
    pareto_mask,
    pareto_table,
    parse_objectives,
    run_counts,
    search_outcome,
    split_objectives,
)


def brute_force_front(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Definition, one pair at a time: i is on the front iff it has no NaN and no valid j dominates it."""
    n, m = values.shape
    valid = [not np.isnan(values[i]).any() for i in range(n)]

    def better_or_equal(a: float, b: float, k: int) -> bool:
        return a >= b if maximize[k] else a <= b

    def strictly_better(a: float, b: float, k: int) -> bool:
        return a > b if maximize[k] else a < b

    front = np.zeros(n, dtype=bool)
    for i in range(n):
        if not valid[i]:
            continue
        front[i] = not any(
            valid[j]
            and all(better_or_equal(values[j, k], values[i, k], k) for k in range(m))
            and any(strictly_better(values[j, k], values[i, k], k) for k in range(m))
            for j in range(n)
        )
    return front


def random_values(rng: np.random.Generator, n: int, m: int, levels: int | None, nan_frac: float) -> np.ndarray:
    """Random points; `levels` small makes many ties, plus copied rows (duplicates) and NaN rows."""
    values = rng.integers(0, levels, size=(n, m)).astype(float) if levels else rng.normal(size=(n, m))
    dup_src = rng.choice(n, size=n // 5, replace=True)
    dup_dst = rng.choice(n, size=n // 5, replace=False)
    values[dup_dst] = values[dup_src]
    nan_rows = rng.random(n) < nan_frac
    nan_cols = rng.integers(0, m, size=n)
    values[nan_rows, nan_cols[nan_rows]] = np.nan
    return values


MAXIMIZE_CASES = [list(c) for m in (2, 3) for c in itertools.product([True, False], repeat=m)]


@pytest.mark.parametrize("maximize", MAXIMIZE_CASES, ids=lambda c: "".join("M" if x else "m" for x in c))
@pytest.mark.parametrize("levels", [None, 3, 6], ids=["continuous", "ties3", "ties6"])
@pytest.mark.parametrize("seed", range(4))
def test_pareto_mask_matches_brute_force(maximize: list[bool], levels: int | None, seed: int) -> None:
    rng = np.random.default_rng(seed * 1000 + len(maximize) * 10 + (levels or 0))
    values = random_values(rng, n=int(rng.integers(1, 80)), m=len(maximize), levels=levels, nan_frac=0.15)
    expected = brute_force_front(values, maximize)
    got = pareto_mask(values, maximize)
    assert got.dtype == bool and got.shape == (len(values),)
    np.testing.assert_array_equal(got, expected)


def test_pareto_mask_blocks_agree_with_reference_on_many_points() -> None:
    # more rows than one comparison block, so the blocked loop is exercised
    rng = np.random.default_rng(7)
    values = random_values(rng, n=1100, m=2, levels=40, nan_frac=0.05)
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), brute_force_front(values, [True, False]))


def test_duplicates_of_a_front_point_are_all_kept() -> None:
    values = np.array([[0.9, 2.0], [0.9, 2.0], [0.8, 1.0], [0.7, 1.5], [0.9, 2.0]])
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), [True, True, True, False, True])


def test_weak_domination_removes_ties_in_one_objective() -> None:
    # same accuracy, higher cost: dominated; same cost, lower accuracy: dominated
    values = np.array([[0.9, 1.0], [0.9, 2.0], [0.8, 1.0]])
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), [True, False, False])


def test_nan_rows_are_neither_on_the_front_nor_dominating() -> None:
    # row 0 would dominate everything if its NaN were ignored; row 3 is NaN everywhere
    values = np.array([[1.0, np.nan], [0.5, 2.0], [0.4, 3.0], [np.nan, np.nan], [0.6, 1.0]])
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), [False, False, False, False, True])


def test_direction_matters() -> None:
    values = np.array([[1.0, 1.0], [2.0, 2.0]])
    np.testing.assert_array_equal(pareto_mask(values, [True, True]), [False, True])
    np.testing.assert_array_equal(pareto_mask(values, [False, False]), [True, False])
    np.testing.assert_array_equal(pareto_mask(values, [True, False]), [True, True])


def test_edge_shapes() -> None:
    assert pareto_mask(np.empty((0, 2)), [True, False]).shape == (0,)
    np.testing.assert_array_equal(pareto_mask(np.array([[3.0], [5.0], [5.0]]), [True]), [False, True, True])
    with pytest.raises(ValueError):
        pareto_mask(np.zeros((3, 2)), [True])
    with pytest.raises(ValueError):
        pareto_mask(np.zeros(3), [True])


def test_objectives_parsing_and_split() -> None:
    objs = parse_objectives(
        [{"metric": "accuracy", "mode": "max"}, ("gflops", "min"), Objective("latency_cpu_ms", "min")]
    )
    quality, costs = split_objectives(objs)
    assert quality == Objective("accuracy", "max")
    assert [c.metric for c in costs] == ["gflops", "latency_cpu_ms"]
    with pytest.raises(ValueError):
        Objective("accuracy", "maximise")
    with pytest.raises(ValueError):
        split_objectives([("gflops", "min")])


def trials_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "number": [3, 0, 1, 2, 4, 5],
            "status": ["COMPLETE", "COMPLETE", "FAILED", "COMPLETE", "INFEASIBLE", "COMPLETE"],
            "error": ["", "", "RuntimeError: out of memory", "", "gflops 9.0 > max_gflops 2", ""],
            "accuracy": [0.60, 0.50, np.nan, 0.70, np.nan, 0.70],
            "gflops": [1.0, 0.5, np.nan, 2.0, 9.0, 3.0],
        }
    )


def test_pareto_table_keeps_complete_trials_sorted_by_cost() -> None:
    df = trials_frame()
    table = pareto_table(df, [{"metric": "accuracy", "mode": "max"}, {"metric": "gflops", "mode": "min"}])
    assert list(table["number"]) == [0, 3, 2, 5]
    assert list(table["on_front"]) == [True, True, True, False]
    assert table["on_front"].dtype == bool
    # along the front, more cost buys more accuracy
    front = table[table["on_front"]]
    assert front["gflops"].is_monotonic_increasing and front["accuracy"].is_monotonic_increasing


def test_front_mask_is_aligned_with_the_full_table() -> None:
    df = trials_frame()
    mask = front_mask(df, [("accuracy", "max"), ("gflops", "min")])
    # the INFEASIBLE row (cost 9, accuracy NaN) and the FAILED row are never on the front
    np.testing.assert_array_equal(mask, [True, True, False, True, False, False])


def test_pareto_table_rejects_an_unknown_metric() -> None:
    with pytest.raises(ValueError, match="latency_cpu_ms"):
        pareto_table(trials_frame(), [("accuracy", "max"), ("latency_cpu_ms", "min")])


def test_run_counts() -> None:
    assert run_counts(trials_frame()) == {"complete": 4, "failed": 1, "infeasible": 1, "stopped": 0, "total": 6}


def test_search_outcome_names_the_errors_when_no_trial_finished() -> None:
    line, finished = search_outcome(trials_frame())
    assert finished and line == "6 trials: 4 complete, 0 stopped early, 1 failed, 1 infeasible"
    failed = pd.DataFrame(
        {
            "status": ["FAILED", "FAILED", "FAILED", "INFEASIBLE"],
            "error": [
                "FloatingPointError: loss became nan",
                "FloatingPointError: loss became nan",
                "RuntimeError: boom",
                "gflops 9.0 > max_gflops 2",
            ],
        }
    )
    line, finished = search_outcome(failed)
    assert not finished
    assert line == (
        "no trial finished (4 trials: 0 complete, 0 stopped early, 3 failed, 1 infeasible): "
        "2x FloatingPointError: loss became nan; 1x RuntimeError: boom; 1x gflops 9.0 > max_gflops 2"
    )
    assert search_outcome(pd.DataFrame({"status": ["STOPPED"], "error": [""]}))[1]


def test_load_trials_parquet_and_csv_fallback(tmp_path) -> None:
    df = trials_frame().assign(
        arch_hash=["123456789012", "1e3456789012", "abcdefabcdef", "000000000001", "0e0000000000", "ffffffffffff"],
        trial_id=[f"t{i}" for i in range(6)],
        **{"param.depth": [1, 2, 3, 4, 5, 6], "param.mixer": ["a", "b", "a", "b", "a", "b"]},
    )
    meta = {"name": "r", "objectives": [{"metric": "accuracy", "mode": "max"}]}
    (tmp_path / "run.json").write_text(json.dumps(meta))
    df.to_csv(tmp_path / "trials.csv", index=False)
    assert load_run_meta(tmp_path) == meta

    from_csv = load_trials(tmp_path)
    df.to_parquet(tmp_path / "trials.parquet", index=False)
    from_parquet = load_trials(tmp_path)
    for loaded in (from_csv, from_parquet):
        assert list(loaded["number"]) == [0, 1, 2, 3, 4, 5]
        assert list(loaded["arch_hash"]) == [
            "1e3456789012",
            "abcdefabcdef",
            "000000000001",
            "123456789012",
            "0e0000000000",
            "ffffffffffff",
        ]
        assert list(loaded["error"])[:3] == ["", "RuntimeError: out of memory", ""]
        assert np.isnan(loaded["accuracy"].iloc[1])

    (tmp_path / "trials.parquet").unlink()
    (tmp_path / "trials.csv").unlink()
    with pytest.raises(RunFolderError, match="no trials.parquet or trials.csv"):
        load_trials(tmp_path)


# --- non-dominated sorting, hypervolume, design-space statistics, importance ---------------------------------

from explorer.analysis import HV_REFERENCE, hypervolume, hypervolume_history, normalised_losses  # noqa: E402
from explorer.analysis.design_space import error_edfs, front_shares, good_ranges, parallel_table, param_importances  # noqa: E402
from explorer.pareto import non_dominated_ranks  # noqa: E402


def brute_force_ranks(values: np.ndarray, maximize: list[bool]) -> np.ndarray:
    """Peel fronts with the pairwise reference: rank r = front of what ranks < r left."""
    ranks = np.full(len(values), -1)
    left = [i for i in range(len(values)) if not np.isnan(values[i]).any()]
    r = 0
    while left:
        front = brute_force_front(values[left], maximize)
        ranks[[i for i, f in zip(left, front) if f]] = r
        left = [i for i, f in zip(left, front) if not f]
        r += 1
    return ranks


def brute_force_hypervolume(values: np.ndarray, maximize: list[bool], reference: list[float]) -> float:
    """Inclusion-exclusion over every subset of the valid points: HV = Σ_S (-1)^{|S|+1} Π_k (r_k - worst_k(S))+,
    all in loss space (max objectives negated). Exact, independent of any front computation; small n only."""
    loss = np.where(maximize, -values, values)
    ref = np.where(maximize, -np.asarray(reference), np.asarray(reference))
    pts = [p for p in loss if not np.isnan(p).any()]
    total = 0.0
    for size in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, size):
            corner = np.max(subset, axis=0)  # the intersection of the boxes [p, ref]
            total += (-1) ** (size + 1) * float(np.prod(np.clip(ref - corner, 0, None)))
    return total


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("levels", [None, 4], ids=["continuous", "ties"])
@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_matches_inclusion_exclusion(m: int, levels: int | None, seed: int) -> None:
    rng = np.random.default_rng(100 * m + seed + (levels or 0))
    maximize = [bool(x) for x in rng.integers(0, 2, size=m)]
    values = random_values(rng, n=int(rng.integers(2, 11)), m=m, levels=levels, nan_frac=0.15)
    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    # a reference behind every point (the worst corner pushed out) and one cutting through the cloud
    for reference in (np.where(maximize, lo - 0.5, hi + 0.5), np.nanmedian(values, axis=0)):
        got = hypervolume(values, maximize, reference)
        assert got == pytest.approx(brute_force_hypervolume(values, maximize, list(reference)), rel=1e-9, abs=1e-12)


def test_hypervolume_known_values() -> None:
    # two points of a 2-D max/min front against reference (0, 10): boxes 2x8 and 4x5 overlapping in 2x5
    assert hypervolume(np.array([[2.0, 2.0], [4.0, 5.0]]), [True, False], [0.0, 10.0]) == pytest.approx(16 + 20 - 10)
    # a dominated point, a duplicate and a NaN row add nothing
    extra = np.array([[2.0, 2.0], [4.0, 5.0], [1.0, 6.0], [4.0, 5.0], [np.nan, 0.0]])
    assert hypervolume(extra, [True, False], [0.0, 10.0]) == pytest.approx(26.0)
    # points not strictly inside the reference count for nothing
    assert hypervolume(np.array([[0.0, 1.0], [3.0, 10.0]]), [True, False], [0.0, 10.0]) == 0.0


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_non_dominated_ranks_match_peeling(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    maximize = [True] + [False] * (m - 1)
    values = random_values(rng, n=60, m=m, levels=5, nan_frac=0.1)
    got = non_dominated_ranks(values, maximize)
    np.testing.assert_array_equal(got, brute_force_ranks(values, maximize))
    np.testing.assert_array_equal(got == 0, pareto_mask(values, maximize))


def design_frame() -> pd.DataFrame:
    """8 trials: width decides accuracy exactly, mixer does not; one failure."""
    return pd.DataFrame(
        {
            "number": range(8),
            "status": ["COMPLETE"] * 7 + ["FAILED"],
            "accuracy": [0.5, 0.6, 0.7, 0.8, 0.55, 0.65, 0.75, np.nan],
            "gflops": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.5, 1.0],
            "param.width": [8, 16, 32, 64, 8, 16, 32, 8],
            "param.mixer": ["a", "b", "a", "b", "b", "a", "b", "a"],
            "param.window": [4.0, np.nan, 8.0, np.nan, np.nan, 4.0, np.nan, 4.0],
        }
    )


OBJ2 = [("accuracy", "max"), ("gflops", "min")]


def test_error_edfs_exact() -> None:
    edfs = error_edfs(design_frame(), "accuracy", True)
    a = edfs[(edfs["param"] == "param.mixer") & (edfs["value"] == "a")]
    np.testing.assert_allclose(a["error"], [1 - 0.7, 1 - 0.65, 1 - 0.5])  # sorted errors; failed trial excluded
    np.testing.assert_allclose(a["edf"], [1 / 3, 2 / 3, 1.0])
    assert list(edfs[edfs["param"] == "param.width"]["value"].unique()) == ["8", "16", "32", "64"]  # numeric order
    assert set(edfs[edfs["param"] == "param.window"]["value"]) == {"4", "8", "—"}  # not sampled = its own group
    assert edfs.groupby(["param"])["n"].first().to_dict() and len(edfs[edfs["param"] == "param.width"]) == 7


def test_front_shares_exact() -> None:
    df = design_frame()
    # front over (max acc, min gflops): 0 (0.5@1), 4 (0.55@1), 1 (0.6@2), 5 (0.65@2), 2 (0.7@3), 6, 3 → ties at 1, 2
    mask = front_mask(df, OBJ2)
    assert list(np.flatnonzero(mask)) == [2, 3, 4, 5, 6]
    shares = front_shares(df, OBJ2).set_index(["param", "value"])
    assert shares.loc[("param.mixer", "a"), ["n", "n_front"]].tolist() == [3, 2]
    assert shares.loc[("param.mixer", "b"), ["n", "n_front"]].tolist() == [4, 3]
    assert shares.loc[("param.mixer", "b"), "share"] == pytest.approx(3 / 5)
    assert shares.loc[("param.width", "8"), "rate"] == pytest.approx(1 / 2)


def test_good_ranges_find_the_deciding_value() -> None:
    rng = np.random.default_rng(0)
    n = 200
    width = rng.choice([8, 16, 32], size=n, p=[0.25, 0.25, 0.5])
    noise = rng.integers(1, 6, size=n)
    df = pd.DataFrame(
        {
            "number": range(n),
            "status": "COMPLETE",
            "param.width": width,
            "param.noise": noise,
            "param.mixer": rng.choice(["x", "y"], size=n),
            "accuracy": (width == 32) * 0.5 + 0.01 * rng.random(n),
        }
    )
    ranges = good_ranges(df, "accuracy", True, n_boot=500, seed=1).set_index("param")
    assert set(ranges.index) == {"param.width", "param.noise"}  # categorical mixer gets no range
    assert ranges.loc["param.width", ["lo", "best", "hi"]].tolist() == [32.0, 32.0, 32.0]
    assert ranges.loc["param.noise", "lo"] < ranges.loc["param.noise", "hi"]  # no signal: a wide range
    assert ranges.loc["param.width", ["searched_lo", "searched_hi", "n_values"]].tolist() == [8.0, 32.0, 3]


def test_hypervolume_history_rises_to_the_final_value() -> None:
    df = design_frame()
    hv = hypervolume_history(df, OBJ2)
    assert list(hv["number"]) == list(range(8)) and (np.diff(hv["hypervolume"]) >= 0).all()
    loss = normalised_losses(df, OBJ2)
    assert np.nanmin(loss, axis=0).tolist() == [0.0, 0.0] and np.nanmax(loss, axis=0).tolist() == [1.0, 1.0]
    final = hypervolume(loss, [False, False], [HV_REFERENCE] * 2)
    assert hv["hypervolume"].iloc[-1] == pytest.approx(final)
    assert final == pytest.approx(brute_force_hypervolume(loss, [False, False], [HV_REFERENCE] * 2))
    # trial 0 alone: normalised (1 - 0, 0) → box (1.1 - 1) x (1.1 - 0)
    assert hv["hypervolume"].iloc[0] == pytest.approx(0.1 * 1.1)


def test_parallel_table_codes_categories() -> None:
    table, labels = parallel_table(design_frame(), OBJ2)
    assert list(table.columns) == ["number", "width", "mixer", "window", "accuracy", "gflops"]
    assert labels == {"mixer": ["a", "b"], "window": ["4", "8", "—"]}
    assert table["mixer"].tolist() == [0, 1, 0, 1, 1, 0, 1] and table["window"].tolist() == [0, 2, 1, 2, 2, 0, 2]


def test_importance_ranks_the_deciding_parameter_and_explains_failures(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 60
    width = rng.choice([8, 16, 32], size=n)
    df = pd.DataFrame(
        {
            "number": range(n),
            "status": "COMPLETE",
            "param.width": width,
            "param.mixer": rng.choice(["x", "y"], size=n),
            "accuracy": width / 32 + 0.01 * rng.random(n),
            "gflops": rng.random(n),
        }
    )
    imp = param_importances(df, OBJ2, tmp_path)
    assert [i.objective for i in imp] == ["accuracy", "gflops"]
    assert max(imp[0].values, key=imp[0].values.get) == "width" and imp[0].source == "trials table"
    assert sum(imp[0].values.values()) == pytest.approx(1.0)
    assert (tmp_path / ".importance.json").exists()
    assert param_importances(df, OBJ2, tmp_path) == imp  # served from the cache

    few = param_importances(df.head(3), OBJ2)
    assert not few[0].values and few[0].reason == "only 3 distinct complete trial(s); importance needs at least 8"
    single = param_importances(df.assign(**{"param.width": 8, "param.mixer": "x"}), OBJ2)
    assert single[0].reason == "every searched parameter took a single value"


def test_replayed_duplicates_count_once_in_every_statistic(tmp_path):
    """make_run's table ends with a replay of its best trial (same architecture hash, same results): every design-space
    statistic must be what it is without that row, while the front still marks both copies."""
    from explorer.analysis import distinct_complete
    from explorer.analysis.design_space import error_edfs, front_shares, good_ranges, param_importances
    from tests.test_report import OBJECTIVES, make_run

    df = make_run(tmp_path / "run", n=40)
    assert df["arch_hash"].duplicated().sum() == 1
    once = df.iloc[:-1]
    assert distinct_complete(df).tolist() == distinct_complete(once).tolist() + [False]
    pd.testing.assert_frame_equal(error_edfs(df), error_edfs(once))
    pd.testing.assert_frame_equal(front_shares(df, OBJECTIVES), front_shares(once, OBJECTIVES))
    pd.testing.assert_frame_equal(good_ranges(df), good_ranges(once))
    importances = [[vars(i) for i in param_importances(table, OBJECTIVES)] for table in (df, once)]
    assert importances[0] == importances[1]
    assert front_mask(df, OBJECTIVES)[-1]  # the replay is on the front with its original


def test_the_quality_objective_is_accuracy_by_name_even_after_throughput():
    quality, costs = split_objectives([("throughput_cpu", "max"), ("accuracy", "max"), ("gflops", "min")])
    assert quality.metric == "accuracy" and [o.metric for o in costs] == ["throughput_cpu", "gflops"]
    assert split_objectives([("throughput_cpu", "max"), ("gflops", "min")])[0].metric == "throughput_cpu"
