"""Replay samplers on the tabular benchmark (no training) and report how fast each finds the Pareto front.

    nice -n 10 .venv/bin/python experiments/search_efficiency/replay.py --seeds 10 --budget 96

Every (sampler, seed) is one Optuna study driven by ask/tell: ``sample_arch(space, trial)`` suggests the same
parameters, with the same distributions, as a real search does; the architecture is looked up in ``table.csv`` by its
content hash and told (accuracy, gflops). TPE, NSGA-II and random come from ``explorer.search.make_sampler``,
exactly what the tool builds. The costaware sampler is ``explorer.costaware.CostAwareSampler`` with the tool's
defaults, costing candidates from the table instead of fvcore. Variants of both are built here. A proposal of an
architecture already tried counts as a trial: the tool replays it from its hash cache at ~no cost, but it still takes
a trial slot.

Hypervolume: both objectives normalised to [0, 1] over the whole table (accuracy max -> 1 - acc01 as a loss,
gflops min), reference point (1, 1), i.e. the table's worst accuracy and largest GFLOPs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular  # noqa: E402

REF = (1.0, 1.0)
TARGET = 0.95


def _tpe(**kwargs: Any) -> Callable[..., Any]:
    def make(seed: int, trials: int, table: "Table"):
        import optuna

        return optuna.samplers.TPESampler(seed=seed, **kwargs)

    return make


def _tool(name: str) -> Callable[..., Any]:
    def make(seed: int, trials: int, table: "Table"):
        from explorer.search import make_sampler

        return make_sampler(name, seed, trials)

    return make


def _costaware(**kwargs: Any) -> Callable[..., Any]:
    """The costaware sampler with the tool's defaults unless ``kwargs`` say otherwise; its cost objective (GFLOPs)
    comes from the table, as the tool counts it on the driver (``explorer.search.predicted_costs``)."""

    def make(seed: int, trials: int, table: "Table"):
        from explorer.costaware import CostAwareSampler
        from explorer.space import sample_arch

        return CostAwareSampler(
            lambda trial: sample_arch(table.space, trial),
            table.describe,
            [("accuracy", True), ("gflops", False)],
            seed=seed,
            **kwargs,
        )

    return make


# name -> sampler factory (seed, budget, table). "tpe", "nsga2", "random" are the tool's own; the rest are candidates.
SAMPLERS: dict[str, Callable[..., Any]] = {
    "tpe": _tool("tpe"),
    "nsga2": _tool("nsga2"),
    "random": _tool("random"),
    "tpe_group": _tpe(n_startup_trials=10, multivariate=True, group=True),
    "tpe_indep": _tpe(n_startup_trials=10, multivariate=False),
    "tpe_startup5": _tpe(n_startup_trials=5, multivariate=True),
    "tpe_startup20": _tpe(n_startup_trials=20, multivariate=True),
    "tpe_group_startup5": _tpe(n_startup_trials=5, multivariate=True, group=True),
    "tpe_group_startup20": _tpe(n_startup_trials=20, multivariate=True, group=True),
    # more EI candidates than the table has architectures (Optuna's default is 24)
    "tpe_ei96": _tpe(n_startup_trials=10, multivariate=True, n_ei_candidates=96),
    "tpe_startup5_ei96": _tpe(n_startup_trials=5, multivariate=True, n_ei_candidates=96),
    "tpe_group_startup5_ei96": _tpe(n_startup_trials=5, multivariate=True, group=True, n_ei_candidates=96),
    "costaware": _costaware(),
    # its acquisition: expected HVI instead of the HVI at mu + optimism x sigma (3 by default)
    "costaware_ehvi": _costaware(optimism=None),
    "costaware_opt2": _costaware(optimism=2.0),
    "costaware_startup4": _costaware(n_startup_trials=4),
    "costaware_startup8": _costaware(n_startup_trials=8),
    # the pool of the first version: 128 initial candidates, 16 more and 8 mutations per proposal (2x the driver work)
    "costaware_pool128": _costaware(n_initial_candidates=128, n_random_candidates=16, n_mutations=8),
}


class Table:
    """The tabular benchmark: objectives of every architecture by content hash, normalised for hypervolume."""

    def __init__(self, df, space):
        self.space = space
        self.df = df
        acc, flops = df["accuracy"].to_numpy(float), df["gflops"].to_numpy(float)
        self.acc_range = (float(acc.min()), float(acc.max()))
        self.flops_range = (float(flops.min()), float(flops.max()))
        self.by_hash = {h: (a, f) for h, a, f in zip(df["arch_hash"], acc, flops)}
        self.losses = tabular.normalise(acc, flops, self.acc_range, self.flops_range)
        self.true_hv = tabular.hypervolume_2d(self.losses, REF)
        self._hash_of: dict[tuple, str] = {}

    def lookup(self, trial) -> tuple[float, float]:
        """Suggest the space on ``trial`` (define-by-run) and return the table's (accuracy, gflops) for it."""
        from explorer.space import sample_arch

        arch = sample_arch(self.space, trial)
        return self.by_hash[arch.content_hash]

    def describe(self, params: dict[str, Any]) -> tuple[str, dict[str, float]] | None:
        """(content hash, {"gflops": ...}) of sampled parameters: the cost the tool counts before training."""
        from explorer.arch import ArchError
        from explorer.space import arch_from_params

        try:
            key = arch_from_params(self.space, params).content_hash
        except ArchError:
            return None
        return (key, {"gflops": self.by_hash[key][1]}) if key in self.by_hash else None

    def loss(self, acc: float, gflops: float) -> np.ndarray:
        return tabular.normalise([acc], [gflops], self.acc_range, self.flops_range)[0]


def replay(table: Table, make: Callable[..., Any], seed: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """One study of ``budget`` trials; returns its hypervolume curve and the number of distinct architectures
    (trainings: the tool replays a repeated proposal from its hash cache) after every trial."""
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make(seed, budget, table))
    losses, seen, distinct = [], set(), []
    for _ in range(budget):
        trial = study.ask()
        acc, gflops = table.lookup(trial)
        seen.add(tuple(sorted(trial.params.items())))
        study.tell(trial, [acc, gflops])
        losses.append(table.loss(acc, gflops))
        distinct.append(len(seen))
    return tabular.hypervolume_curve(np.array(losses), REF), np.array(distinct)


def censored_median(values: list[int | None], budget: int) -> float | None:
    """Median over seeds, where None means "not reached within the budget". None when a middle value is censored
    (the median is then only known to exceed the budget)."""
    ordered = sorted(v if v is not None else budget + 1 for v in values)
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    return None if max(middle) > budget else float(np.median(middle))


def bootstrap_ratio(
    hits: list[int | None], budget: int, base_hits: list[int | None], base_budget: int, draws: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """95 % bootstrap interval of median(hits) / median(base_hits), resampling the seeds of each with replacement.

    A seed that never reached the target counts as budget + 1 trials, so where many are censored the interval of
    a sampler's ratio is optimistic (its true median is larger)."""
    rng = np.random.default_rng(seed)
    mine = np.array([h if h is not None else budget + 1 for h in hits], float)
    base = np.array([h if h is not None else base_budget + 1 for h in base_hits], float)
    ratios = [np.median(rng.choice(mine, len(mine))) / np.median(rng.choice(base, len(base))) for _ in range(draws)]
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def summarise(name: str, curves: list[np.ndarray], distinct: list[np.ndarray], true_hv: float) -> dict[str, Any]:
    """Median (over seeds) trials — and distinct architectures, i.e. trainings — to reach TARGET x the true
    hypervolume, and the median normalised hypervolume at a few budgets."""
    hits = [tabular.trials_to_reach(c, TARGET * true_hv) for c in curves]
    trainings = [int(d[h - 1]) if h is not None else None for h, d in zip(hits, distinct)]
    budget = len(curves[0])
    hv = np.array(curves) / true_hv
    return {
        "sampler": name,
        "median_trials_to_95": censored_median(hits, budget),
        "median_trainings_to_95": censored_median(trainings, budget),
        "reached": sum(h is not None for h in hits),
        "seeds": len(curves),
        "budget": budget,
        "hv_at": {k: float(np.median(hv[:, k - 1])) for k in (10, 20, 30, 40, 48, 60, 96) if k <= budget},
        "repeats": 1.0 - float(np.mean([d[-1] for d in distinct])) / budget,
        "hits": hits,
    }


def main() -> None:
    global TARGET
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=None, help="default: half the table")
    parser.add_argument(
        "--random-budget",
        type=int,
        default=None,
        help="trials for random search (default: 3 x budget, so its median is measured, not capped)",
    )
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--target", type=float, default=TARGET, help="fraction of the true HV to reach (0.95)")
    parser.add_argument("--table", type=Path, default=tabular.TABLE_FILE)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results.csv")
    args = parser.parse_args()
    TARGET = args.target  # noqa: F841 (module global, read by summarise)

    import optuna
    import pandas as pd

    from explorer.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = Table(pd.read_csv(args.table), load_space(tabular.SPACE_FILE))
    budget = args.budget or len(table.df) // 2
    random_budget = args.random_budget or 3 * budget
    front = tabular.hypervolume_curve(table.losses)  # sanity: every arch in gives the true hypervolume
    assert abs(front[-1] - table.true_hv) < 1e-12
    print(
        f"table: {len(table.df)} architectures, accuracy {table.acc_range[0]:.3f}-{table.acc_range[1]:.3f}, "
        f"GFLOPs {table.flops_range[0]:.4f}-{table.flops_range[1]:.4f}; true HV {table.true_hv:.4f} "
        f"(ref {REF}); optuna {table.true_hv - tabular.hypervolume_optuna(table.losses, REF):+.1e} off"
    )
    rows = []
    for name in args.samplers:
        n = random_budget if name == "random" else budget
        start = time.perf_counter()
        runs = [replay(table, SAMPLERS[name], seed, n) for seed in range(args.seeds)]
        row = summarise(name, [c for c, _ in runs], [r for _, r in runs], table.true_hv)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"{name:20s} median trials to {TARGET:.0%} HV: {row['median_trials_to_95']} "
            f"(trainings {row['median_trainings_to_95']}) "
            f"(reached {row['reached']}/{row['seeds']}, budget {n}); median HV/true at "
            + ", ".join(f"{k}: {v:.3f}" for k, v in row["hv_at"].items())
            + f"; repeats {row['repeats']:.0%}; {row['seconds']:.0f}s",
            flush=True,
        )
    by_name = {r["sampler"]: r for r in rows}
    print(f"\nratio = median trials (trainings) to {TARGET:.0%} HV / random's; target <= 1/3 (trials)")
    for row in rows:
        for key, ratio in (("median_trials_to_95", "ratio_vs_random"), ("median_trainings_to_95", "trainings_ratio")):
            mine, rand = row[key], by_name.get("random", {}).get(key)
            row[ratio] = mine / rand if mine is not None and rand else None
        for base in ("random", "tpe"):  # how sure: 95 % bootstrap interval of the ratio over the seeds
            if base in by_name and base != row["sampler"]:
                row[f"ratio_vs_{base}_ci"] = "%.3f-%.3f" % bootstrap_ratio(
                    row["hits"], row["budget"], by_name[base]["hits"], by_name[base]["budget"]
                )
        ok = row["ratio_vs_random"] is not None and row["ratio_vs_random"] <= 1 / 3
        show = ["-" if row[k] is None else f"{row[k]:.3f}" for k in ("ratio_vs_random", "trainings_ratio")]
        print(
            f"  {row['sampler']:20s} {show[0]} ({show[1]}); 95% CI vs random {row.get('ratio_vs_random_ci')}, "
            f"vs tpe {row.get('ratio_vs_tpe_ci')}{'  meets the target' if ok else ''}"
        )
    out = pd.DataFrame(
        [
            {
                **{k: v for k, v in r.items() if k not in ("hv_at", "hits")},
                **{f"hv_at_{k}": v for k, v in r["hv_at"].items()},
                "hits": " ".join(str(h) for h in r["hits"]),
            }
            for r in rows
        ]
    )
    out.to_csv(args.out, index=False, float_format="%.4g")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
