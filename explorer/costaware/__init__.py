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
   far, with its accuracy at the optimistic bound mu + ``optimism`` x sigma (UCB-style). The costs are exact,
   except a measured latency (``latency_cpu_ms``): candidates carry the latency predictor's figure, scaled by the
   median measured/predicted ratio of the finished trials, and finished trials count at what they measured, so
   the front the sampler extends is the one the report draws.
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
known in advance. So this package has its own small GP in torch.

The package is laid out like Optuna's ``samplers/_tpe``: the sampler, and the models it calls, one module each.

===============================  ==============================================================================
module                           what it owns
===============================  ==============================================================================
``sampler.py``                   ``CostAwareSampler``: the candidate pool, the proposal, Optuna's interface
``gaussian_process.py``          the GP surrogate, its kernel and its hyper-parameter bounds
``hypervolume_improvement.py``   the closed-form EHVI with one uncertain objective and exact costs
``encoding.py``                  parameters as GP inputs (and as hashable keys)
===============================  ==============================================================================

The constants, and why they have their values:

===========================  =========  ==========================================================================
constant                     value      why
===========================  =========  ==========================================================================
``LEARNED_METRICS``          accuracy   the one objective that needs training; every other one is counted first
``n_startup_trials``         2          random unseen draws before the GP; 4 and 8 were no better on the tabular
                                        benchmark (experiments/search_efficiency/README.md)
``n_initial_candidates``     64         the first pool of random draws, each costed on the driver
``n_random_candidates``      8          random draws added to the pool per proposal (1 once the space is drawn out)
``n_mutations``              4          one-parameter mutations of the front added per proposal
``optimism``                 3.0        the UCB-style bound mu + 3 sigma scored by HVI (``None``: EHVI)
``HV_REFERENCE``             1.1        the report's hypervolume reference point, in [0, 1]-normalised objectives
``NOISE_LOG_MAX``            log 0.2    the GP's noise may not exceed 20 % of the standardised spread (seed noise
                                        is ~10 % of it), or a few points are explained away as noise
``SIGNAL_LOG_MIN``           log 0.1    the signal variance may not drop below 10 % for the same reason
``LENGTHSCALE_PRIOR``        N(0, 1)    on log lengthscales: changing one parameter halves the correlation a
                                        priori, so an untried choice stays uncertain and is explored
===========================  =========  ==========================================================================

Run folders written before the package existed pickled ``explorer.costaware.CostAwareSampler`` and ``Candidate``;
both are still importable from here, so those runs resume.
"""

from explorer.costaware.gaussian_process import GaussianProcess
from explorer.costaware.hypervolume_improvement import expected_hv_improvement
from explorer.costaware.sampler import LEARNED_METRICS, Candidate, CostAwareSampler, Describe

__all__ = ["LEARNED_METRICS", "Candidate", "CostAwareSampler", "Describe", "GaussianProcess", "expected_hv_improvement"]
