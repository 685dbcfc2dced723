"""Optuna parameters as the GP's inputs, and as hashable keys."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna


def params_key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


class Encoder:
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
