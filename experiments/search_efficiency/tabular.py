"""The tabular benchmark's shared pieces: enumerate a conditional space, measure one architecture, hypervolume.

Used by ``build_table.py`` (train every architecture once), ``replay.py`` (replay samplers on the table) and
``tests/test_search_efficiency.py``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# the enumerator is the package's: the benchmark trains every parameter set it yields
from explorer.space.enumeration import enumerate_params as enumerate_params

HERE = Path(__file__).resolve().parent
SPACE_FILE = HERE / "space.yaml"
TABLE_FILE = HERE / "table.csv"


# ---------------------------------------------------------------------------------------------------- measuring


def measure_arch(
    space, params: dict[str, Any], data, epochs: int, batch_size: int, lr: float, seed: int = 0
) -> dict[str, Any]:
    """Build, cost (fvcore) and proxy-train one architecture of the space; one row of the table."""
    import torch

    from explorer.cost import count_flops, count_params, example_input
    from explorer.models import build
    from explorer.space import arch_from_params
    from explorer.train import TrainConfig, train_epochs

    arch = arch_from_params(space, params)
    torch.manual_seed(seed)
    model = build(arch)
    params_m = count_params(model) / 1e6
    gflops = count_flops(model, example_input(arch)) / 1e9
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, threads=1)
    start = time.perf_counter()
    accs = [r.accuracy for r in train_epochs(model, data, cfg)]
    return {
        **{f"param.{k}": v for k, v in params.items()},
        "arch_hash": arch.content_hash,
        "params_m": params_m,
        "gflops": gflops,
        "accuracy": accs[-1],
        "accuracy_by_epoch": accs,
        "train_time_s": time.perf_counter() - start,
    }


# ---------------------------------------------------------------------------------------------------- hypervolume


def normalise(
    accuracy: np.ndarray, gflops: np.ndarray, acc_range: tuple[float, float], flops_range: tuple[float, float]
) -> np.ndarray:
    """Both objectives as losses in [0, 1] over the whole table: (1 - acc01, gflops01); reference point (1, 1)."""
    acc01 = (np.asarray(accuracy, float) - acc_range[0]) / max(acc_range[1] - acc_range[0], 1e-12)
    flops01 = (np.asarray(gflops, float) - flops_range[0]) / max(flops_range[1] - flops_range[0], 1e-12)
    return np.stack([1.0 - acc01, flops01], axis=1)


def hypervolume_2d(points: np.ndarray, ref: Sequence[float] = (1.0, 1.0)) -> float:
    """Exact 2-D hypervolume (both objectives minimised) dominated by ``points`` and bounded by ``ref``: sort by the
    first objective and sum the rectangles of the staircase. Points not strictly better than ``ref`` add nothing."""
    pts = np.asarray(points, float).reshape(-1, 2)
    pts = pts[(pts[:, 0] < ref[0]) & (pts[:, 1] < ref[1])]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    volume, best_y = 0.0, ref[1]
    for i, (x, y) in enumerate(pts):
        if y < best_y:
            next_x = ref[0]
            volume += (next_x - x) * (best_y - y)
            best_y = y
    return volume


def hypervolume_optuna(points: np.ndarray, ref: Sequence[float] = (1.0, 1.0)) -> float:
    """The same quantity computed by Optuna's own implementation (a cross-check of ``hypervolume_2d``)."""
    from optuna._hypervolume import compute_hypervolume

    pts = np.asarray(points, float).reshape(-1, 2)
    pts = pts[(pts[:, 0] < ref[0]) & (pts[:, 1] < ref[1])]
    if len(pts) == 0:
        return 0.0
    return float(compute_hypervolume(pts, np.asarray(ref, float)))


def hypervolume_curve(points: np.ndarray, ref: Sequence[float] = (1.0, 1.0)) -> np.ndarray:
    """``curve[k]`` = hypervolume of the first ``k + 1`` points (the found front after k + 1 trials)."""
    pts = np.asarray(points, float).reshape(-1, 2)
    front: list[tuple[float, float]] = []
    curve = np.empty(len(pts))
    volume = 0.0
    for k, (x, y) in enumerate(pts):
        if not any(fx <= x and fy <= y for fx, fy in front):  # a dominated (or repeated) point changes nothing
            front = [(fx, fy) for fx, fy in front if not (x <= fx and y <= fy)] + [(x, y)]
            volume = hypervolume_2d(np.array(front), ref)
        curve[k] = volume
    return curve


def trials_to_reach(curve: np.ndarray, target: float) -> int | None:
    """The number of trials after which ``curve`` first reaches ``target`` (None: never within the budget)."""
    hits = np.nonzero(curve >= target - 1e-12)[0]
    return int(hits[0]) + 1 if len(hits) else None
