"""The sampler's surrogate: a small GP on standardised accuracy, in torch (Optuna's own GP, ``optuna._gp``, is
private API and needs scipy)."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

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

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        categorical: Optional[np.ndarray] = None,
        steps: int = 30,
        start: Optional[np.ndarray] = None,
    ):
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
        return (1.0 + s5r + 5.0 / 3.0 * r**2) * torch.exp(-s5r)

    def _variances(self, raw):
        d = self.x.shape[1]
        return torch.exp(raw[d : d + 2].clamp(SIGNAL_LOG_MIN, 4.0))

    def _kernel(self, a, b, raw):
        """s_j² M(‖Δ/ℓ‖) + s_a² mean_k M(|Δ_k/ℓ_k|): a joint Matérn-5/2 for interactions plus an additive one, so
        that one observation of a choice says something about that choice in every other context."""
        d = a.shape[1]
        ls = torch.exp(raw[:d].clamp(-4.0, 8.0))
        joint, additive = self._variances(raw)
        diff = a[:, None, :] - b[None, :, :]
        diff = torch.where(self.categorical, (diff != 0).to(diff.dtype), diff).abs() / ls  # categorical: same or not
        r = torch.sqrt((diff**2).sum(-1) + 1e-12)
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
        prior = (
            prior + 0.5 * ((raw[d : d + 2] - math.log(0.5)) ** 2).sum() + 0.5 * ((raw[-1] - math.log(0.05)) / 1.5) ** 2
        )
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
        var = self._variances(self.raw).sum() - (v**2).sum(0)
        std = torch.sqrt(torch.clamp(var, min=1e-12))
        return (mean.numpy() * self.y_std + self.y_mean), std.numpy() * self.y_std
