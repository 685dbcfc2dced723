"""Exact enumeration of a space of choices and integer ranges: every parameter set sampling can produce, once.

A mixer's options exist only when that mixer is chosen, so the product of every parameter's choices over-counts a
conditional space (a conv3d stage once per unused focal option). Walking the branches of ``sample_arch``
depth-first visits exactly the parameter sets that exist; ``explorer inspect`` counts with it, and a search with
``sampler: grid`` runs that many trials (Optuna's ``BruteForceSampler`` walks the same tree).
"""

from __future__ import annotations

from typing import Any, Sequence

from explorer.space.sampling import sample_arch
from explorer.space.schema import SearchSpace


class NotEnumerable(ValueError):
    """The space samples a float range: its parameter sets are not a finite list."""


class _BranchTrial:
    """An Optuna-trial stand-in that follows a fixed prefix of choice indices, then takes choice 0."""

    def __init__(self, prefix: Sequence[int]):
        self.prefix = list(prefix)
        self.params: dict[str, Any] = {}
        self.sizes: list[int] = []  # number of choices of every parameter asked, in order

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        depth = len(self.sizes)
        self.sizes.append(len(choices))
        index = self.prefix[depth] if depth < len(self.prefix) else 0
        self.params[name] = choices[index]
        return choices[index]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self.suggest_categorical(name, list(range(low, high + 1, step)))  # every integer of the range

    def suggest_float(self, name: str, *_: Any, **__: Any) -> float:
        raise NotEnumerable(f"{name} is a float range: only a space of choices and integers can be enumerated")


def _walk(space: SearchSpace, limit: int) -> list[tuple[dict[str, Any], Any]]:
    """(parameter set, its Arch or None when the spec rejects it) for every parameter set, depth-first."""
    from explorer.arch import ArchError

    out: list[tuple[dict[str, Any], Any]] = []
    stack: list[list[int]] = [[]]
    while stack:
        prefix = stack.pop()
        trial = _BranchTrial(prefix)
        try:
            arch = sample_arch(space, trial)
        except ArchError:
            arch = None  # its parameters were all asked before the spec was checked
        # every parameter past the prefix took choice 0; push its siblings, deepest last so it pops first
        for depth in range(len(prefix), len(trial.sizes)):
            for index in range(trial.sizes[depth] - 1, 0, -1):
                stack.append((prefix + [0] * len(trial.sizes))[:depth] + [index])
        out.append((trial.params, arch))
        if len(out) > limit:
            raise ValueError(f"more than {limit:,} parameter sets")
    return out


def enumerate_params(space: SearchSpace, limit: int = 100_000) -> list[dict[str, Any]]:
    """Every distinct parameter set of ``space``, in depth-first order of its choices (a set whose architecture the
    spec rejects is kept: the search would sample it too). ``NotEnumerable`` for a space with a float range;
    ``ValueError`` past ``limit`` sets."""
    return [params for params, _ in _walk(space, limit)]


def count_architectures(space: SearchSpace, limit: int = 5_000) -> tuple[int, int, int]:
    """(distinct architectures, parameter sets the spec rejects, parameter sets) of an enumerable space, exactly:
    two parameter sets may build one architecture (options a mixer normalises), which the hash counts once."""
    walked = _walk(space, limit)
    hashes = {arch.content_hash for _, arch in walked if arch is not None}
    return len(hashes), sum(arch is None for _, arch in walked), len(walked)
