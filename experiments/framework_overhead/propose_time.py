"""Driver time of the default (costaware) sampler's proposals on a space, without training anything.

    .venv/bin/python experiments/framework_overhead/propose_time.py --space search_spaces/unified.yaml --trials 32

Each trial is asked, its candidate costed the way the driver does (``predicted_costs``), and told a random accuracy
with its GFLOPs. The time of ``study.ask()`` is what a free trial slot waits while the sampler fits its GP and costs
new candidates.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="search_spaces/unified.yaml")
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import optuna

    from explorer.search import define_by_run, make_sampler, predicted_costs
    from explorer.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(args.space)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=make_sampler("costaware", args.seed, args.trials, space=space)
    )
    rng = np.random.default_rng(args.seed)
    waits = []
    for _ in range(args.trials):
        start = time.perf_counter()
        trial = study.ask()
        waits.append(time.perf_counter() - start)
        define_by_run(space, trial)
        described = predicted_costs(space, trial.params)
        study.tell(trial, [float(rng.random()), described[1]["gflops"] if described else 1.0])
    print("seconds per proposal:", " ".join(f"{w:.1f}" for w in waits))
    print(f"total {sum(waits):.1f} s over {args.trials} proposals; median {np.median(waits):.2f} s")


if __name__ == "__main__":
    main()
