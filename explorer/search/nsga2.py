"""``sampler: nsga2``: Optuna's ``NSGAIISampler`` made picklable. Ray Tune pickles the searcher, and the study and
sampler inside it, when a search starts and with every experiment-state save that ``--resume`` reads back. Optuna
5.1 gave its genetic samplers a ``threading.Lock`` (it guards a per-process generation cache), which pickle refuses;
a copy gets a fresh lock, as the cache itself is rebuilt from the study's trials."""

from __future__ import annotations

import threading
from typing import Any

from optuna.samplers import NSGAIISampler

_LOCK_ATTR = "_thread_lock"


class PicklableNSGAIISampler(NSGAIISampler):
    """``NSGAIISampler`` whose pickled state leaves out its lock; trials it tells carry NSGA-II's own generation and
    parent keys, so a study it wrote reads like one stock NSGA-II wrote."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop(_LOCK_ATTR, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        setattr(self, _LOCK_ATTR, threading.Lock())


# Optuna names the keys after the subclass (``__init_subclass__``); keep NSGA-II's
PicklableNSGAIISampler._GENERATION_KEY = NSGAIISampler._get_generation_key()
PicklableNSGAIISampler._PARENT_CACHE_KEY_PREFIX = NSGAIISampler._get_parent_cache_key_prefix()
