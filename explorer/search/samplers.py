"""The Optuna sampler of a search: which one a space gets, how it is configured, and the define-by-run space."""

from __future__ import annotations

import functools
import logging
from typing import Any

from explorer.search.trial import Infeasible, check_constraints
from explorer.space import SearchSpace, arch_from_params, costaware_objection, sample_arch

_log = logging.getLogger(__name__)


def define_by_run(space: SearchSpace, trial) -> None:
    """OptunaSearch's space: suggest every choice. An invalid sample must not stop the driver; the trial
    rebuilds the Arch from the same params and fails with the reason, which the table records."""
    from explorer.arch import ArchError

    try:
        sample_arch(space, trial)
    except ArchError:
        pass


def nsga2_population(trials: int) -> int:
    """NSGA-II population sized from the budget: about five generations, never fewer than 4 or more than 50
    individuals (a population as large as the budget would be one random generation)."""
    return max(4, min(50, trials // 5))


def tpe_startup(trials: int) -> int:
    """Random start-up trials of TPE: a quarter of a small budget (TPE's default 10 would be the whole search)."""
    return min(10, max(2, trials // 4))


def costaware_unsupported(space: SearchSpace) -> str | None:
    """Why the costaware sampler cannot serve this space (None: it can). It models accuracy and needs every other
    objective before training."""
    objection = costaware_objection(space.metric_names)
    if objection is not None:
        return objection
    on_cuda = [o.metric for o in space.objectives if "latency" in o.metric and o.device == "cuda"]
    if on_cuda:
        import torch

        if not torch.cuda.is_available():
            return "the driver has no GPU to predict CUDA latency on"
    return None


def predicted_costs(space: SearchSpace, params: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
    """The costaware sampler's view of a candidate before any training: its content hash and every cost objective,
    or None when the parameters build no valid model or break a constraint. Latency comes from the predictor: as
    itself for ``predicted_latency_*_ms``, and as the stand-in of a measured ``latency_*_ms``, which the sampler
    calibrates against the trials' measurements (``CostAwareSampler._calibration``)."""
    from explorer.arch import ArchError
    from explorer.cost import fast_costs, predict_latency_ms
    from explorer.models import build

    try:
        arch = arch_from_params(space, params)
    except ArchError:
        return None
    flops, n_params = fast_costs(arch)  # fvcore's count, without its trace: candidates are costed by the dozen
    metrics: dict[str, float] = {"params_m": n_params / 1e6}
    if "gflops" in space.metric_names or space.constraints.max_gflops is not None:
        metrics["gflops"] = flops / 1e9
    model = None
    for objective in space.objectives:
        if "latency" in objective.metric and objective.device is not None:
            model = model or build(arch)
            metrics[objective.metric] = predict_latency_ms(
                arch, objective.device, model=model, threads=space.budget.cpus_per_trial
            )
    try:
        check_constraints(space, metrics, arch, model)
    except Infeasible:
        return None
    return arch.content_hash, metrics


def make_sampler(name: str, seed: int, trials: int, population: int | None = None, space: SearchSpace | None = None):
    """The Optuna sampler a space names, configured from its budget (shared with experiments/search_efficiency).
    ``costaware`` needs the space: it describes candidates with ``predicted_costs`` before proposing them."""
    import optuna

    if name == "costaware":
        from explorer.costaware import CostAwareSampler

        if space is None:
            raise ValueError("the costaware sampler needs the search space")
        return CostAwareSampler(
            functools.partial(define_by_run, space),
            functools.partial(predicted_costs, space),
            [(o.metric, o.mode == "max") for o in space.objectives],
            seed=seed,
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        from explorer.search.exhaustive import ExhaustiveSampler

        return ExhaustiveSampler(seed=seed)
    if name == "nsga2":
        from explorer.search.nsga2 import PicklableNSGAIISampler

        return PicklableNSGAIISampler(population_size=population or nsga2_population(trials), seed=seed)
    # multivariate: the stage choices interact (independent TPE reached 95 % of the true HV in 13/50 seeds, this 50/50);
    # group=True and 5 or 20 start-up trials were no better over 50 seeds (experiments/search_efficiency/README.md)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=tpe_startup(trials), multivariate=True)


def resolve_sampler(space: SearchSpace) -> tuple[str, str | None]:
    """The sampler a search runs and why it differs from the space's: costaware falls back to TPE where it cannot serve
    the space (the space validator already refuses a space that names costaware explicitly and cannot use it)."""
    if space.sampler.name == "costaware":
        reason = costaware_unsupported(space)
        if reason is not None:
            return "tpe", f"sampler costaware cannot serve this space ({reason}); using tpe"
    return space.sampler.name, None


def space_sampler(space: SearchSpace):
    name, note = resolve_sampler(space)
    if note:
        _log.info("note: %s", note)
    return make_sampler(
        name,
        space.sampler.seed,
        space.budget.trials,
        population=getattr(space.sampler, "population", None),
        space=space,
    )
