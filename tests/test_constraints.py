"""Constraints that need no measurement are checked before anything is timed: an infeasible sample costs a build and
an fvcore trace, never a latency run."""

import pytest

from explorer.models import build
from explorer.search.trial import Infeasible, trial_cost
from explorer.space import parse_space, sample_arch

SPACE = {
    "name": "c",
    "task": {"name": "trev", "preset": "smoke"},
    "objectives": [{"metric": "accuracy", "mode": "max"}, {"metric": "latency_cpu_ms", "mode": "min"}],
    "stages": [{"depth": 1, "width": 16, "mixer": {"conv3d": {"kernel_t": 3}}}],
}


def _arch_and_model(space):
    import optuna

    arch = sample_arch(space, optuna.trial.FixedTrial({}))
    return arch, build(arch)


def test_an_infeasible_by_gflops_sample_is_never_timed(monkeypatch):
    import explorer.cost

    timed = []
    real = explorer.cost.objective_metrics
    monkeypatch.setattr(explorer.cost, "objective_metrics", lambda *a, **k: timed.append(a) or real(*a, **k))
    space = parse_space({**SPACE, "constraints": {"max_gflops": 1e-6}})
    arch, model = _arch_and_model(space)
    with pytest.raises(Infeasible, match=r"gflops [\d.e-]+ exceeds max_gflops 1e-06"):
        trial_cost(space, arch, model, threads=1)
    assert timed == []
    feasible = parse_space({**SPACE, "constraints": {"max_gflops": 10.0}})  # the same sample, within the limit
    metrics, _ = trial_cost(feasible, arch, model, threads=1)
    assert len(timed) == 1 and metrics["latency_cpu_ms"] > 0 and metrics["gflops"] < 10
