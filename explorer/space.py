"""Search spaces written in YAML: schema (pydantic), errors that name file:line and field, define-by-run sampling.

A space file names the proxy task, the objectives, the budget, the sampler, constraints checked before training,
and a template of the architecture whose values may be choices::

    stages:
      - depth: {choice: [1, 2]}          # also {int: [lo, hi]} and {float: [lo, hi], log: true}
        width: {choice: [16, 32]}
        mixer:                           # a mixer's options exist only when that mixer is chosen
          choice:
            conv3d: {kernel_t: {choice: [1, 3]}}
            posmlp: {groups: 4, window: 8}

Sampling is define-by-run (``sample_arch(space, optuna_trial)``); the sampled parameters are named
``s<stage>.<field>`` and ``s<stage>.<mixer>.<option>``, and ``arch_from_params`` replays them into the same Arch.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

Scalar = (int, float, str, bool)
Loc = tuple[Any, ...]


class SpaceError(ValueError):
    """A search-space file is wrong: names the file, the line, the field and what was expected."""

    def __init__(self, file: str, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSpec(_Strict):
    name: Literal["trev"] = "trev"
    preset: Literal["smoke", "demo"] = "demo"
    seed: int = 0


class ObjectiveSpec(_Strict):
    metric: Literal["accuracy", "gflops", "params_m", "latency_ms"]
    mode: Literal["max", "min"]


class BudgetSpec(_Strict):
    trials: PositiveInt = 8
    epochs: PositiveInt = 3
    concurrency: PositiveInt = 2
    cpus_per_trial: PositiveInt = 1
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-3


class SamplerSpec(_Strict):
    name: Literal["tpe", "random", "grid"] = "tpe"
    seed: int = 0


class ConstraintSpec(_Strict):
    max_gflops: Optional[PositiveFloat] = None
    max_params_m: Optional[PositiveFloat] = None


class StageTemplate(_Strict):
    depth: Any
    width: Any
    mixer: Any
    mlp_ratio: Any = 2.0
    down: dict[str, Any] = Field(default_factory=dict)


def _default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="accuracy", mode="max"), ObjectiveSpec(metric="gflops", mode="min")]


class SearchSpace(_Strict):
    name: str
    description: str = ""
    task: TaskSpec = Field(default_factory=TaskSpec)
    objectives: list[ObjectiveSpec] = Field(default_factory=_default_objectives, min_length=2)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    constraints: ConstraintSpec = Field(default_factory=ConstraintSpec)
    stem: dict[str, Any] = Field(default_factory=dict)
    drop_path_rate: float = 0.0
    stages: list[StageTemplate] = Field(min_length=1)
    source: str = Field("<dict>", exclude=True)

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]


# ---------------------------------------------------------------------------------------------------- loading


def _node_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    """Record the 1-based line of every mapping key and sequence item, keyed by its path from the root."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = loc + (key.value,)
            lines[child] = key.start_mark.line + 1
            _node_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _node_lines(item, loc + (i,), lines)


class _Located:
    """A parsed file plus the line of every path in it, for error messages."""

    def __init__(self, file: str, lines: dict[Loc, int]):
        self.file, self.lines = file, lines

    def line(self, loc: Loc) -> int | None:
        loc = tuple(str(p) if not isinstance(p, int) else p for p in loc)
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc)

    def error(self, loc: Loc, message: str) -> SpaceError:
        return SpaceError(self.file, self.line(loc), _dotted(loc), message)


def _dotted(loc: Loc) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def load_space(path: str | Path) -> SearchSpace:
    """Read and fully validate a space file; every problem raises ``SpaceError`` naming file, line and field."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise SpaceError(file, None, "", f"cannot read the file ({err.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpaceError(file, mark.line + 1 if mark else None, "", f"not valid YAML: {getattr(err, 'problem', err)}") from None
    lines: dict[Loc, int] = {}
    if root is not None:
        _node_lines(root, (), lines)
    return parse_space(data, _Located(file, lines))


def parse_space(data: Any, located: _Located | None = None) -> SearchSpace:
    located = located or _Located("<dict>", {})
    if not isinstance(data, dict):
        raise located.error((), "expected a mapping of space settings at the top level")
    try:
        space = SearchSpace.model_validate({**data, "source": located.file})
    except ValidationError as err:
        raise _translate(err, located) from None
    _check_templates(space, located)
    return space


def _allowed_fields(loc: Loc) -> list[str]:
    """The keys allowed at a path of the schema (to list them after an unknown key)."""
    model: Any = SearchSpace
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return [name for name in model.model_fields if name != "source"]


def _translate(err: ValidationError, located: _Located) -> SpaceError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return located.error(loc, f"unknown key{hint}; expected one of: {', '.join(allowed)}")
    if kind == "missing":
        return located.error(loc, "required key is missing")
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return located.error(loc, f"expected one of {expected}, got {first.get('input')!r}")
    return located.error(loc, f"{first['msg']}, got {first.get('input')!r}")


# ---------------------------------------------------------------------------------------------------- templates

_VALUE_FORMS = "a literal, {choice: [...]}, {int: [lo, hi]} or {float: [lo, hi], log: true}"


def _value_candidates(template: Any, loc: Loc, located: _Located) -> list[Any]:
    """Check a value template's form and return values worth validating (choices or range ends)."""
    if isinstance(template, Scalar):
        return [template]
    if not isinstance(template, dict) or len({"choice", "int", "float"} & set(template)) != 1:
        raise located.error(loc, f"expected {_VALUE_FORMS}, got {template!r}")
    if "choice" in template:
        choices = template["choice"]
        if set(template) != {"choice"} or not isinstance(choices, list) or not choices \
                or not all(isinstance(c, Scalar) for c in choices):
            raise located.error(loc + ("choice",), "expected a non-empty list of numbers or strings")
        return choices
    kind = "int" if "int" in template else "float"
    bounds = template[kind]
    extra = set(template) - {kind, "log", "step"}
    number = int if kind == "int" else (int, float)
    if extra or not isinstance(bounds, list) or len(bounds) != 2 \
            or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds) or bounds[0] > bounds[1]:
        raise located.error(loc + (kind,), f"expected [lo, hi] with lo <= hi ({kind}s), "
                                           f"optional log/step; got {template!r}")
    return list(bounds)


def _check_numbers(candidates: list[Any], loc: Loc, located: _Located, integer: bool) -> None:
    for value in candidates:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or value <= 0:
            want = "positive integers" if integer else "positive numbers"
            raise located.error(loc, f"expected {want}, got {value!r}")


def _mixer_kinds(template: Any, loc: Loc, located: _Located) -> dict[str, tuple[dict[str, Any], Loc]]:
    """``kind -> (option templates, their location)`` for the forms: "kind", {kind: {...}},
    {choice: [kinds]} and {choice: {kind: {...}, ...}}."""
    if isinstance(template, str):
        return {template: ({}, loc)}
    if isinstance(template, dict) and set(template) == {"choice"}:
        choice = template["choice"]
        if isinstance(choice, list) and choice and all(isinstance(k, str) for k in choice):
            return {k: ({}, loc + ("choice", i)) for i, k in enumerate(choice)}
        if isinstance(choice, dict) and choice:
            return {k: (v or {}, loc + ("choice", k)) for k, v in choice.items()}
        raise located.error(loc + ("choice",), "expected a list of mixer names or a mapping name -> options")
    if isinstance(template, dict) and len(template) == 1:
        ((kind, opts),) = template.items()
        return {kind: (opts or {}, loc + (kind,))}
    raise located.error(loc, "expected a mixer name, {choice: [names]}, {choice: {name: {options}}} "
                             "or {name: {options}}")


def _check_templates(space: SearchSpace, located: _Located) -> None:
    from explorer.blocks import get_mixer, mixer_names, parse_options  # imports torch: only after the schema passed

    for i, stage in enumerate(space.stages):
        base: Loc = ("stages", i)
        _check_numbers(_value_candidates(stage.depth, base + ("depth",), located), base + ("depth",), located, True)
        _check_numbers(_value_candidates(stage.width, base + ("width",), located), base + ("width",), located, True)
        _check_numbers(_value_candidates(stage.mlp_ratio, base + ("mlp_ratio",), located),
                       base + ("mlp_ratio",), located, False)
        for kind, (options, loc) in _mixer_kinds(stage.mixer, base + ("mixer",), located).items():
            if kind not in mixer_names():
                close = difflib.get_close_matches(kind, mixer_names(), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise located.error(loc, f"unknown mixer {kind!r}{hint}; known mixers: {', '.join(mixer_names())}")
            if not isinstance(options, dict):
                raise located.error(loc, f"expected a mapping of {kind} options, got {options!r}")
            allowed = list(get_mixer(kind).options.model_fields)
            for name, value in options.items():
                if name not in allowed:
                    raise located.error(loc + (name,), f"unknown option of mixer {kind!r}; "
                                                       f"expected one of: {', '.join(allowed)}")
                for candidate in _value_candidates(value, loc + (name,), located):
                    try:
                        parse_options(kind, {name: candidate})
                    except ValueError as err:
                        raise located.error(loc + (name,), str(err).split(": ", 1)[-1]) from None
    if space.sampler.name == "grid":
        for name, template in _templates(space).items():
            if isinstance(template, dict) and "choice" not in template:
                raise located.error(("sampler", "name"), f"the grid sampler needs choices only; {name} is a range")


# ---------------------------------------------------------------------------------------------------- sampling


def suggest(trial: Any, name: str, template: Any) -> Any:
    """One define-by-run suggestion for a value template (literals pass through unrecorded)."""
    if isinstance(template, Scalar):
        return template
    if "choice" in template:
        return trial.suggest_categorical(name, template["choice"])
    if "int" in template:
        lo, hi = template["int"]
        return trial.suggest_int(name, lo, hi, step=template.get("step", 1), log=template.get("log", False))
    lo, hi = template["float"]
    return trial.suggest_float(name, lo, hi, log=template.get("log", False))


def _templates(space: SearchSpace) -> dict[str, Any]:
    """Every sampled parameter's name and template (mixer options included), for grid sampling and docs."""
    out: dict[str, Any] = {}
    for i, stage in enumerate(space.stages):
        for field in ("depth", "width", "mlp_ratio"):
            out[f"s{i}.{field}"] = getattr(stage, field)
        kinds = _mixer_kinds(stage.mixer, (), _Located(space.source, {}))
        out[f"s{i}.mixer"] = {"choice": list(kinds)} if len(kinds) > 1 else next(iter(kinds))
        for kind, (options, _) in kinds.items():
            for name, value in options.items():
                out[f"s{i}.{kind}.{name}"] = value
    return {k: v for k, v in out.items() if not isinstance(v, Scalar)}


def grid_space(space: SearchSpace) -> dict[str, list[Any]]:
    return {name: template["choice"] for name, template in _templates(space).items()}


def task_input(space: SearchSpace) -> dict[str, int]:
    """Frames, resolution and classes of the space's task (the Arch's input)."""
    from explorer.data.synthvid import NUM_CLASSES, PRESETS

    cfg = PRESETS[space.task.preset]
    return {"frames": cfg.frames, "resolution": cfg.resolution, "in_chans": 3, "num_classes": NUM_CLASSES}


def sample_arch(space: SearchSpace, trial: Any):
    """Define-by-run: suggest every choice of the space on ``trial`` and return the resulting ``Arch``."""
    from explorer.arch import Arch

    stages = []
    for i, stage in enumerate(space.stages):
        kinds = _mixer_kinds(stage.mixer, (), _Located(space.source, {}))
        kind = trial.suggest_categorical(f"s{i}.mixer", list(kinds)) if len(kinds) > 1 else next(iter(kinds))
        options = {name: suggest(trial, f"s{i}.{kind}.{name}", value) for name, value in kinds[kind][0].items()}
        stages.append({
            "depth": suggest(trial, f"s{i}.depth", stage.depth),
            "width": suggest(trial, f"s{i}.width", stage.width),
            "mlp_ratio": suggest(trial, f"s{i}.mlp_ratio", stage.mlp_ratio),
            "mixer": {"kind": kind, "options": options},
            **({"down": stage.down} if stage.down else {}),
        })
    spec = {"input": task_input(space), "stem": space.stem, "stages": stages,
            "drop_path_rate": space.drop_path_rate}
    from explorer.models import validate_arch

    # mixer options completed by their defaults: the hash a run records is the one `explorer cost` shows
    return validate_arch(Arch.from_dict(spec, source=space.source))


def arch_from_params(space: SearchSpace, params: dict[str, Any]):
    """Replay sampled parameters (e.g. a Ray Tune config) into the Arch they stand for."""
    import optuna

    return sample_arch(space, optuna.trial.FixedTrial(params))
