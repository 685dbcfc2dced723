import os
from typing import Callable, Iterable

import pytest
import torch
import torch.nn.functional as F


def _train_losses(
    forward: Callable[[torch.Tensor], torch.Tensor],
    params: Iterable[torch.nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 8,
    lr: float = 1e-2,
    optimizer: type[torch.optim.Optimizer] = torch.optim.AdamW,
) -> list[float]:
    """Cross-entropy losses of ``steps`` optimiser steps on one batch (a block that trains lowers them)."""
    opt = optimizer(list(params), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.fixture
def train_losses():
    return _train_losses


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A real local Ray instance for one test module (2 CPUs, small object store), stopped after it."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_enable_worker_prestart", "0")
    os.environ["EXPLORER_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()
