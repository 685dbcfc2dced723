"""explorer.analysis: the Pareto mask against a brute-force reference, and the run-folder readers."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from explorer.analysis import (
    Objective,
    front_mask,
    load_run_meta,
    load_trials,
    pareto_mask,
    pareto_table,
    parse_objectives,
    run_counts,
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
    objs = parse_objectives([{"metric": "accuracy", "mode": "max"}, ("gflops", "min"), Objective("latency_ms", "min")])
    quality, costs = split_objectives(objs)
    assert quality == Objective("accuracy", "max")
    assert [c.metric for c in costs] == ["gflops", "latency_ms"]
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
    with pytest.raises(ValueError, match="latency_ms"):
        pareto_table(trials_frame(), [("accuracy", "max"), ("latency_ms", "min")])


def test_run_counts() -> None:
    assert run_counts(trials_frame()) == {"complete": 4, "failed": 1, "infeasible": 1, "total": 6}


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
        assert list(loaded["arch_hash"]) == ["1e3456789012", "abcdefabcdef", "000000000001", "123456789012",
                                             "0e0000000000", "ffffffffffff"]
        assert list(loaded["error"])[:3] == ["", "RuntimeError: out of memory", ""]
        assert np.isnan(loaded["accuracy"].iloc[1])

    (tmp_path / "trials.parquet").unlink()
    (tmp_path / "trials.csv").unlink()
    with pytest.raises(FileNotFoundError):
        load_trials(tmp_path)
