"""Cost-aware multi-objective Bayesian optimisation: the ``costaware`` sampler.

In this tool only one objective needs training: accuracy. Every other objective (GFLOPs, parameters, predicted
latency) can be worked out on the driver before a trial starts, by building the candidate and counting it. The
``costaware`` sampler builds on that:

1. **Candidates.** A pool of architectures drawn from the space itself: random draws through the same define-by-run
   function that a trial runs, plus one-parameter mutations of the current Pareto front. Each candidate is described
   once (content hash and cost objectives, cached). A candidate that breaks a constraint or cannot be built never
   becomes a trial. An architecture that was already proposed is never proposed again.
2. **Surrogate.** A Gaussian process models accuracy only. It has zero mean on standardised accuracy, and its
   kernel is a joint Matérn-5/2 plus an additive one. The additive part lets one trial of a choice inform that
   choice everywhere. Each kernel has per-parameter lengthscales, and a categorical parameter counts only as same or
   different. Its inputs are the parameters and the log cost objectives, since capacity predicts accuracy. The
   hyper-parameters are fitted by L-BFGS on the marginal likelihood with log-normal priors.
3. **Acquisition.** Each candidate is scored by the hypervolume improvement (HVI) it would add to the front found so
   far, with its accuracy at the optimistic bound mu + ``optimism`` x sigma (UCB-style). The costs are exact.
   ``optimism=None`` scores by the expected HVI instead (closed form: ``expected_hv_improvement``). The scores use
   the normalisation and reference point (1.1) of the report's hypervolume. Trials still running count at their
   predicted mean ("kriging believer"), so concurrent trials spread out.

Why optimistic and not expected: after a few trials the GP has seen only part of the accuracy range. EHVI then
spends its trials on cheap, certain, small gains. The optimistic bound tries untried families sooner. On the tabular
benchmark this needed fewer trials (experiments/search_efficiency/README.md).

The first ``n_startup_trials`` (2; 4 and 8 were no better on the benchmark) proposals are random draws (each
choice uniform, as random search draws) that were not seen before. The sampler is an Optuna sampler, so Ray Tune's
OptunaSearch, SQLite storage and ``--resume`` use it like any other. A trial that Optuna fixes itself
(``points_to_evaluate``, enqueued trials) is left alone.

Optuna's own GP (``optuna._gp``) is private API and needs scipy, and its acquisition cannot use objectives that are
known in advance. So this module has its own small GP in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import optuna
import torch

from explorer.pareto import HV_REFERENCE, hypervolume, pareto_mask

# objectives the sampler models; every other objective must be given by `describe` before training
LEARNED_METRICS = ("accuracy",)

@dataclass(frozen=True)
class Candidate:
    """One architecture the sampler may propose: its parameters, content key and cost objectives (as losses)."""

    key: str
    params: dict[str, Any]
    costs: np.ndarray


# ---------------------------------------------------------------------------------------------------- EHVI


def _std_normal_g(z: np.ndarray) -> np.ndarray:
    """G(z) = z Φ(z) + φ(z), the antiderivative of Φ: ∫_{-∞}^{b} Φ((u - μ)/σ) du = σ G((b - μ)/σ)."""
    z = np.asarray(z, dtype=float)
    out = np.zeros_like(z)
    finite = np.isfinite(z)
    zf = z[finite]
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(zf / math.sqrt(2.0))) if zf.size else zf
    out[finite] = zf * cdf + np.exp(-0.5 * zf ** 2) / math.sqrt(2.0 * math.pi)
    out[np.isposinf(z)] = np.inf
    return out


def _uncovered_cost_volume(costs: np.ndarray, front_costs: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the box [costs, ref] not covered by the boxes [q, ref] of `front_costs` (all losses)."""
    box = float(np.prod(np.clip(ref - costs, 0.0, None)))
    if box == 0.0 or not len(front_costs):
        return box
    clipped = np.maximum(front_costs, costs)  # only the part of each box inside ours can cover it
    if costs.size == 1:
        return float(max(0.0, min(ref[0], clipped.min()) - costs[0]))
    return box - hypervolume(clipped, [False] * costs.size, ref)


def expected_hv_improvement(mu: np.ndarray, sigma: np.ndarray, costs: np.ndarray, front: np.ndarray,
                            ref: np.ndarray) -> np.ndarray:
    """Expected hypervolume improvement of candidates whose first loss is uncertain and whose others are known.

    All values are losses (minimised). Candidate i has first loss U ~ N(mu_i, sigma_i²) and known costs c_i (row of
    `costs`). `front` holds the points found so far (first column: that loss, the rest: costs), and `ref` is the
    reference point. Slice the improvement region at first-loss level u. Its cross-section is V_i(u), the part of
    [c_i, ref_c] that no front point q with q_0 <= u covers. So HVI = ∫_U^{ref_0} V_i(u) du. V_i is a step function
    that changes only at the front's q_0 values (b_0 = -∞ < b_1 ≤ … ≤ b_m, b_{m+1} = ref_0), so

        EHVI_i = Σ_j V_ij ∫_{b_j}^{b_{j+1}} P(U ≤ u) du = Σ_j V_ij σ_i [G(z_{j+1}) - G(z_j)],   z = (b - mu_i) / sigma_i

    with G(z) = z Φ(z) + φ(z). When sigma = 0 this becomes the plain improvement.
    """
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    costs, front, ref = np.atleast_2d(np.asarray(costs, float)), np.asarray(front, float), np.asarray(ref, float)
    front = front.reshape(-1, costs.shape[1] + 1)
    front = front[front[:, 0] < ref[0]]
    order = np.argsort(front[:, 0], kind="stable")
    front = front[order]
    bounds = np.concatenate([[-np.inf], front[:, 0], [ref[0]]])
    out = np.zeros(len(mu))
    if costs.shape[1] == 1:  # V_ij = max(0, min(ref_c, min of the first j front costs) - c_i), for all i at once
        reach = np.minimum(ref[1], np.concatenate([[np.inf], np.minimum.accumulate(front[:, 1])]))
        all_volumes = np.clip(reach[None, :] - costs[:, :1], 0.0, None)
    for i in range(len(mu)):
        volumes = all_volumes[i] if costs.shape[1] == 1 else np.array(
            [_uncovered_cost_volume(costs[i], front[:j, 1:], ref[1:]) for j in range(len(front) + 1)])
        if sigma[i] <= 0:  # deterministic: ∫_{mu}^{ref_0} V(u) du
            lo = np.clip(bounds[:-1], mu[i], None)
            hi = np.clip(bounds[1:], mu[i], None)
            out[i] = float(np.sum(volumes * (hi - lo)))
            continue
        g = _std_normal_g((bounds - mu[i]) / sigma[i])
        out[i] = float(np.sum(volumes * sigma[i] * np.diff(g)))
    return out


# ---------------------------------------------------------------------------------------------------- the GP


# Bounds on the standardised GP: with a dozen points the marginal likelihood can explain everything as noise, and a
# flat, certain posterior gives every candidate zero EHVI. Training-seed noise of a proxy accuracy is ~10 % of the
# spread across architectures (experiments/search_efficiency/README.md), so noise may not exceed 20 % of it and the
# signal may not drop below 10 %.
NOISE_LOG_MAX = math.log(0.2)
# log-lengthscale ~ N(0, 1): a priori, changing one parameter (or a cost by its whole range) halves the correlation,
# so a choice never tried stays uncertain and EHVI explores it. (The √d-scaled prior of Hvarfner et al. 2024 made
# every architecture look alike: on the tabular benchmark EHVI then never tried the untried mixers.)
LENGTHSCALE_PRIOR = (0.0, 1.0)
SIGNAL_LOG_MIN = math.log(0.1)


class GaussianProcess:
    """Zero-mean GP regression on standardised targets. Kernel: a joint Matérn-5/2 on the lengthscale-scaled distance
    plus an additive Matérn-5/2 (the mean over columns), where a categorical column's difference is 0 (same choice)
    or 1 (another). Hyper-parameters are fitted by L-BFGS on the log marginal likelihood plus log-normal priors."""

    def __init__(self, x: np.ndarray, y: np.ndarray, categorical: Optional[np.ndarray] = None, steps: int = 30,
                 start: Optional[np.ndarray] = None):
        self.x = torch.as_tensor(np.asarray(x, float), dtype=torch.float64)
        mask = np.zeros(self.x.shape[1], bool) if categorical is None else np.asarray(categorical, bool)
        self.categorical = torch.as_tensor(mask)
        y = np.asarray(y, float)
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) if y.std() > 1e-12 else 1.0
        self.y = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float64)
        d = self.x.shape[1]
        # raw: log lengthscales (d), log variance of the joint and of the additive part, log noise
        prior_centre = [LENGTHSCALE_PRIOR[0]] * d + [math.log(0.5), math.log(0.5), math.log(0.05)]
        init = start if start is not None and len(start) == d + 3 else prior_centre  # warm start: last fit
        raw = torch.tensor(init, dtype=torch.float64, requires_grad=True)
        optimiser = torch.optim.LBFGS([raw], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            optimiser.zero_grad()
            loss = self._neg_log_posterior(raw)
            loss.backward()
            return loss

        fallback = torch.tensor(prior_centre, dtype=torch.float64)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # matrices of a few dozen rows: threads only add overhead
        try:
            optimiser.step(closure)
            self.raw = raw.detach()
            if not bool(torch.isfinite(self._neg_log_posterior(self.raw))):
                self.raw = fallback
        except RuntimeError:  # a failed factorisation mid-line-search: fall back to the prior's centre
            self.raw = fallback
        finally:
            torch.set_num_threads(threads)
        self._factor()

    @staticmethod
    def _matern52(r):
        s5r = math.sqrt(5.0) * r
        return (1.0 + s5r + 5.0 / 3.0 * r ** 2) * torch.exp(-s5r)

    def _variances(self, raw):
        d = self.x.shape[1]
        return torch.exp(raw[d:d + 2].clamp(SIGNAL_LOG_MIN, 4.0))

    def _kernel(self, a, b, raw):
        """s_j² M(‖Δ/ℓ‖) + s_a² mean_k M(|Δ_k/ℓ_k|): a joint Matérn-5/2 for interactions plus an additive one, so
        that one observation of a choice says something about that choice in every other context."""
        d = a.shape[1]
        ls = torch.exp(raw[:d].clamp(-4.0, 8.0))
        joint, additive = self._variances(raw)
        diff = a[:, None, :] - b[None, :, :]
        diff = torch.where(self.categorical, (diff != 0).to(diff.dtype), diff).abs() / ls  # categorical: same or not
        r = torch.sqrt((diff ** 2).sum(-1) + 1e-12)
        return joint * self._matern52(r) + additive * self._matern52(diff).mean(-1)

    def _gram(self, raw):
        noise = torch.exp(raw[-1].clamp(-12.0, NOISE_LOG_MAX)) + 1e-6
        return self._kernel(self.x, self.x, raw) + noise * torch.eye(len(self.x), dtype=torch.float64)

    def _cholesky(self, gram):
        """Cholesky factor, with growing jitter when rounding makes the Gram matrix numerically indefinite."""
        eye = torch.eye(len(gram), dtype=torch.float64)
        for jitter in (0.0, 1e-8, 1e-6, 1e-4, 1e-2):
            chol, info = torch.linalg.cholesky_ex(gram + jitter * eye)
            if int(info) == 0:
                return chol
        raise RuntimeError("the GP's Gram matrix is not positive definite, even with jitter")

    def _neg_log_posterior(self, raw):
        d = self.x.shape[1]
        chol = self._cholesky(self._gram(raw))
        alpha = torch.cholesky_solve(self.y[:, None], chol)[:, 0]
        nll = 0.5 * self.y @ alpha + torch.log(torch.diagonal(chol)).sum()
        mean, scale = LENGTHSCALE_PRIOR
        prior = 0.5 * (((raw[:d] - mean) / scale) ** 2).sum()  # log-normal lengthscales
        prior = (prior + 0.5 * ((raw[d:d + 2] - math.log(0.5)) ** 2).sum()
                 + 0.5 * ((raw[-1] - math.log(0.05)) / 1.5) ** 2)
        return nll + prior

    def _factor(self) -> None:
        self.chol = self._cholesky(self._gram(self.raw))
        self.alpha = torch.cholesky_solve(self.y[:, None], self.chol)[:, 0]

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function, in the targets' units."""
        xs = torch.as_tensor(np.asarray(x, float), dtype=torch.float64)
        k = self._kernel(xs, self.x, self.raw)
        mean = k @ self.alpha
        v = torch.linalg.solve_triangular(self.chol, k.T, upper=False)
        var = self._variances(self.raw).sum() - (v ** 2).sum(0)
        std = torch.sqrt(torch.clamp(var, min=1e-12))
        return (mean.numpy() * self.y_std + self.y_mean), std.numpy() * self.y_std


# ---------------------------------------------------------------------------------------------------- features


def _params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class _Encoder:
    """Parameters -> GP inputs, one column per parameter: a categorical as the index of its choice (-1 when a
    conditional parameter is absent; the kernel only asks "same or not"), a number scaled to [0, 1] (log where the
    distribution is; 0 when absent), then each log cost scaled to [0, 1] over the pool."""

    def __init__(self, distributions: dict[str, Any], costs: np.ndarray):
        self.columns: list[tuple[str, Any]] = []
        for name in sorted(distributions):
            dist = distributions[name]
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                self.columns.append((name, {repr(c): i for i, c in enumerate(dist.choices)}))
            else:
                self.columns.append((name, (dist.low, dist.high, bool(getattr(dist, "log", False)))))
        logc = np.log(np.clip(costs, 1e-12, None))
        self.cost_lo = logc.min(axis=0)
        self.cost_span = np.where(np.ptp(logc, axis=0) > 0, np.ptp(logc, axis=0), 1.0)
        self.categorical = np.array([isinstance(spec, dict) for _, spec in self.columns] + [False] * costs.shape[1])

    def encode(self, params: dict[str, Any], costs: np.ndarray) -> np.ndarray:
        row = []
        for name, spec in self.columns:
            value = params.get(name)
            if isinstance(spec, dict):
                row.append(float(spec.get(repr(value), -1)) if value is not None else -1.0)
            elif value is None:
                row.append(0.0)
            else:
                lo, hi, log = spec
                a, b, v = (math.log(lo), math.log(hi), math.log(value)) if log else (lo, hi, float(value))
                row.append((v - a) / (b - a) if b > a else 0.0)
        logc = np.log(np.clip(costs, 1e-12, None))
        return np.concatenate([np.asarray(row, float), (logc - self.cost_lo) / self.cost_span])


# ---------------------------------------------------------------------------------------------------- the sampler


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

    def __init__(self, space_fn: Callable[[Any], Any], describe: Describe, objectives: Sequence[tuple[str, bool]],
                 seed: Optional[int] = None, n_startup_trials: int = 2, n_initial_candidates: int = 64,
                 n_random_candidates: int = 8, n_mutations: int = 4, optimism: Optional[float] = 3.0):
        learned = [i for i, (m, _) in enumerate(objectives) if m in LEARNED_METRICS]
        if len(learned) != 1 or len(objectives) < 2:
            raise ValueError(f"the costaware sampler needs exactly one of {LEARNED_METRICS} among the objectives plus "
                             f"at least one cost; got {[m for m, _ in objectives]}")
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
        key = _params_key(params)
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

    def propose(self, study) -> Optional[dict[str, Any]]:
        """The parameters of the next trial, or None (the space is exhausted: fall back to random suggestions)."""
        from optuna.trial import TrialState

        seen: set[str] = set()
        observed: list[tuple[Candidate, float]] = []
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
                    observed.append((cand, -value if self.objectives[self.learned][1] else value))
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                pending.append(cand)
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

    @staticmethod
    def _front(observed: list[tuple[Candidate, float]]) -> list[Candidate]:
        if not observed:
            return []
        loss = np.array([[u, *c.costs] for c, u in observed])
        return [c for (c, _), keep in zip(observed, pareto_mask(loss, [False] * loss.shape[1])) if keep]

    def _scores(self, observed: list[tuple[Candidate, float]], pending: list[Candidate],
                unseen: list[Candidate]) -> np.ndarray:
        """EHVI of every unseen candidate, in the report's normalisation (each objective's [best, worst] -> [0, 1],
        accuracy over the trials seen, costs over the pool; reference point 1.1)."""
        all_costs = np.array([c.costs for c in self._pool.values()])
        encoder = _Encoder(self._distributions, all_costs)
        x = np.array([encoder.encode(c.params, c.costs) for c, _ in observed])
        u = np.array([v for _, v in observed])
        gp = GaussianProcess(x, u, encoder.categorical, start=self._gp_raw)
        self._gp_raw = gp.raw.numpy().copy()
        mu, sigma = gp.predict(np.array([encoder.encode(c.params, c.costs) for c in unseen]))
        u_lo, u_span = u.min(), max(np.ptp(u), 1e-9)
        c_lo, c_span = all_costs.min(axis=0), np.where(np.ptp(all_costs, axis=0) > 0, np.ptp(all_costs, axis=0), 1.0)
        front = [[(v - u_lo) / u_span, *((c.costs - c_lo) / c_span)] for c, v in observed]
        if pending:  # kriging believer: a running trial counts at its predicted accuracy
            p_mu, _ = gp.predict(np.array([encoder.encode(c.params, c.costs) for c in pending]))
            front += [[(m - u_lo) / u_span, *((c.costs - c_lo) / c_span)] for c, m in zip(pending, p_mu)]
        costs = np.array([(c.costs - c_lo) / c_span for c in unseen])
        ref = np.full(1 + all_costs.shape[1], HV_REFERENCE)
        if self.optimism is not None:  # HVI of an optimistic bound (UCB-style) instead of its expectation
            return expected_hv_improvement((mu - self.optimism * sigma - u_lo) / u_span, np.zeros_like(sigma), costs,
                                           np.array(front), ref)
        return expected_hv_improvement((mu - u_lo) / u_span, sigma / u_span, costs, np.array(front), ref)
