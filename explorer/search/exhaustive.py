"""``sampler: grid``: Optuna's ``BruteForceSampler``, which walks the define-by-run tree (a mixer's options are asked
only when it is chosen), so every parameter set of a conditional space is proposed once; the product grid of
``GridSampler`` left sets unvisited (8-11 of 12 over 5 seeds)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import optuna
from optuna.samplers import BruteForceSampler
from optuna.trial import FrozenTrial, TrialState


class ExhaustiveSampler(BruteForceSampler):
    """``BruteForceSampler`` without its ``Study.stop()`` once the tree is exhausted: trials are told outside
    ``optimize()`` (Ray Tune's searcher), where ``stop()`` raises, and the search already runs exactly as many trials
    as the space has parameter sets (``explorer.space.enumeration``). Branches of running trials are skipped (the
    default ``avoid_premature_stop=False``), so concurrent trials do not repeat each other."""

    def __init__(self, seed: int | None = None) -> None:
        with warnings.catch_warnings():  # experimental since Optuna 3.1; its interface is pinned by constraints.txt
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(seed=seed)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        return None
