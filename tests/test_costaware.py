"""The costaware sampler's pieces: closed-form EHVI against exact and Monte-Carlo hypervolume improvements, the GP, and
the sampler's contract with Optuna (no repeats, no infeasible proposals, fixed trials respected, pickling)."""

from __future__ import annotations

import pickle
from statistics import NormalDist

import numpy as np
import optuna
import pytest

from explorer.analysis import hypervolume
from explorer.costaware import CostAwareSampler, GaussianProcess, expected_hv_improvement


def _hv(points: np.ndarray, ref: np.ndarray) -> float:
    return hypervolume(points, [False] * points.shape[1], ref) if len(points) else 0.0


def _exact_improvement(point: np.ndarray, front: np.ndarray, ref: np.ndarray) -> float:
    return _hv(np.vstack([front, point]), ref) - _hv(front, ref)


@pytest.mark.parametrize("n_costs", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_deterministic_ehvi_is_the_exact_hypervolume_improvement(n_costs, seed):
    rng = np.random.default_rng(seed)
    ref = np.full(1 + n_costs, 1.1)
    front = rng.random((6, 1 + n_costs))  # need not be a Pareto set: dominated points add nothing either way
    candidates = rng.random((20, 1 + n_costs)) * 1.15  # some beyond the reference point
    got = expected_hv_improvement(candidates[:, 0], np.zeros(20), candidates[:, 1:], front, ref)
    want = [_exact_improvement(c, front, ref) for c in candidates]
    assert got == pytest.approx(want, abs=1e-12)
    assert max(want) > 0  # the draw has improving candidates: the test can tell a zero EHVI from a right one


@pytest.mark.parametrize("n_costs", [1, 2])
def test_ehvi_is_the_mean_improvement_over_the_uncertain_loss(n_costs):
    rng = np.random.default_rng(7)
    ref = np.full(1 + n_costs, 1.1)
    front = rng.random((5, 1 + n_costs))
    costs, mu, sigma = rng.random(n_costs) * 0.6, 0.5, 0.3
    closed = expected_hv_improvement(np.array([mu]), np.array([sigma]), costs[None], front, ref)[0]
    # the mean over 1,000 equal-probability quantiles of N(mu, sigma²) (midpoint rule: deterministic, ~0.1 % off)
    draws = np.array([NormalDist(mu, sigma).inv_cdf((k + 0.5) / 1000) for k in range(1000)])
    mean = expected_hv_improvement(draws, np.zeros_like(draws), np.repeat(costs[None], len(draws), 0), front, ref)
    assert closed == pytest.approx(mean.mean(), rel=0.005)
    assert closed > expected_hv_improvement(np.array([mu]), np.zeros(1), costs[None], front, ref)[0]  # convex gain


def test_ehvi_prefers_the_cheaper_of_two_equally_uncertain_candidates():
    front = np.array([[0.5, 0.5]])
    ehvi = expected_hv_improvement(
        np.array([0.5, 0.5]), np.array([0.2, 0.2]), np.array([[0.2], [0.8]]), front, np.array([1.1, 1.1])
    )
    assert ehvi[0] > ehvi[1] > 0


def test_gp_interpolates_a_smooth_function_and_is_unsure_far_away():
    rng = np.random.default_rng(0)
    x = rng.random((30, 2))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2
    gp = GaussianProcess(x, y)
    test = rng.random((50, 2))
    mean, std = gp.predict(test)
    assert np.abs(mean - (np.sin(3 * test[:, 0]) + test[:, 1] ** 2)).mean() < 0.1
    _, far = gp.predict(np.array([[4.0, 4.0]]))
    assert far[0] > 5 * np.median(std)


# ---------------------------------------------------------------------------------------------------- the sampler

WIDTHS, DEPTHS, MIXERS = (8, 16, 32, 64), (1, 2, 3), ("conv", "mlp", "attn", "focal")


def toy_space(trial) -> None:
    """Conditional toy space: a mixer (conv with its own kernel option), a width and a depth: (2 + 3) x 4 x 3 = 60
    architectures."""
    mixer = trial.suggest_categorical("mixer", list(MIXERS))
    if mixer == "conv":
        trial.suggest_categorical("kernel", [1, 3])
    trial.suggest_categorical("width", list(WIDTHS))
    trial.suggest_categorical("depth", list(DEPTHS))


def toy_key(params: dict) -> str:
    return "|".join(f"{k}={params[k]}" for k in sorted(params))


def toy_cost(params: dict) -> float:
    return params["width"] * params["depth"] / 64


def toy_accuracy(params: dict) -> float:
    """One mixer is far better than the others (as MorphMLP is on T-rev); width helps, depth a little."""
    bonus = {"mlp": 0.4, "conv": 0.05 * params.get("kernel", 1), "attn": 0.1, "focal": 0.0}[params["mixer"]]
    return bonus + 0.3 * np.log2(params["width"]) / 6 + 0.03 * params["depth"]


def toy_describe(params: dict, max_cost: float = 10.0):
    if not {"mixer", "width", "depth"} <= set(params) or toy_cost(params) > max_cost:
        return None
    return toy_key(params), {"gflops": toy_cost(params)}


def _sampler(seed: int = 0, **kwargs) -> CostAwareSampler:
    return CostAwareSampler(
        toy_space, kwargs.pop("describe", toy_describe), [("accuracy", True), ("gflops", False)], seed=seed, **kwargs
    )


def _run(sampler, n: int, study=None):
    study = study or optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        toy_space(trial)
        study.tell(trial, [toy_accuracy(trial.params), toy_cost(trial.params)])
    return study


def test_sampler_never_repeats_an_architecture_until_the_space_is_exhausted():
    study = _run(_sampler(), 60)
    keys = [toy_key(t.params) for t in study.trials]
    assert len(set(keys)) == 60  # every one of the 60 architectures exactly once
    _run(study.sampler, 2, study)  # then it falls back to random suggestions instead of failing
    assert len(study.trials) == 62


def test_sampler_never_proposes_what_describe_rejects():
    # a constraint, width x depth <= 64, leaves 9 of the 12 width-depth pairs: 45 of the 60 architectures (random
    # search would waste a quarter of its trials on the others)
    describe = lambda params: toy_describe(params, max_cost=1.0)  # noqa: E731
    study = _run(_sampler(describe=describe), 45)
    assert 5 * sum(w * d <= 64 for w in WIDTHS for d in DEPTHS) == 45
    assert all(toy_cost(t.params) <= 1.0 for t in study.trials)
    assert len({toy_key(t.params) for t in study.trials}) == 45


def _toy_hv(params: list[dict]) -> float:
    pts = np.array([[-toy_accuracy(p), toy_cost(p)] for p in params])
    return _hv(pts / [1.0, 3.0], np.array([0.0, 1.1]))  # accuracy loss up to 0, cost up to 3.3


def _all_toy_params():
    for mixer in MIXERS:
        for kernel in (1, 3) if mixer == "conv" else (None,):
            for width in WIDTHS:
                for depth in DEPTHS:
                    yield {"mixer": mixer, "width": width, "depth": depth, **({"kernel": kernel} if kernel else {})}


def _trials_to(study, target: float) -> int:
    params = [t.params for t in study.trials]
    return next((n for n in range(1, len(params) + 1) if _toy_hv(params[:n]) >= target), len(params) + 1)


def test_sampler_falls_back_to_random_suggestions_when_nothing_is_feasible():
    # every candidate breaks a constraint: trials still come (and fail as INFEASIBLE in a real search), and after one
    # fruitless search the sampler stops searching hard on every proposal
    calls = []

    def reject(params):
        calls.append(1)
        return None

    study = _run(_sampler(describe=reject), 6)
    assert len(study.trials) == 6 and study.sampler._drawn_out
    assert len(calls) <= 60  # described once per distinct parameter set of the 60-architecture space


def test_sampler_finds_the_toy_front_faster_than_random():
    target = 0.95 * _toy_hv(list(_all_toy_params()))
    ours = [_trials_to(_run(_sampler(seed), 30), target) for seed in range(5)]
    rand = [_trials_to(_run(optuna.samplers.RandomSampler(seed=seed), 60), target) for seed in range(5)]
    assert np.median(ours) <= 0.5 * np.median(rand), (ours, rand)


def test_enqueued_trials_keep_their_parameters():
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler())
    study.enqueue_trial({"mixer": "conv", "kernel": 3, "width": 64, "depth": 3})
    _run(study.sampler, 1, study)
    assert study.trials[0].params == {"mixer": "conv", "kernel": 3, "width": 64, "depth": 3}


def test_sampler_survives_pickling_mid_study():
    # Ray Tune pickles the searcher (and so the sampler) into its experiment state; --resume unpickles it
    study = _run(_sampler(), 6)
    again = pickle.loads(pickle.dumps(study.sampler))
    study.sampler = again
    _run(again, 4, study)
    assert len({toy_key(t.params) for t in study.trials}) == 10


def test_a_sampler_pickled_before_the_package_split_still_loads():
    """Run folders from before costaware became a package hold ``explorer.costaware.CostAwareSampler`` and
    ``explorer.costaware.Candidate`` in Tune's saved searcher; --resume must still unpickle them."""
    study = _run(_sampler(), 6)
    data = pickle.dumps(study.sampler, protocol=0)  # protocol 0 names classes as plain 'c<module>\n<name>' lines
    for name in (b"CostAwareSampler", b"Candidate"):
        assert b"cexplorer.costaware.sampler\n" + name in data
        data = data.replace(b"cexplorer.costaware.sampler\n" + name, b"cexplorer.costaware\n" + name)
    assert b"explorer.costaware.sampler" not in data
    again = pickle.loads(data)
    assert type(again) is CostAwareSampler and again._pool
    study.sampler = again
    _run(again, 2, study)
    assert len({toy_key(t.params) for t in study.trials}) == 8


def test_objectives_need_exactly_one_learned_metric():
    with pytest.raises(ValueError, match="exactly one of"):
        CostAwareSampler(toy_space, toy_describe, [("gflops", False), ("params_m", False)])


def _latency_study(measured: dict[int, float], accuracy: dict[int, float]):
    """A study over x in 0..3 whose describe gives the predictor's latency 10 * (x + 1) and whose finished trials
    report the latencies ``measured`` (what the trials table and the report hold)."""
    describe = lambda params: (f"x{params['x']}", {"latency_cpu_ms": 10.0 * (params["x"] + 1)})  # noqa: E731
    sampler = CostAwareSampler(
        lambda trial: trial.suggest_categorical("x", [0, 1, 2, 3]),
        describe,
        [("accuracy", True), ("latency_cpu_ms", False)],
        seed=0,
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    dist = {"x": optuna.distributions.CategoricalDistribution([0, 1, 2, 3])}
    for x, ms in measured.items():
        study.add_trial(optuna.trial.create_trial(params={"x": x}, distributions=dist, values=[accuracy[x], ms]))
    return sampler, study


def test_the_sampler_sees_finished_trials_at_their_measured_cost():
    """The predictor ranks x=0 cheaper than x=1 (10 vs 20 ms), the trials measured the opposite (30 vs 15 ms). On
    the measured figures, the ones the report draws, both are on the front; on the predicted ones x=1 would be
    dominated. The sampler's front (what it mutates and scores against) is the report's."""
    sampler, study = _latency_study({0: 30.0, 1: 15.0}, {0: 0.8, 1: 0.7})
    _, observed, _ = sampler.observe(study)
    assert sorted(c.key for c in sampler._front(observed)) == ["x0", "x1"]
    assert [o.costs.tolist() for o in observed] == [[30.0], [15.0]]
    assert [o.candidate.costs.tolist() for o in observed] == [[10.0], [20.0]]  # the stand-ins stay GP inputs


def test_unmeasured_candidates_are_calibrated_by_the_median_ratio():
    """Measured / predicted is 2, 2.5 and 3 over three trials: the candidates' predicted latencies are scaled by
    the median, 2.5, to sit on the measured axis; a figure described exactly (GFLOPs) keeps a scale of 1."""
    sampler, study = _latency_study({0: 20.0, 1: 50.0, 2: 90.0}, {0: 0.5, 1: 0.6, 2: 0.7})
    _, observed, _ = sampler.observe(study)
    assert sampler._calibration(observed).tolist() == [2.5]
    assert sampler.propose(study) == {"x": 3}  # and a proposal over the calibrated pool runs through
    exact, study = _latency_study({0: 10.0, 1: 20.0}, {0: 0.5, 1: 0.6})
    assert exact._calibration(exact.observe(study)[1]).tolist() == [1.0]
