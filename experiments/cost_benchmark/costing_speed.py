"""Costing speed: fvcore's trace against the trace-free count (``explorer.cost.shape_flops``), in one run.

    .venv/bin/python experiments/cost_benchmark/costing_speed.py --repeats 3

Three jobs, each timed both ways on the same inputs after imports (median of ``--repeats`` runs); ``inspect`` and
``costaware`` also a third way, ``whole``: the trace-free count of the whole model, built in one piece (how
``fast_costs`` worked before it went stage by stage with a memo of stages). The stage memo starts empty for every
timed run, as in a fresh process:

- ``inspect``: params and GFLOPs of ``--samples`` random architectures of the unified space (what ``explorer
  inspect`` costs), drawn once; fvcore = build + ``count_flops``, fast = ``fast_costs``.
- ``cost``: the whole ``explorer cost video_focalnet_t --no-latency`` report; fvcore = build + ``flop_breakdown``
  + ``params_by_part``, fast = ``cost_report(latency=False, elementwise=False)``.
- ``costaware``: driver seconds of ``--trials`` proposals of the costaware sampler on the unified space
  (``framework_overhead/propose_time.py``'s loop), candidates described by fvcore or by ``predicted_costs``.

Every count is checked equal between the two ways before any time is reported. One torch thread throughout.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
UNIFIED = ROOT / "search_spaces" / "unified.yaml"


def _archs(space, n: int, seed: int) -> list:
    import optuna

    from explorer.space import sample_arch

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        try:
            out.append(sample_arch(space, trial))
        except Exception:  # rejected by the spec: inspect counts these as invalid, they cost nothing
            pass
        study.tell(trial, 0.0)
    return out


def fvcore_costs(arch) -> tuple[int, int]:
    from explorer.cost import count_flops, count_params, example_input
    from explorer.models import build

    model = build(arch)
    return count_flops(model, example_input(arch)), count_params(model)


def whole_costs(arch) -> tuple[int, int]:
    from explorer.cost import count_flops_fast, count_params
    from explorer.cost.shape_flops import counting_input
    from explorer.models import build

    model = build(arch)
    return count_flops_fast(model, counting_input(arch, "cpu")), count_params(model)


def whole_describe(space, params: dict[str, Any]):
    """``predicted_costs`` with the whole-model count in place of ``fast_costs``."""
    import explorer.cost
    from explorer.search import predicted_costs

    staged, explorer.cost.fast_costs = explorer.cost.fast_costs, whole_costs
    try:
        return predicted_costs(space, params)
    finally:
        explorer.cost.fast_costs = staged


def fresh(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with the stage memo emptied first, as in a new process."""
    from explorer.cost import shape_flops

    def run():
        shape_flops._STAGE_MEMO.clear()
        return fn()

    return run


def fvcore_describe(space, params: dict[str, Any]):
    """``predicted_costs`` as it was before the trace-free count: build, then fvcore."""
    from explorer.search.trial import Infeasible, check_constraints
    from explorer.space import arch_from_params

    try:
        arch = arch_from_params(space, params)
    except Exception:
        return None
    flops, n_params = fvcore_costs(arch)
    metrics = {"params_m": n_params / 1e6, "gflops": flops / 1e9}
    try:
        check_constraints(space, metrics, arch)
    except Infeasible:
        return None
    return arch.content_hash, metrics


def proposals(space, describe: Callable, trials: int, seed: int) -> float:
    import functools

    import optuna

    from explorer.costaware import CostAwareSampler
    from explorer.search import define_by_run

    sampler = CostAwareSampler(
        functools.partial(define_by_run, space),
        functools.partial(describe, space),
        [(o.metric, o.mode == "max") for o in space.objectives],
        seed=seed,
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    rng = np.random.default_rng(seed)
    waited = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        trial = study.ask()
        waited += time.perf_counter() - start
        define_by_run(space, trial)
        described = describe(space, trial.params)
        study.tell(trial, [float(rng.random()), described[1]["gflops"] if described else 1.0])
    return waited


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import optuna
    import torch

    from explorer.cost import cost_report, fast_costs, flop_breakdown, params_by_part
    from explorer.cost.timing import example_input
    from explorer.models import build, preset
    from explorer.search import predicted_costs
    from explorer.space import load_space

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    space = load_space(UNIFIED)
    archs = list({a.content_hash: a for a in _archs(space, args.samples, args.seed)}.values())
    focal = preset("video_focalnet_t")
    print(f"median of {args.repeats} runs, seconds after imports, one torch thread (each row when it is measured)")
    print(f"{'job':<58}{'fvcore':>9}{'fast':>9}{'ratio':>8}", flush=True)

    def row(name: str, slow_s: float, fast_s: float) -> None:
        print(f"{name:<58}{slow_s:>9.2f}{fast_s:>9.2f}{slow_s / fast_s:>7.1f}x", flush=True)

    slow_s, slow = timed(lambda: [fvcore_costs(a) for a in archs], args.repeats)
    whole_s, whole = timed(lambda: [whole_costs(a) for a in archs], args.repeats)
    fast_s, fast = timed(fresh(lambda: [fast_costs(a) for a in archs]), args.repeats)
    assert slow == fast == whole, "the counts differ"
    row(f"inspect: {len(archs)} distinct archs of {args.samples} samples", slow_s, fast_s)
    row("  the same, whole-model trace-free count -> stage memo", whole_s, fast_s)

    def fvcore_report():
        model = build(focal)
        return flop_breakdown(model, example_input(focal)), params_by_part(model)

    def fast_report():
        rep = cost_report(focal, latency=False, elementwise=False)
        return rep.flops, rep.params_by_part

    slow_s, slow = timed(fvcore_report, args.repeats)
    fast_s, fast = timed(fast_report, args.repeats)
    assert slow == fast, "the two reports differ"
    row("cost video_focalnet_t --no-latency", slow_s, fast_s)

    slow_s, _ = timed(lambda: proposals(space, fvcore_describe, args.trials, args.seed), args.repeats)
    whole_s, _ = timed(lambda: proposals(space, whole_describe, args.trials, args.seed), args.repeats)
    fast_s, _ = timed(fresh(lambda: proposals(space, predicted_costs, args.trials, args.seed)), args.repeats)
    row(
        f"costaware: {args.trials} proposals (per proposal: "
        f"{slow_s / args.trials:.3f} -> {fast_s / args.trials:.3f} s)",
        slow_s,
        fast_s,
    )
    row(
        f"  the same, whole-model count -> stage memo ({whole_s / args.trials:.3f} -> {fast_s / args.trials:.3f} s)",
        whole_s,
        fast_s,
    )


if __name__ == "__main__":
    main()
