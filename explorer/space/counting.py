"""Counting a space: the distinct settings it holds (``space_size``), its grid, and its task's input shape."""

from __future__ import annotations

import math
from typing import Any

from explorer.data.tasks import task_shape
from explorer.space.errors import Located
from explorer.space.schema import Scalar, SearchSpace, StageTemplate
from explorer.space.templates import allowed_value, kind_choice, shared_ref


def _count(template: Any) -> int | None:
    """Values a template can take (None: a continuous range)."""
    if isinstance(template, Scalar) or template is None or isinstance(template, list):
        return 1
    if "choice" in template:
        return len(template["choice"])
    if "float" in template:
        return None
    lo, hi = template["int"]
    return (hi - lo) // template.get("step", 1) + 1


def _product(counts: list[int | None]) -> int | None:
    return None if None in counts else math.prod(counts)


def _sum(counts: Any) -> int | None:
    counts = list(counts)
    return None if None in counts else sum(counts)


class _Counter:
    """Counts stage settings with every shared value fixed (a shared reference counts once, outside)."""

    def __init__(self, space: SearchSpace, fixed: dict[str, Any]):
        self.space, self.fixed, self.read = space, fixed, set()

    def one(self, template: Any) -> int | None:
        ref = shared_ref(template)
        if ref is not None:
            self.read.add(ref)
            return 1
        return _count(template)

    def kinds(self, template: Any, what: str) -> dict[str, int | None]:
        """Settings of each kind (mixer or merge method) that can be chosen, options included."""
        kinds, shared = kind_choice(template, (), Located(self.space.source, {}), what, self.space)
        if shared is not None:
            self.read.add(shared)
            kinds = {self.fixed[shared]: kinds[self.fixed[shared]]}
        return {kind: _product([self.one(v) for v in options.values()]) for kind, (options, _) in kinds.items()}

    def stage(self, stage: StageTemplate) -> int | None:
        from explorer.blocks import get_mixer

        counts = [self.one(getattr(stage, f)) for f in ("depth", "width", "mlp_ratio")]
        counts += [self.one(v) for v in stage.down.values()]
        tokens = self._tokens(stage.global_tokens) if stage.global_tokens is not None else 1
        merges = _sum(self.kinds(stage.merge, "merge").values()) if stage.merge is not None else 1
        mixers = [
            _product([n, merges if get_mixer(kind).layout == "set" else tokens])
            for kind, n in self.kinds(stage.mixer, "mixer").items()
        ]
        return _product(counts + [_sum(mixers)])

    def _tokens(self, tokens: dict[str, Any]) -> int | None:
        num = tokens["num"]
        if shared_ref(num) is not None:
            self.read.add(num["shared"])
            return 1 if self.fixed[num["shared"]] == 0 else self.one(tokens.get("width", 192))
        width = self.one(tokens.get("width", 192))
        if width is None or _count(num) is None:
            return None
        zero = 1 if allowed_value(num, 0) else 0  # no tokens: one setting, whatever the width
        return zero + (_count(num) - zero) * width


def _refs(template: Any) -> set[str]:
    if isinstance(template, dict):
        ref = shared_ref(template)
        return {ref} if ref is not None else set().union(*(_refs(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(_refs(v) for v in template))
    return set()


def space_size(space: SearchSpace, limit: int = 10**7) -> int | None:
    """The number of distinct parameter settings (one architecture each, up to options a mixer normalises);
    None when a continuous (float) range is in use. Shared values are enumerated (at most ``limit`` joint
    settings), counting only those the stages in use read. Exact when shared values sit in unconditional
    positions, mixer/merge kinds or token counts; a shared value read only inside one alternative of a choice
    (e.g. one mixer's option) is counted for every alternative, an upper bound."""
    import itertools

    ks = [len(space.stages)] if space.num_stages is None else _values(space, space.num_stages)
    if ks is None:
        return None
    total = 0
    for k in ks:
        used = space.stages[:k]
        names = sorted(
            set().union(*(_refs(s.model_dump()) for s in used))
            | _refs(space.stem)
            | (_refs(space.num_stages) if space.num_stages is not None else set())
        )
        options = [_values(space, space.shared[n]) for n in names]
        if any(o is None for o in options):
            return None
        if math.prod(len(o) for o in options) > limit:
            raise ValueError(f"more than {limit} joint settings of the shared values {names}")
        stem = _product([1 if shared_ref(v) else _count(v) for v in space.stem.values()])
        if stem is None:
            return None
        seen: set[tuple] = set()
        for combo in itertools.product(*options):
            fixed = dict(zip(names, combo))
            if shared_ref(space.num_stages) is not None and fixed[space.num_stages["shared"]] != k:
                continue
            counter = _Counter(space, fixed)
            n = _product([counter.stage(s) for s in used])
            if n is None:
                return None
            # shared values this setting never reads (e.g. a token width with no tokens) add no architectures
            key = tuple((name, fixed[name]) for name in sorted(counter.read | _refs(space.stem)))
            if key not in seen:
                seen.add(key)
                total += n * stem
    return total


def _values(space: SearchSpace, template: Any) -> list[Any] | None:
    """Every value a (possibly shared) template takes; None for a float range."""
    if shared_ref(template) is not None:
        template = space.shared[template["shared"]]
    if isinstance(template, Scalar):
        return [template]
    if "choice" in template:
        return list(template["choice"])
    if "float" in template:
        return None
    lo, hi = template["int"]
    return list(range(lo, hi + 1, template.get("step", 1)))


def task_input(space: SearchSpace) -> dict[str, int]:
    """Frames, resolution, channels and classes of the space's task (the Arch's input), without generating or
    decoding any clip."""
    return task_shape(space.task)
