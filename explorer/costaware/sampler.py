"""``CostAwareSampler``: the Optuna sampler itself (candidates, the proposal, Optuna's sampler interface); the
design is in the package docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import optuna

from explorer.costaware.encoding import Encoder, params_key
from explorer.costaware.gaussian_process import GaussianProcess
from explorer.costaware.hypervolume_improvement import expected_hv_improvement
from explorer.pareto import HV_REFERENCE, pareto_mask

# objectives the sampler models; every other objective must be given by `describe` before training
LEARNED_METRICS = ("accuracy",)


@dataclass(frozen=True)
class Candidate:
    """One architecture the sampler may propose: its parameters, content key and cost objectives (as losses)."""

    key: str
    params: dict[str, Any]
    costs: np.ndarray


@dataclass(frozen=True)
class Observed:
    """A finished trial as the sampler sees it: its candidate, its accuracy as a loss, and its cost objectives as
    the trial measured them (as losses; the candidate's described costs where the trial has none)."""

    candidate: Candidate
    loss: float
    costs: np.ndarray


class _MutationSampler(optuna.samplers.BaseSampler):
    """Optuna sampler that repeats a parent's parameters except one, drawn at random (new conditional ones too)."""

    def __init__(self, seed: Optional[int]):
        self.random = optuna.samplers.RandomSampler(seed=seed)
        self.parent: dict[str, Any] = {}
        self.mutate = ""

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, dist):
        if name != self.mutate and name in self.parent and _contains(dist, self.parent[name]):
            return self.parent[name]
        return self.random.sample_independent(study, trial, name, dist)

    def before_trial(self, study, trial):
        pass

    def after_trial(self, study, trial, state, values):
        pass

    def reseed_rng(self):
        self.random.reseed_rng()


def _contains(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError, IndexError):
        return False


Describe = Callable[[dict[str, Any]], Optional[tuple[str, dict[str, float]]]]


class CostAwareSampler(optuna.samplers.BaseSampler):
    """Optuna sampler: a GP on accuracy and the hypervolume improvement of its optimistic bound, with the costs
    known before training (module docstring).

    ``space_fn(trial)`` suggests a whole architecture on an Optuna trial (the search's define-by-run function).
    ``describe(params)`` returns (content key, {metric: value}) for every cost objective, or None when the
    parameters make no valid or feasible architecture. ``objectives`` is [(metric, maximise)] in the study's order;
    exactly one of them must be learned (accuracy).
    """

    def __init__(
        self,
        space_fn: Callable[[Any], Any],
        describe: Describe,
        objectives: Sequence[tuple[str, bool]],
        seed: Optional[int] = None,
        n_startup_trials: int = 2,
        n_initial_candidates: int = 64,
        n_random_candidates: int = 8,
        n_mutations: int = 4,
        optimism: Optional[float] = 3.0,
    ):
        learned = [i for i, (m, _) in enumerate(objectives) if m in LEARNED_METRICS]
        if len(learned) != 1 or len(objectives) < 2:
            raise ValueError(
                f"the costaware sampler needs exactly one of {LEARNED_METRICS} among the objectives plus "
                f"at least one cost; got {[m for m, _ in objectives]}"
            )
        self.space_fn, self.describe = space_fn, describe
        self.objectives = [(m, bool(mx)) for m, mx in objectives]
        self.learned = learned[0]
        self.cost_metrics = [(m, mx) for i, (m, mx) in enumerate(self.objectives) if i != self.learned]
        self.seed = seed
        self.n_startup_trials, self.n_initial_candidates = n_startup_trials, n_initial_candidates
        self.n_random_candidates, self.n_mutations = n_random_candidates, n_mutations
        self.optimism = optimism
        self._rng = np.random.RandomState(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._described: dict[tuple, Optional[Candidate]] = {}
        self._pool: dict[str, Candidate] = {}  # key -> candidate (valid and feasible only)
        self._distributions: dict[str, Any] = {}
        self._proposals: dict[int, dict[str, Any]] = {}
        self._draws = 0
        self._saturated = False  # the last random batch found no new architecture: draw fewer
        self._drawn_out = False  # the last search for an unseen feasible candidate found none
        self._gp_raw: Optional[np.ndarray] = None
        self._studies: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the searcher: private studies are rebuilt on demand
        state = dict(self.__dict__)
        state["_studies"] = {}
        return state

    # -- Optuna's sampler interface ---------------------------------------------------------------------------

    def infer_relative_search_space(self, study, trial):
        return {}

    def sample_relative(self, study, trial, search_space):
        return {}

    def sample_independent(self, study, trial, name, dist):
        proposal = self._proposals.get(trial._trial_id)
        if proposal is not None and name in proposal and _contains(dist, proposal[name]):
            return proposal[name]
        return self._random.sample_independent(study, trial, name, dist)

    def before_trial(self, study, trial) -> None:
        if "fixed_params" in trial.system_attrs:  # enqueued (points_to_evaluate): Optuna sets every value
            return
        proposal = self.propose(study)
        if proposal is not None:
            self._proposals[trial._trial_id] = proposal

    def after_trial(self, study, trial, state, values) -> None:
        self._proposals.pop(trial._trial_id, None)

    def reseed_rng(self) -> None:
        self._rng = np.random.RandomState()
        self._random.reseed_rng()

    # -- candidates ----------------------------------------------------------------------------------------------

    def _study(self, name: str, sampler) -> Any:
        if name not in self._studies:
            self._studies[name] = optuna.create_study(sampler=sampler)
        return self._studies[name]

    def _draw(self, study) -> Optional[Candidate]:
        """Run the space on a fresh private trial and describe the architecture it gives (cached)."""
        trial = study.ask()
        try:
            self.space_fn(trial)
        except (ValueError, optuna.TrialPruned):  # an invalid draw (InvalidCombination, a bad spec) is no candidate;
            pass  # anything else is a programming error and surfaces
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)  # PRUNED: no warning logged
        self._distributions.update(trial.distributions)
        return self._candidate(trial.params)

    def _candidate(self, params: dict[str, Any]) -> Optional[Candidate]:
        key = params_key(params)
        if key not in self._described:
            try:
                described = self.describe(params) if params else None
            except Exception as err:  # noqa: BLE001 - the trial would fail the same way: drop it, keep searching
                optuna.logging.get_logger(__name__).warning(f"costaware: a candidate could not be costed ({err!r})")
                described = None
            cand = None
            if described is not None:
                arch_key, metrics = described
                costs = np.array([-metrics[m] if mx else metrics[m] for m, mx in self.cost_metrics], float)
                cand = Candidate(arch_key, dict(params), costs)
                self._pool.setdefault(arch_key, cand)
            self._described[key] = cand
        return self._described[key]

    def _grow_pool(self, front_params: list[dict[str, Any]]) -> None:
        random_study = self._study("random", optuna.samplers.RandomSampler(seed=self.seed))
        n = self.n_initial_candidates if self._draws == 0 else self.n_random_candidates
        before = len(self._pool)
        for _ in range(max(1, n // 8) if self._saturated else n):  # small spaces are soon drawn out
            self._draw(random_study)
        self._saturated = len(self._pool) == before
        self._draws += 1
        if not front_params:
            return
        mutation = self._study("mutation", _MutationSampler(None if self.seed is None else self.seed + 1))
        for _ in range(self.n_mutations):
            parent = front_params[self._rng.randint(len(front_params))]
            mutation.sampler.parent = parent
            mutation.sampler.mutate = list(parent)[self._rng.randint(len(parent))]
            self._draw(mutation)

    # -- the proposal --------------------------------------------------------------------------------------------

    def observe(self, study) -> tuple[set[str], list[Observed], list[Candidate]]:
        """The study as the sampler sees it: the keys of every architecture tried, the finished trials (at their
        accuracy and their own cost values, the figures the report draws) and the running ones."""
        from optuna.trial import TrialState

        seen: set[str] = set()
        observed: list[Observed] = []
        pending: list[Candidate] = []
        for t in study.get_trials(deepcopy=False):
            if not t.params:
                continue
            self._distributions.update(t.distributions)
            cand = self._candidate(t.params)
            if cand is None:
                continue
            seen.add(cand.key)
            if t.state == TrialState.COMPLETE and t.values is not None:
                value = t.values[self.learned]
                if value is not None and math.isfinite(value):
                    loss = -value if self.objectives[self.learned][1] else value
                    observed.append(Observed(cand, loss, self._measured_costs(t.values, cand)))
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(cand)
        return seen, observed, pending

    def propose(self, study) -> Optional[dict[str, Any]]:
        """The parameters of the next trial, or None (the space is exhausted: fall back to random suggestions)."""
        seen, observed, pending = self.observe(study)
        if len(observed) + len(pending) < max(self.n_startup_trials, 2):
            # start-up: no pool yet, so that the first trials start at once (the pool costs its candidates)
            proposal = self._search_unseen(seen)
            if proposal is not None:
                return proposal
        self._grow_pool([c.params for c in self._front(observed)])
        unseen = [c for k, c in sorted(self._pool.items()) if k not in seen]
        if not unseen:  # the pool is drawn out: look harder before giving up (None: random suggestions, repeats)
            return self._search_unseen(seen)
        if len(observed) < 2:  # nothing to fit a GP to (start-up trials still running): a random unseen candidate
            return dict(unseen[self._rng.randint(len(unseen))].params)
        scores = self._scores(observed, pending, unseen)
        best = np.flatnonzero(scores >= scores.max() - 1e-15)
        return dict(unseen[best[self._rng.randint(len(best))]].params)

    def _search_unseen(self, seen: set[str]) -> Optional[dict[str, Any]]:
        """Up to 256 random draws for an unseen feasible candidate; after a search that found none (a space drawn
        out, or with nothing feasible), 8, so that each later proposal stays cheap."""
        proposal = self._random_unseen(seen, tries=8 if self._drawn_out else 256)
        self._drawn_out = proposal is None
        return proposal

    def _random_unseen(self, seen: set[str], tries: int = 64) -> Optional[dict[str, Any]]:
        """A draw of the space's own random sampler (each choice uniform, as random search draws) not yet seen."""
        study = self._study("startup", optuna.samplers.RandomSampler(seed=None if self.seed is None else self.seed + 2))
        for _ in range(tries):
            cand = self._draw(study)
            if cand is not None and cand.key not in seen:
                return dict(cand.params)
        return None

    def _measured_costs(self, values: Sequence[Optional[float]], cand: Candidate) -> np.ndarray:
        """A finished trial's own cost values (what the report draws), in the candidates' sign convention; the
        candidate's described value where the trial has none."""
        out = cand.costs.copy()
        for j, i in enumerate(i for i in range(len(self.objectives)) if i != self.learned):
            value = values[i] if i < len(values) else None
            if value is not None and math.isfinite(value):
                out[j] = -value if self.objectives[i][1] else value
        return out

    @staticmethod
    def _calibration(observed: list[Observed]) -> np.ndarray:
        """Per cost objective, the median ratio of the trials' measured values to their described ones. A figure
        known before training (GFLOPs, params) is described exactly: 1. A measured one (``latency_cpu_ms``) is
        described by its stand-in (the latency predictor), which is biased by the machine's load and the table's
        age; scaled by the ratio, the candidates' costs are on the axis the report draws and the trials measured."""
        if not observed:
            return np.ones(0)
        described = np.array([o.candidate.costs for o in observed])
        measured = np.array([o.costs for o in observed])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(np.abs(described) > 0, measured / described, np.nan)
        ratios[~np.isfinite(ratios) | (ratios <= 0)] = np.nan
        scale = np.ones(described.shape[1])
        has = ~np.all(np.isnan(ratios), axis=0)
        scale[has] = np.nanmedian(ratios[:, has], axis=0)
        return scale

    @staticmethod
    def _front(observed: list[Observed]) -> list[Candidate]:
        if not observed:
            return []
        loss = np.array([[o.loss, *o.costs] for o in observed])
        return [o.candidate for o, keep in zip(observed, pareto_mask(loss, [False] * loss.shape[1])) if keep]

    def _scores(self, observed: list[Observed], pending: list[Candidate], unseen: list[Candidate]) -> np.ndarray:
        """EHVI of every unseen candidate, in the report's normalisation (each objective's [best, worst] -> [0, 1],
        accuracy over the trials seen, costs over the pool and the trials; reference point 1.1). Finished trials
        count at their measured costs, the others at their described costs scaled by ``_calibration``."""
        scale = self._calibration(observed)
        all_costs = np.array([c.costs for c in self._pool.values()])
        encoder = Encoder(self._distributions, all_costs)
        x = np.array([encoder.encode(o.candidate.params, o.candidate.costs) for o in observed])
        u = np.array([o.loss for o in observed])
        gp = GaussianProcess(x, u, encoder.categorical, start=self._gp_raw)
        self._gp_raw = gp.raw.numpy().copy()
        mu, sigma = gp.predict(np.array([encoder.encode(c.params, c.costs) for c in unseen]))
        u_lo, u_span = u.min(), max(np.ptp(u), 1e-9)
        on_axis = np.vstack([all_costs * scale, [o.costs for o in observed]])
        c_lo, c_span = on_axis.min(axis=0), np.where(np.ptp(on_axis, axis=0) > 0, np.ptp(on_axis, axis=0), 1.0)
        front = [[(o.loss - u_lo) / u_span, *((o.costs - c_lo) / c_span)] for o in observed]
        if pending:  # kriging believer: a running trial counts at its predicted accuracy
            p_mu, _ = gp.predict(np.array([encoder.encode(c.params, c.costs) for c in pending]))
            front += [[(m - u_lo) / u_span, *((c.costs * scale - c_lo) / c_span)] for c, m in zip(pending, p_mu)]
        costs = np.array([(c.costs * scale - c_lo) / c_span for c in unseen])
        ref = np.full(1 + all_costs.shape[1], HV_REFERENCE)
        if self.optimism is not None:  # HVI of an optimistic bound (UCB-style) instead of its expectation
            return expected_hv_improvement(
                (mu - self.optimism * sigma - u_lo) / u_span, np.zeros_like(sigma), costs, np.array(front), ref
            )
        return expected_hv_improvement((mu - u_lo) / u_span, sigma / u_span, costs, np.array(front), ref)
