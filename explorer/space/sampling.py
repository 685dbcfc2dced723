"""Define-by-run sampling: suggest a space's templates on an Optuna trial and build the ``Arch``; replaying
recorded parameters gives the same ``Arch``."""

from __future__ import annotations

from typing import Any

from explorer.space.counting import task_input
from explorer.space.errors import Located
from explorer.space.schema import Scalar, SearchSpace, StageTemplate
from explorer.space.templates import kind_choice, shared_ref


def suggest(trial: Any, name: str, template: Any) -> Any:
    """One define-by-run suggestion for a value template (literals pass through unrecorded)."""
    if isinstance(template, Scalar) or template is None:
        return template
    if "choice" in template:
        return trial.suggest_categorical(name, template["choice"])
    if "int" in template:
        lo, hi = template["int"]
        return trial.suggest_int(name, lo, hi, step=template.get("step", 1), log=template.get("log", False))
    lo, hi = template["float"]
    return trial.suggest_float(name, lo, hi, log=template.get("log", False))


class _Sampler:
    """One define-by-run pass: stage values, with ``{shared: name}`` suggested once (as ``shared.<name>``)
    the first time a stage in use refers to it."""

    def __init__(self, space: SearchSpace, trial: Any):
        self.space, self.trial, self.shared = space, trial, {}

    def value(self, name: str, template: Any) -> Any:
        ref = shared_ref(template)
        if ref is None:
            return suggest(self.trial, name, template)
        if ref not in self.shared:
            self.shared[ref] = suggest(self.trial, f"shared.{ref}", self.space.shared[ref])
        return self.shared[ref]

    def kind(self, name: str, template: Any) -> tuple[str, dict[str, Any]]:
        kinds, shared = kind_choice(template, (), Located(self.space.source, {}), "", self.space)
        if shared is not None:
            kind = self.value(name, {"shared": shared})
        else:
            kind = self.trial.suggest_categorical(name, list(kinds)) if len(kinds) > 1 else next(iter(kinds))
        return kind, kinds[kind][0]

    def mapping(self, prefix: str, templates: dict[str, Any]) -> dict[str, Any]:
        return {field: self.value(f"{prefix}.{field}", value) for field, value in templates.items()}


def _sample_stage(s: _Sampler, i: int, stage: StageTemplate) -> dict[str, Any]:
    kind, options = s.kind(f"s{i}.mixer", stage.mixer)
    out: dict[str, Any] = {
        "depth": s.value(f"s{i}.depth", stage.depth),
        "width": s.value(f"s{i}.width", stage.width),
        "mlp_ratio": s.value(f"s{i}.mlp_ratio", stage.mlp_ratio),
        "mixer": {"kind": kind, "options": s.mapping(f"s{i}.{kind}", options)},
    }
    if stage.down:
        out["down"] = s.mapping(f"s{i}.down", stage.down)
    from explorer.blocks import get_mixer

    set_layout = get_mixer(kind).layout == "set"
    # global tokens attach to grid stages and token merging needs a token set: each exists (and is sampled)
    # only when the chosen mixer has that layout, like a mixer's options exist only when it is chosen
    if stage.global_tokens is not None and not set_layout:
        num = s.value(f"s{i}.global_tokens.num", stage.global_tokens["num"])
        if num > 0:  # no tokens: the width does not exist (and is not sampled)
            width = s.value(f"s{i}.global_tokens.width", stage.global_tokens.get("width", 192))
            out["global_tokens"] = {"num": num, "width": width}
    if stage.merge is not None and set_layout:
        method, fields = s.kind(f"s{i}.merge", stage.merge)
        if method != "none":
            merge = {"method": method, **s.mapping(f"s{i}.merge.{method}", fields)}
            if isinstance(merge.get("layers"), int):
                merge["layers"] = [merge["layers"]]
            out["merge"] = merge
    return out


def sample_arch(space: SearchSpace, trial: Any):
    """Define-by-run: suggest every choice of the space on ``trial`` and return the resulting ``Arch``.
    Raises ``ArchError`` for a combination the spec rejects (e.g. a merge layer beyond a sampled depth)."""
    from explorer.arch import Arch
    from explorer.models import validate_arch

    s = _Sampler(space, trial)
    k = s.value("num_stages", space.num_stages) if space.num_stages is not None else len(space.stages)
    stages = [_sample_stage(s, i, stage) for i, stage in enumerate(space.stages[:k])]
    spec = {
        "input": task_input(space),
        "stem": s.mapping("stem", space.stem),
        "stages": stages,
        "drop_path_rate": space.drop_path_rate,
        **({"head": space.head} if space.head else {}),
    }
    # mixer options completed by their defaults: the hash a run records is the one `explorer cost` shows
    return validate_arch(Arch.from_dict(spec, source=space.source))


def arch_from_params(space: SearchSpace, params: dict[str, Any]):
    """Replay sampled parameters (e.g. a Ray Tune config) into the Arch they stand for."""
    import optuna

    return sample_arch(space, optuna.trial.FixedTrial(params))
