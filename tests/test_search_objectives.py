"""Cost objectives beyond GFLOPs in a real search: predicted latency, throughput and peak memory are measured
before training and reported at every epoch; a latency limit rejects samples through the predictor."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from explorer.search import run_search

SPACES = Path(__file__).resolve().parent / "spaces"


@pytest.mark.slow
def test_cost_objectives_are_measured_and_reported(local_ray, tmp_path):
    run_search(SPACES / "objectives.yaml", run_dir=tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    for metric in (
        "predicted_latency_cpu_ms",
        "throughput_cpu",
        "peak_mem_cpu_mb",
        "latency_cpu_ms",
        "gflops",
        "params_m",
    ):
        assert df[metric].map(math.isfinite).all() and (df[metric] > 0).all(), metric
    wide, narrow = df.sort_values("param.s0.width").iloc[::-1].itertuples()
    assert wide.gflops > narrow.gflops and wide.params_m > narrow.params_m
    breakdown = json.loads(wide.cost_json)
    assert sum(breakdown["params_by_part"].values()) == pytest.approx(wide.params_m * 1e6)
    assert sum(breakdown["flops_by_part"].values()) == pytest.approx(wide.gflops * 1e9)
    history = json.loads(wide.history_json)[0]
    assert history["predicted_latency_cpu_ms"] == pytest.approx(wide.predicted_latency_cpu_ms)


@pytest.mark.slow
def test_latency_limit_rejects_through_the_predictor(local_ray, tmp_path):
    run_search(SPACES / "too_slow.yaml", run_dir=tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert (df["status"] == "INFEASIBLE").all(), df[["status", "error"]]
    assert df["error"].str.match(r"Infeasible: predicted cpu latency [\d.]+ ms exceeds max_latency_ms 0.001").all()
    assert (df["epochs"] == 0).all()  # rejected before any training
    # Optuna hears it as a constraint violation (PRUNED, the relative excess set as its constraint), not a failure
    import optuna

    study = optuna.load_study(study_name="run", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * len(df)
    assert all(set(t.constraints) == {"max_latency_ms"} and t.constraints["max_latency_ms"] > 0 for t in study.trials)
