"""The expected hypervolume improvement (EHVI) of candidates whose accuracy is uncertain and whose costs are known,
in closed form (one Gaussian objective, any number of exact ones)."""

from __future__ import annotations

import math

import numpy as np

from explorer.pareto import hypervolume


def std_normal_g(z: np.ndarray) -> np.ndarray:
    """G(z) = z Φ(z) + φ(z), the antiderivative of Φ: ∫_{-∞}^{b} Φ((u - μ)/σ) du = σ G((b - μ)/σ)."""
    z = np.asarray(z, dtype=float)
    out = np.zeros_like(z)
    finite = np.isfinite(z)
    zf = z[finite]
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(zf / math.sqrt(2.0))) if zf.size else zf
    out[finite] = zf * cdf + np.exp(-0.5 * zf**2) / math.sqrt(2.0 * math.pi)
    out[np.isposinf(z)] = np.inf
    return out


def uncovered_cost_volume(costs: np.ndarray, front_costs: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the box [costs, ref] not covered by the boxes [q, ref] of `front_costs` (all losses)."""
    box = float(np.prod(np.clip(ref - costs, 0.0, None)))
    if box == 0.0 or not len(front_costs):
        return box
    clipped = np.maximum(front_costs, costs)  # only the part of each box inside ours can cover it
    if costs.size == 1:
        return float(max(0.0, min(ref[0], clipped.min()) - costs[0]))
    return box - hypervolume(clipped, [False] * costs.size, ref)


def expected_hv_improvement(
    mu: np.ndarray, sigma: np.ndarray, costs: np.ndarray, front: np.ndarray, ref: np.ndarray
) -> np.ndarray:
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
        volumes = (
            all_volumes[i]
            if costs.shape[1] == 1
            else np.array([uncovered_cost_volume(costs[i], front[:j, 1:], ref[1:]) for j in range(len(front) + 1)])
        )
        if sigma[i] <= 0:  # deterministic: ∫_{mu}^{ref_0} V(u) du
            lo = np.clip(bounds[:-1], mu[i], None)
            hi = np.clip(bounds[1:], mu[i], None)
            out[i] = float(np.sum(volumes * (hi - lo)))
            continue
        g = std_normal_g((bounds - mu[i]) / sigma[i])
        out[i] = float(np.sum(volumes * sigma[i] * np.diff(g)))
    return out
