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
    # Optuna hears the truth: stopped trials are PRUNED (with the epoch they reached), not COMPLETE with an epoch-1
    # accuracy, and a COMPLETE trial's accuracy objective is its validation accuracy, never the test accuracy
    study = optuna.load_study(study_name="run", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    state = optuna.trial.TrialState
    pruned = [t for t in study.trials if t.state == state.PRUNED]
    assert sorted(t.user_attrs["epochs_reached"] for t in pruned) == sorted(stopped["epochs"])
    assert all(t.values is None for t in pruned)
    finished = {t.number: t.values[0] for t in study.trials if t.state == state.COMPLETE}
    assert len(finished) == len(complete)
    assert sorted(finished.values()) == pytest.approx(sorted(complete["val_accuracy"]))
    assert (df["accuracy"] == df["val_accuracy"]).all() and df["test_accuracy"].between(0, 1).all()
    assert (df["val_accuracy"] != df["test_accuracy"]).any()


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


@pytest.mark.slow
def test_costaware_search_screens_constraints_and_never_repeats(local_ray, tmp_path):
    run_search(SPACES / "costaware.yaml", run_dir=tmp_path / "run", progress=False)
    df = pd.read_parquet(tmp_path / "run" / "trials.parquet")
    # 6 of the 12 feasible architectures, each once; the 6 over max_gflops were screened out before any trial
    assert len(df) == 6 and (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    assert df["arch_hash"].nunique() == 6 and (df["gflops"] <= 0.005).all()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["sampler"]["name"] == meta["sampler_used"] == "costaware"


def test_predicted_costs_are_what_the_trial_measures():
    from explorer.cost import count_flops, count_params, example_input
    from explorer.models import build
    from explorer.search import predicted_costs
    from explorer.space import arch_from_params, load_space

    space = load_space(SPACES / "costaware.yaml")
    params = {"s0.mixer": "posmlp", "s0.depth": 2, "s0.width": 16}
    key, costs = predicted_costs(space, params)
    arch = arch_from_params(space, params)
    model = build(arch)
    assert key == arch.content_hash
    assert costs["gflops"] == count_flops(model, example_input(arch)) / 1e9 == pytest.approx(0.004038848)
    assert costs["params_m"] == count_params(model) / 1e6
    # over max_gflops 0.005: not a candidate at all
    assert predicted_costs(space, {"s0.mixer": "posmlp", "s0.depth": 1, "s0.width": 32}) is None


def test_a_measured_latency_objective_is_described_by_the_latency_predictor():
    """costaware describes a candidate's measured CPU latency by the predictor's figure for the CPU (its stand-in,
    calibrated later against the trials), under the objective's own name."""
    from explorer.cost import predict_latency_ms
    from explorer.search import predicted_costs
    from explorer.space import arch_from_params, parse_space

    space = parse_space(
        {
            "name": "lat",
            "task": {"name": "trev", "preset": "smoke"},
            "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "latency_cpu_ms", "mode": "min"}],
            "stages": [{"depth": 1, "width": {"choice": [8, 16]}, "mixer": "conv3d"}],
        }
    )
    params = {"s0.width": 16}
    _, costs = predicted_costs(space, params)
    predicted = predict_latency_ms(arch_from_params(space, params), "cpu", threads=1)
    assert set(costs) == {"params_m", "latency_cpu_ms"} and costs["latency_cpu_ms"] == predicted > 0


def test_default_costaware_falls_back_to_tpe_where_it_cannot_predict_an_objective():
    from explorer.search import make_sampler, resolve_sampler
    from explorer.space import parse_space

    stages = [{"depth": 1, "width": 8, "mixer": "conv3d"}]
    plain = parse_space({"name": "p", "task": {"name": "trev", "preset": "smoke"}, "stages": stages})
    assert resolve_sampler(plain) == ("costaware", None)
    assert type(make_sampler("costaware", 0, 8, space=plain)).__name__ == "CostAwareSampler"
    fast = parse_space(
        {
            "name": "f",
            "task": {"name": "trev", "preset": "smoke"},
            "stages": stages,
            "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "throughput", "mode": "max"}],
        }
    )
    name, note = resolve_sampler(fast)
    assert name == "tpe" and "throughput_cpu cannot be worked out before training" in note


def test_grid_visits_every_parameter_set_of_a_conditional_space_once():
    """sampler: grid walks the define-by-run tree (a conv3d stage has kernel_t, a posmlp one does not): with two
    trials in flight at a time, as a search with concurrency 2 asks them, it proposes each of the 12 parameter sets
    exactly once (Optuna's product GridSampler visited 8-11 of them over 5 seeds)."""
    import optuna

    from explorer.search.samplers import define_by_run, make_sampler
    from explorer.space import parse_space
    from explorer.space.enumeration import count_architectures, enumerate_params

    space = parse_space(
        {
            "name": "cond",
            "task": {"name": "trev", "preset": "smoke"},
            "sampler": {"name": "grid"},
            "stages": [
                {
                    "depth": 1,
                    "width": {"choice": [8, 16]},
                    "mixer": {"choice": {"conv3d": {"kernel_t": {"choice": [1, 3]}}, "posmlp": {"groups": 4}}},
                },
                {"depth": {"choice": [1, 2]}, "width": 16, "mixer": "conv3d"},
            ],
        }
    )
    every = enumerate_params(space)
    assert len(every) == 12 and count_architectures(space) == (12, 0, 12)
    for seed in range(3):
        study = optuna.create_study(sampler=make_sampler("grid", seed, 12))
        seen = []
        for _ in range(6):
            pair = [study.ask() for _ in range(2)]
            for trial in pair:
                define_by_run(space, trial)
                seen.append(dict(trial.params))
            for trial in pair:
                study.tell(trial, 0.5)
        assert sorted(map(repr, seen)) == sorted(map(repr, every)), seed


@pytest.mark.parametrize("name", ["nsga2", "tpe", "random", "grid", "costaware"])
def test_every_sampler_survives_the_pickling_tune_does(tmp_path, name):
    # Tune pickles the searcher (study and sampler inside) when a search starts and at every state save that
    # --resume reads back; Optuna 5.1's NSGA-II holds a thread lock that plain pickle refuses
    from ray import cloudpickle

    from explorer.search.driver import _searcher
    from explorer.space import load_space

    space = load_space(SPACES / "costaware.yaml")
    space = space.model_copy(update={"sampler": space.sampler.model_copy(update={"name": name})})
    searcher = cloudpickle.loads(cloudpickle.dumps(_searcher(space, tmp_path)))
    sampler = searcher.searcher._ot_study.sampler
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_int("a", 0, 4), t.suggest_int("n", 1, 3)), n_trials=3)  # the copy works
    if name == "nsga2":
        assert optuna.samplers.NSGAIISampler._get_generation_key() in study.trials[0].system_attrs
