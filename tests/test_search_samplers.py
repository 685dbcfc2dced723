"""Search features beyond the basics, each in a real local-Ray search: ASHA early stopping, NSGA-II generations,
seeding with known points."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from explorer.search import run_search

SPACES = Path(__file__).resolve().parent / "spaces"


@pytest.mark.slow
def test_asha_stops_weak_trials_and_every_epoch_reports_every_objective(local_ray, tmp_path):
    run_search(SPACES / "asha.yaml", run_dir=tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert len(df) == 8 and df["status"].isin(["COMPLETE", "STOPPED"]).all(), df[["status", "error"]]
    stopped, complete = df[df["status"] == "STOPPED"], df[df["status"] == "COMPLETE"]
    assert len(stopped) >= 1 and (stopped["epochs"] < 4).all()
    assert len(complete) >= 1 and (complete["epochs"] == 4).all()
    for row in df.itertuples():
        history = json.loads(row.history_json)
        assert [h["epoch"] for h in history] == list(range(1, row.epochs + 1))
        assert all(h["gflops"] > 0 and h["accuracy"] is not None for h in history)


@pytest.mark.slow
def test_nsga2_runs_generations_and_starts_from_the_seed_point(local_ray, tmp_path):
    run_search(SPACES / "nsga2.yaml", run_dir=tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    assert len(df) == 8 and (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    first = df.sort_values("number").iloc[0]
    assert (first["param.s0.depth"], first["param.s0.width"], first["param.s0.mixer"]) == (2, 24, "posmlp")
    study = optuna.load_study(study_name="run", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    generations = [t.system_attrs.get(optuna.samplers.NSGAIISampler._get_generation_key()) for t in study.trials]
    assert max(g for g in generations if g is not None) >= 1  # a second generation was bred from the first
