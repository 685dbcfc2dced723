"""Search spaces written in YAML: schema (pydantic), errors that name file:line and field, define-by-run sampling.

A space file names the proxy task, the objectives, the budget, the sampler (and scheduler), constraints checked
before training, and a template of the architecture whose values may be choices (the full language, with a worked
example, is documented in ``search_spaces/README.md``)::

    include: base.yaml                   # deep-merged under this file's keys (lists: wholesale, or {index: ...})
    seed: 0                              # seeds the sampler and the task unless they set their own
    shared: {w: {choice: [32, 64]}}      # sampled once as "shared.w", used as {shared: w} in any value position
    num_stages: {choice: [1, 2]}         # the first k stage templates are used
    stages:
      - depth: {choice: [1, 2]}          # also {int: [lo, hi], step: s} and {float: [lo, hi], log: true}
        width: {shared: w}
        mixer:                           # a mixer's options exist only when that mixer is chosen
          choice:
            conv3d: {kernel_t: {choice: [1, 3]}}
            posmlp: {groups: 4, window: 8}
        global_tokens: {num: {int: [0, 12]}, width: {choice: [32, 64]}}   # Mobile-Former tokens; num 0 = none
        merge: {choice: {none: {}, tome: {r: {int: [4, 16]}}}}            # token merging (set-layout stages)

Sampling is define-by-run (``sample_arch(space, optuna_trial)``); the sampled parameters are named
``num_stages``, ``shared.<name>``, ``stem.<field>``, ``s<i>.<field>``, ``s<i>.mixer``, ``s<i>.<mixer>.<option>``,
``s<i>.down.<field>``, ``s<i>.global_tokens.num|width``, ``s<i>.merge`` and ``s<i>.merge.<method>.<field>``;
``arch_from_params`` replays them into the same Arch. ``param_templates`` lists them, ``space_size`` counts the
distinct settings (None: a continuous range is in use).
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,

                      ValidationError)

from explorer.data.tasks import TaskConfig, task_shape

Scalar = (int, float, str, bool)
Loc = tuple[Any, ...]

# the direction each metric is better in (the search reports all of them for every trial)
METRIC_MODES = {"accuracy": "max", "throughput": "max", "gflops": "min", "params_m": "min", "latency_ms": "min",
                "predicted_latency_ms": "min", "peak_mem_mb": "min"}
MERGE_FIELDS = ("r", "ratio", "layers", "temporal_ratio", "prop_attn", "size_weighted_pool")
MERGE_KINDS = ("none", "tome", "sttm")  # "none": no merging in that stage


class SpaceError(ValueError):
    """A search-space file is wrong: names the file, the line, the field and what was expected."""

    def __init__(self, file: str, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveSpec(_Strict):
    metric: Literal["accuracy", "gflops", "params_m", "latency_ms", "predicted_latency_ms", "throughput",
                    "peak_mem_mb"]
    mode: Literal["max", "min"]
    device: Literal["cpu", "cuda"] = "cpu"  # where latency/throughput/memory are measured


class BudgetSpec(_Strict):
    trials: PositiveInt = 8
    epochs: PositiveInt = 3
    concurrency: PositiveInt = 2
    cpus_per_trial: PositiveInt = 1
    gpus_per_trial: NonNegativeFloat = 0.0  # fractions share a GPU between trials
    retries: NonNegativeInt = 2  # re-runs of a trial whose worker died
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-3


# objectives the costaware sampler works out on the driver before training (latency: the per-block predictor)
PREDICTABLE_COSTS = ("gflops", "params_m", "latency_ms", "predicted_latency_ms")


def costaware_objection(metrics: list[str]) -> str | None:
    """Why the costaware sampler cannot serve these objectives (None: it can): it models accuracy and needs every
    other objective before training."""
    if "accuracy" not in metrics:
        return "it models accuracy, which is not an objective here"
    unknown = [m for m in metrics if m not in ("accuracy", *PREDICTABLE_COSTS)]
    return f"{', '.join(unknown)} cannot be worked out before training" if unknown else None


class SamplerSpec(_Strict):
    name: Literal["costaware", "tpe", "nsga2", "random", "grid"] = "costaware"
    seed: int = 0
    population: Optional[PositiveInt] = None  # nsga2 only; None: sized from the budget


class SchedulerSpec(_Strict):
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: PositiveInt = 1
    reduction_factor: int = Field(2, ge=2)


class ConstraintSpec(_Strict):
    max_gflops: Optional[PositiveFloat] = None
    max_params_m: Optional[PositiveFloat] = None
    max_latency_ms: Optional[PositiveFloat] = None  # checked by the search with its latency predictor


class StageTemplate(_Strict):
    depth: Any
    width: Any
    mixer: Any
    mlp_ratio: Any = 2.0
    down: dict[str, Any] = Field(default_factory=dict)
    global_tokens: Optional[dict[str, Any]] = None
    merge: Any = None


def _default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="accuracy", mode="max"), ObjectiveSpec(metric="gflops", mode="min")]


class SearchSpace(_Strict):
    name: str
    description: str = ""
    seed: Optional[int] = None
    task: TaskConfig = Field(default_factory=TaskConfig)  # a synthvid task or a dataset on disk
    objectives: list[ObjectiveSpec] = Field(default_factory=_default_objectives, min_length=2)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    constraints: ConstraintSpec = Field(default_factory=ConstraintSpec)
    seed_points: list[dict[str, Any]] = Field(default_factory=list)
    shared: dict[str, Any] = Field(default_factory=dict)
    num_stages: Any = None
    stem: dict[str, Any] = Field(default_factory=dict)
    head: dict[str, Any] = Field(default_factory=dict)
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


def _key(node: yaml.Node) -> Any:
    """A mapping key as safe_load gives it (int keys stay ints: ``stages: {1: ...}`` overrides by index)."""
    return int(node.value) if node.tag.endswith(":int") else node.value


def _node_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    """Record the 1-based line of every mapping key and sequence item, keyed by its path from the root."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = loc + (_key(key),)
            lines[child] = key.start_mark.line + 1
            _node_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _node_lines(item, loc + (i,), lines)


class _Located:
    """A parsed (possibly merged) document plus where every path in it came from: ``loc -> (file, line)``."""

    def __init__(self, file: str, origins: dict[Loc, tuple[str, int]]):
        self.file, self.origins = file, origins

    def where(self, loc: Loc) -> tuple[str, int | None]:
        loc = tuple(loc)
        while loc not in self.origins and loc:
            loc = loc[:-1]
        return self.origins.get(loc, (self.file, None))

    def line(self, loc: Loc) -> int | None:
        return self.where(loc)[1]

    def error(self, loc: Loc, message: str) -> SpaceError:
        file, line = self.where(loc)
        return SpaceError(file, line, _dotted(loc), message)


def _dotted(loc: Loc) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _read_yaml(path: Path, located: _Located | None, include_loc: Loc) -> tuple[Any, dict[Loc, tuple[str, int]]]:
    file = str(path)
    try:
        text = path.read_text()
    except OSError as err:
        if located is not None:  # a bad include names the including file's line
            raise located.error(include_loc, f"cannot read included file {file} ({err.strerror})") from None
        raise SpaceError(file, None, "", f"cannot read the file ({err.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpaceError(file, mark.line + 1 if mark else None, "",
                         f"not valid YAML: {getattr(err, 'problem', err)}") from None
    lines: dict[Loc, int] = {}
    if root is not None:
        _node_lines(root, (), lines)
    return data, {loc: (file, line) for loc, line in lines.items()}


def _subtree(origins: dict[Loc, tuple[str, int]], loc: Loc) -> dict[Loc, tuple[str, int]]:
    n = len(loc)
    return {k: v for k, v in origins.items() if k[:n] == loc}


def _merge(base: Any, over: Any, loc: Loc, bo: dict, oo: dict, out: dict, over_loc: _Located) -> Any:
    """Deep merge ``over`` onto ``base``: mappings key by key, a list replaced wholesale or, when ``over`` is a
    mapping of integer keys, item by item; ``out`` collects the origin of every resulting path."""
    if isinstance(base, dict) and isinstance(over, dict):
        result = {}
        out[loc] = oo.get(loc, bo.get(loc))
        for key, value in base.items():
            if key not in over:
                result[key] = value
                out.update(_subtree(bo, loc + (key,)))
        for key, value in over.items():
            if key in base:
                result[key] = _merge(base[key], value, loc + (key,), bo, oo, out, over_loc)
            else:
                result[key] = value
                out.update(_subtree(oo, loc + (key,)))
        return result
    if isinstance(base, list) and isinstance(over, dict) and over and all(isinstance(k, int) for k in over):
        result = list(base)
        out[loc] = oo.get(loc, bo.get(loc))
        covered = set(over)
        for i in range(len(base)):
            if i not in covered:
                out.update(_subtree(bo, loc + (i,)))
        for i, value in over.items():
            if not 0 <= i < len(base):
                raise over_loc.error(loc + (i,), f"index {i} overrides no item: the included list has "
                                                 f"{len(base)} item(s) (0..{len(base) - 1})")
            result[i] = _merge(base[i], value, loc + (i,), bo, oo, out, over_loc)
        return result
    out.update(_subtree(oo, loc))
    return over


def _load_with_includes(path: Path, stack: tuple[Path, ...] = (), parent: _Located | None = None,
                        parent_loc: Loc = ()) -> tuple[Any, dict[Loc, tuple[str, int]]]:
    """The document at ``path`` with its ``include:`` files merged underneath it (paths relative to it)."""
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in stack + (resolved,))
        raise parent.error(parent_loc, f"include cycle: {chain}")
    data, origins = _read_yaml(path, parent, parent_loc)
    if not isinstance(data, dict) or "include" not in data:
        return data, origins
    here = _Located(str(path), origins)
    includes = data.pop("include")
    items = [includes] if isinstance(includes, str) else includes
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise here.error(("include",), f"expected a file name or a list of file names, got {includes!r}")
    merged: Any = None
    merged_origins: dict[Loc, tuple[str, int]] = {}
    for j, name in enumerate(items):
        loc = ("include",) if isinstance(includes, str) else ("include", j)
        base, base_origins = _load_with_includes(path.parent / name, stack + (resolved,), here, loc)
        if not isinstance(base, dict):
            raise here.error(loc, f"included file {path.parent / name} must hold a mapping of space settings")
        if merged is None:
            merged, merged_origins = base, base_origins
        else:
            out: dict = {}
            merged = _merge(merged, base, (), merged_origins, base_origins, out, _Located(str(path.parent / name),
                                                                                         base_origins))
            merged_origins = out
    own = {k: v for k, v in origins.items() if not (k and k[0] == "include")}
    out = {}
    result = _merge(merged, data, (), merged_origins, own, out, here)
    out[()] = origins.get((), (str(path), 1))
    return result, out


def load_space(path: str | Path) -> SearchSpace:
    """Read and fully validate a space file (and its includes); every problem raises ``SpaceError`` naming the
    file, line and field."""
    path = Path(path)
    data, origins = _load_with_includes(path)
    return parse_space(data, _Located(str(path), origins))


def _apply_seed(data: dict) -> dict:
    """A top-level ``seed`` seeds the sampler and the task unless they set their own."""
    seed = data.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        return data
    data = dict(data)
    for key in ("sampler", "task"):
        section = data.get(key, {})
        if isinstance(section, dict) and "seed" not in section:
            data[key] = {**section, "seed": seed}
    return data


def parse_space(data: Any, located: _Located | None = None) -> SearchSpace:
    located = located or _Located("<dict>", {})
    if not isinstance(data, dict):
        raise located.error((), "expected a mapping of space settings at the top level")
    if "include" in data:
        raise located.error(("include",), "includes are resolved by load_space (from a file)")
    try:
        space = SearchSpace.model_validate({**_apply_seed(data), "source": located.file})
    except ValidationError as err:
        raise _translate(err, located) from None
    _check_settings(space, located)
    _check_templates(space, located)
    _check_seed_points(space, located)
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
        for arg in list(args):
            args += getattr(arg, "__args__", ())
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return []
    return [name for name in model.model_fields if name != "source"]


def _did_you_mean(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(a) for a in allowed], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _translate(err: ValidationError, located: _Located) -> SpaceError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1])
        return located.error(loc, f"unknown key{_did_you_mean(loc[-1], allowed)}; expected one of: "
                                  f"{', '.join(allowed)}")
    if kind == "missing":
        return located.error(loc, "required key is missing")
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        hint = _did_you_mean(first.get("input"), [s.strip(" '") for s in expected.replace(" or ", ",").split(",")])
        return located.error(loc, f"expected one of {expected}, got {first.get('input')!r}{hint}")
    return located.error(loc, f"{first['msg']}, got {first.get('input')!r}")


def _check_settings(space: SearchSpace, located: _Located) -> None:
    """Checks across fields of the settings (not the architecture template)."""
    seen: dict[str, int] = {}
    for i, obj in enumerate(space.objectives):
        want = METRIC_MODES[obj.metric]
        if obj.mode != want:
            raise located.error(("objectives", i, "mode"), f"{obj.metric} is better when smaller/larger: expected "
                                                          f"mode {want!r}, got {obj.mode!r}")
        if obj.metric in seen:
            raise located.error(("objectives", i, "metric"), f"{obj.metric!r} is already objective {seen[obj.metric]}")
        seen[obj.metric] = i
    if space.sampler.name == "costaware" and "name" in space.sampler.model_fields_set:  # the default falls back instead
        metrics = space.metric_names
        if costaware_objection(metrics) is not None:
            raise located.error(("sampler", "name"), f"the costaware sampler models accuracy and works out every other "
                                                     f"objective before training (any of "
                                                     f"{', '.join(PREDICTABLE_COSTS)}); the objectives here are "
                                                     f"{', '.join(metrics)}: name tpe, nsga2 or random instead")
    if space.sampler.population is not None and space.sampler.name != "nsga2":
        raise located.error(("sampler", "population"), f"only the nsga2 sampler has a population; "
                                                       f"sampler is {space.sampler.name!r}")


# ---------------------------------------------------------------------------------------------------- templates

_VALUE_FORMS = ("a literal, {choice: [...]}, {int: [lo, hi]}, {float: [lo, hi], log: true} or {shared: name}")


def _shared_ref(template: Any) -> str | None:
    if isinstance(template, dict) and "shared" in template:
        return template["shared"]
    return None


def _resolve(space: SearchSpace, template: Any, loc: Loc, located: _Located) -> tuple[Any, Loc]:
    """Follow a ``{shared: name}`` reference to the shared template (and its location, for errors there)."""
    if not isinstance(template, dict) or "shared" not in template:
        return template, loc
    name = template["shared"]
    if set(template) != {"shared"} or not isinstance(name, str):
        raise located.error(loc + ("shared",), f"expected {{shared: name}} alone, got {template!r}")
    if name not in space.shared:
        known = ", ".join(space.shared) or "none defined"
        raise located.error(loc + ("shared",), f"unknown shared value {name!r}{_did_you_mean(name, list(space.shared))}"
                                               f"; shared values: {known}")
    return space.shared[name], ("shared", name)


def _value_candidates(template: Any, loc: Loc, located: _Located) -> list[Any]:
    """Check a value template's form and return values worth validating (choices or range ends)."""
    if isinstance(template, Scalar) or template is None:
        return [template]
    if not isinstance(template, dict) or len({"choice", "int", "float"} & set(template)) != 1:
        raise located.error(loc, f"expected {_VALUE_FORMS}, got {template!r}")
    if "choice" in template:
        choices = template["choice"]
        if set(template) != {"choice"} or not isinstance(choices, list) or not choices \
                or not all(isinstance(c, Scalar) or c is None for c in choices):
            raise located.error(loc + ("choice",), "expected a non-empty list of numbers or strings")
        if len(set(map(repr, choices))) != len(choices):
            raise located.error(loc + ("choice",), f"repeated value in {choices}")
        return choices
    kind = "int" if "int" in template else "float"
    bounds = template[kind]
    extra = set(template) - {kind, "log", "step"}
    number = int if kind == "int" else (int, float)
    if extra or not isinstance(bounds, list) or len(bounds) != 2 \
            or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds) or bounds[0] > bounds[1]:
        raise located.error(loc + (kind,), f"expected [lo, hi] with lo <= hi ({kind}s), "
                                           f"optional log/step; got {template!r}")
    if kind == "float" and "step" in template:
        raise located.error(loc, "a float range takes log, not step (use {choice: [...]} for a few values)")
    step = template.get("step", 1)
    if kind == "int" and (not isinstance(step, int) or step < 1 or (template.get("log") and step != 1)):
        raise located.error(loc + ("step",), f"expected a positive integer step (1 with log), got {step!r}")
    if template.get("log") and bounds[0] <= 0:
        raise located.error(loc + (kind,), f"a log range needs lo > 0, got {bounds}")
    return list(bounds)


def _candidates(space: SearchSpace, template: Any, loc: Loc, located: _Located) -> tuple[list[Any], Loc]:
    template, loc = _resolve(space, template, loc, located)
    return _value_candidates(template, loc, located), loc


def _check_numbers(candidates: list[Any], loc: Loc, located: _Located, integer: bool, minimum: float = 0,
                   strict: bool = True) -> None:
    for value in candidates:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (value <= minimum if strict else value < minimum):
            want = "integers" if integer else "numbers"
            bound = f"positive {want}" if strict and minimum == 0 else \
                f"{want} {'>' if strict else '>='} {minimum:g}"
            raise located.error(loc, f"expected {bound}, got {value!r}")


def _kind_choice(template: Any, loc: Loc, located: _Located, what: str,
                 space: SearchSpace | None = None) -> tuple[dict[str, tuple[dict[str, Any], Loc]], str | None]:
    """``(kind -> (option templates, their location), shared name)`` for a mixer or merge position, in the
    forms "kind", {kind: {...}}, {choice: [kinds]}, {choice: {kind: {...}, ...}} and
    {shared: name, options: {kind: {...}}} (the kind sampled once as ``shared.<name>``)."""
    if isinstance(template, str):
        return {template: ({}, loc)}, None
    if isinstance(template, dict) and "shared" in template:
        extra = set(template) - {"shared", "options"}
        if extra:
            raise located.error(loc + (sorted(extra)[0],), f"a shared {what} takes only 'shared' and 'options'")
        name = template["shared"]
        options = template.get("options") or {}
        if not isinstance(options, dict):
            raise located.error(loc + ("options",), f"expected a mapping {what} name -> options, got {options!r}")
        if space is None:
            shared_template = None
        else:
            shared_template, _ = _resolve(space, {"shared": name}, loc, located)
        kinds = [shared_template] if isinstance(shared_template, str) else \
            (shared_template or {}).get("choice") if isinstance(shared_template, dict) else None
        if space is not None and not (isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)):
            raise located.error(("shared", name), f"a shared {what} must be a name or {{choice: [names]}}, "
                                                  f"got {shared_template!r}")
        kinds = kinds or list(options)
        for k in options:
            if k not in kinds:
                raise located.error(loc + ("options", k), f"{k!r} is not among shared.{name}'s choices {kinds}")
        return {k: (options.get(k) or {}, loc + ("options", k) if k in options else ("shared", name))
                for k in kinds}, name
    if isinstance(template, dict) and set(template) == {"choice"}:
        choice = template["choice"]
        if isinstance(choice, list) and choice and all(isinstance(k, str) for k in choice):
            return {k: ({}, loc + ("choice", i)) for i, k in enumerate(choice)}, None
        if isinstance(choice, dict) and choice:
            return {k: (v or {}, loc + ("choice", k)) for k, v in choice.items()}, None
        raise located.error(loc + ("choice",), f"expected a list of {what} names or a mapping name -> options")
    if isinstance(template, dict) and len(template) == 1:
        ((kind, opts),) = template.items()
        return {kind: (opts or {}, loc + (kind,))}, None
    raise located.error(loc, f"expected a {what} name, {{choice: [names]}}, {{choice: {{name: {{options}}}}}}, "
                             f"{{name: {{options}}}} or {{shared: name}}")


def _check_templates(space: SearchSpace, located: _Located) -> None:
    from explorer.blocks import get_mixer, mixer_names, parse_options  # imports torch: only after the schema passed

    for name, template in space.shared.items():
        if _shared_ref(template) is not None:
            raise located.error(("shared", name), "a shared value cannot refer to another shared value")
        _value_candidates(template, ("shared", name), located)
    if space.num_stages is not None:
        values, loc = _candidates(space, space.num_stages, ("num_stages",), located)
        _check_numbers(values, loc, located, True)
        for value in values:
            if value > len(space.stages):
                raise located.error(loc, f"{value} stages asked for, but only {len(space.stages)} stage "
                                         f"template(s) are written (expected 1..{len(space.stages)})")
    for field, value in space.stem.items():
        _candidates(space, value, ("stem", field), located)
    for i, stage in enumerate(space.stages):
        base: Loc = ("stages", i)
        for field, integer in (("depth", True), ("width", True), ("mlp_ratio", False)):
            values, loc = _candidates(space, getattr(stage, field), base + (field,), located)
            _check_numbers(values, loc, located, integer)
        for field, value in stage.down.items():
            values, loc = _candidates(space, value, base + ("down", field), located)
            if field in ("spatial_stride", "temporal_stride"):
                _check_numbers(values, loc, located, True)
        kinds, _ = _kind_choice(stage.mixer, base + ("mixer",), located, "mixer", space)
        for kind, (options, loc) in kinds.items():
            if kind not in mixer_names():
                raise located.error(loc, f"unknown mixer {kind!r}{_did_you_mean(kind, mixer_names())}; "
                                         f"known mixers: {', '.join(mixer_names())}")
            if not isinstance(options, dict):
                raise located.error(loc, f"expected a mapping of {kind} options, got {options!r}")
            allowed = list(get_mixer(kind).options.model_fields)
            for name, value in options.items():
                if name not in allowed:
                    raise located.error(loc + (name,), f"unknown option of mixer {kind!r}"
                                                       f"{_did_you_mean(name, allowed)}; expected one of: "
                                                       f"{', '.join(allowed)}")
                values, vloc = _candidates(space, value, loc + (name,), located)
                for candidate in values:
                    try:
                        parse_options(kind, {name: candidate})
                    except ValueError as err:
                        raise located.error(vloc, str(err).split(": ", 1)[-1]) from None
        if stage.global_tokens is not None:
            _check_global_tokens(space, stage.global_tokens, base + ("global_tokens",), located)
        if stage.merge is not None:
            _check_merge(space, stage.merge, base + ("merge",), located)
    if space.sampler.name == "grid":
        for name, template in param_templates(space).items():
            if isinstance(template, dict) and "choice" not in template:
                raise located.error(("sampler", "name"), f"the grid sampler needs choices only; {name} is a range")


def _check_global_tokens(space: SearchSpace, tokens: dict[str, Any], loc: Loc, located: _Located) -> None:
    for field in tokens:
        if field not in ("num", "width"):
            raise located.error(loc + (field,), f"unknown key{_did_you_mean(field, ['num', 'width'])}; "
                                                f"expected one of: num, width")
    if "num" not in tokens:
        raise located.error(loc, "global_tokens needs num (0..12 in Mobile-Former; 0 = no tokens)")
    values, vloc = _candidates(space, tokens["num"], loc + ("num",), located)
    _check_numbers(values, vloc, located, True, 0, strict=False)
    values, vloc = _candidates(space, tokens.get("width", 192), loc + ("width",), located)
    _check_numbers(values, vloc, located, True)


def _check_merge(space: SearchSpace, template: Any, loc: Loc, located: _Located) -> None:
    kinds, _ = _kind_choice(template, loc, located, "merge", space)
    for kind, (fields, kloc) in kinds.items():
        if kind not in MERGE_KINDS:
            raise located.error(kloc, f"unknown merge method {kind!r}{_did_you_mean(kind, list(MERGE_KINDS))}; "
                                      f"expected one of: {', '.join(MERGE_KINDS)}")
        if not isinstance(fields, dict) or (kind == "none" and fields):
            raise located.error(kloc, f"expected a mapping of {kind} fields ({', '.join(MERGE_FIELDS)})"
                                      if kind != "none" else "'none' takes no fields")
        for name, value in fields.items():
            if name not in MERGE_FIELDS:
                raise located.error(kloc + (name,), f"unknown merge field{_did_you_mean(name, list(MERGE_FIELDS))}; "
                                                    f"expected one of: {', '.join(MERGE_FIELDS)}")
            if name == "layers" and isinstance(value, list):
                _check_numbers(value, kloc + (name,), located, True, 0, strict=False)
                continue
            values, vloc = _candidates(space, value, kloc + (name,), located)
            if name in ("r", "layers"):  # a sampled layer is one block index (STTM merges in one block)
                _check_numbers(values, vloc, located, True, 0, strict=False)
            elif name in ("ratio", "temporal_ratio"):
                _check_numbers(values, vloc, located, False, 0, strict=False)
                if any(v >= 1 for v in values):
                    raise located.error(vloc, f"expected ratios in [0, 1), got {values}")


def _allowed_value(template: Any, value: Any) -> bool:
    if isinstance(template, Scalar):
        return value == template
    if "choice" in template:
        return any(value == c and type(value) is type(c) or (isinstance(c, float) and isinstance(value, int)
                                                               and value == c) for c in template["choice"])
    lo, hi = template["int"] if "int" in template else template["float"]
    if "int" in template:
        step = template.get("step", 1)
        return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi and (value - lo) % step == 0
    return isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi


def _describe(template: Any) -> str:
    if "choice" in template:
        return f"one of {template['choice']}"
    kind = "int" if "int" in template else "float"
    lo, hi = template[kind]
    step = f" in steps of {template['step']}" if template.get("step", 1) != 1 else ""
    return f"{'an integer' if kind == 'int' else 'a number'} in [{lo}, {hi}]{step}"


def _check_seed_points(space: SearchSpace, located: _Located) -> None:
    """Every key of a seed point is a sampled parameter and every value one it may take."""
    templates = param_templates(space)
    for i, point in enumerate(space.seed_points):
        for key, value in point.items():
            loc = ("seed_points", i, key)
            if key not in templates:
                raise located.error(loc, f"not a sampled parameter of this space{_did_you_mean(key, list(templates))}"
                                         f"; parameters: {', '.join(templates)}")
            if not _allowed_value(templates[key], value):
                raise located.error(loc, f"{value!r} is not allowed: expected {_describe(templates[key])}")


# ---------------------------------------------------------------------------------------------------- sampling


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
        ref = _shared_ref(template)
        if ref is None:
            return suggest(self.trial, name, template)
        if ref not in self.shared:
            self.shared[ref] = suggest(self.trial, f"shared.{ref}", self.space.shared[ref])
        return self.shared[ref]

    def kind(self, name: str, template: Any) -> tuple[str, dict[str, Any]]:
        kinds, shared = _kind_choice(template, (), _Located(self.space.source, {}), "", self.space)
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
    spec = {"input": task_input(space), "stem": s.mapping("stem", space.stem), "stages": stages,
            "drop_path_rate": space.drop_path_rate, **({"head": space.head} if space.head else {})}
    # mixer options completed by their defaults: the hash a run records is the one `explorer cost` shows
    return validate_arch(Arch.from_dict(spec, source=space.source))


def arch_from_params(space: SearchSpace, params: dict[str, Any]):
    """Replay sampled parameters (e.g. a Ray Tune config) into the Arch they stand for."""
    import optuna

    return sample_arch(space, optuna.trial.FixedTrial(params))


# ---------------------------------------------------------------------------------------------------- the space


def _stage_templates(space: SearchSpace, i: int, stage: StageTemplate) -> dict[str, Any]:
    located = _Located(space.source, {})
    out: dict[str, Any] = {f"s{i}.{f}": getattr(stage, f) for f in ("depth", "width", "mlp_ratio")}
    out.update({f"s{i}.down.{f}": v for f, v in stage.down.items()})
    kinds, shared = _kind_choice(stage.mixer, (), located, "mixer", space)
    if shared is None:
        out[f"s{i}.mixer"] = {"choice": list(kinds)} if len(kinds) > 1 else next(iter(kinds))
    for kind, (options, _) in kinds.items():
        out.update({f"s{i}.{kind}.{name}": value for name, value in options.items()})
    if stage.global_tokens is not None:
        out[f"s{i}.global_tokens.num"] = stage.global_tokens["num"]
        out[f"s{i}.global_tokens.width"] = stage.global_tokens.get("width", 192)
    if stage.merge is not None:
        kinds, shared = _kind_choice(stage.merge, (), located, "merge", space)
        if shared is None:
            out[f"s{i}.merge"] = {"choice": list(kinds)} if len(kinds) > 1 else next(iter(kinds))
        for kind, (fields, _) in kinds.items():
            out.update({f"s{i}.merge.{kind}.{f}": v for f, v in fields.items() if not isinstance(v, list)})
    return out


def param_templates(space: SearchSpace) -> dict[str, Any]:
    """Every sampled parameter's name and value template (choices or ranges), in sampling order; shared values
    appear once as ``shared.<name>``, and a stage value that refers to one is not a parameter itself."""
    out: dict[str, Any] = {"num_stages": space.num_stages} if space.num_stages is not None else {}
    out.update({f"stem.{f}": v for f, v in space.stem.items()})
    for i, stage in enumerate(space.stages):
        out.update(_stage_templates(space, i, stage))
    out.update({f"shared.{name}": template for name, template in space.shared.items()})
    if _shared_ref(space.num_stages) is not None:
        del out["num_stages"]
    return {k: v for k, v in out.items() if not isinstance(v, Scalar) and v is not None and _shared_ref(v) is None}


_templates = param_templates  # the earlier private name


def grid_space(space: SearchSpace) -> dict[str, list[Any]]:
    return {name: template["choice"] for name, template in param_templates(space).items()}


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
        ref = _shared_ref(template)
        if ref is not None:
            self.read.add(ref)
            return 1
        return _count(template)

    def kinds(self, template: Any, what: str) -> dict[str, int | None]:
        """Settings of each kind (mixer or merge method) that can be chosen, options included."""
        kinds, shared = _kind_choice(template, (), _Located(self.space.source, {}), what, self.space)
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
        mixers = [_product([n, merges if get_mixer(kind).layout == "set" else tokens])
                  for kind, n in self.kinds(stage.mixer, "mixer").items()]
        return _product(counts + [_sum(mixers)])

    def _tokens(self, tokens: dict[str, Any]) -> int | None:
        num = tokens["num"]
        if _shared_ref(num) is not None:
            self.read.add(num["shared"])
            return 1 if self.fixed[num["shared"]] == 0 else self.one(tokens.get("width", 192))
        width = self.one(tokens.get("width", 192))
        if width is None or _count(num) is None:
            return None
        zero = 1 if _allowed_value(num, 0) else 0  # no tokens: one setting, whatever the width
        return zero + (_count(num) - zero) * width


def _refs(template: Any) -> set[str]:
    if isinstance(template, dict):
        ref = _shared_ref(template)
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
        names = sorted(set().union(*(_refs(s.model_dump()) for s in used)) | _refs(space.stem)
                       | (_refs(space.num_stages) if space.num_stages is not None else set()))
        options = [_values(space, space.shared[n]) for n in names]
        if any(o is None for o in options):
            return None
        if math.prod(len(o) for o in options) > limit:
            raise ValueError(f"more than {limit} joint settings of the shared values {names}")
        stem = _product([1 if _shared_ref(v) else _count(v) for v in space.stem.values()])
        if stem is None:
            return None
        seen: set[tuple] = set()
        for combo in itertools.product(*options):
            fixed = dict(zip(names, combo))
            if _shared_ref(space.num_stages) is not None and fixed[space.num_stages["shared"]] != k:
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
    if _shared_ref(template) is not None:
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


# ---------------------------------------------------------------------------------------------------- inspect


def text_histogram(values: list[float], bins: int = 8, width: int = 40, fmt: str = "{:.4f}") -> list[str]:
    """Lines ``[lo, hi)  count  ####`` of a histogram (numpy bins), bars scaled to the fullest bin."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins)
    top = max(int(counts.max()), 1)
    return [f"  [{fmt.format(lo)}, {fmt.format(hi)}{']' if j == len(counts) - 1 else ')'}  {int(c):5d}  "
            f"{'#' * round(width * int(c) / top)}" for j, (lo, hi, c) in enumerate(zip(edges, edges[1:], counts))]


def sample_costs(space: SearchSpace, samples: int, seed: int = 0, progress: Any = None) -> dict[str, Any]:
    """Params and fvcore GFLOPs of ``samples`` random architectures (no training): ``{"archs": [...],
    "gflops": [...], "params_m": [...], "invalid": {reason: count}}``; equal architectures are costed once."""
    import warnings

    import optuna
    import torch

    from explorer.cost import count_flops, example_input
    from explorer.models import build

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: dict[str, Any] = {"archs": [], "gflops": [], "params_m": [], "invalid": {}}
    cache: dict[str, tuple[float, float]] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and leaves the other cores alone
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for n in range(samples):
                trial = study.ask()
                try:
                    arch = sample_arch(space, trial)
                    if arch.content_hash not in cache:
                        model = build(arch)
                        cache[arch.content_hash] = (count_flops(model, example_input(arch)) / 1e9,
                                                    sum(p.numel() for p in model.parameters()) / 1e6)
                    gflops, params_m = cache[arch.content_hash]
                    out["archs"].append(arch)
                    out["gflops"].append(gflops)
                    out["params_m"].append(params_m)
                except Exception as err:  # a combination the builder rejects is a finding, not a crash
                    reason = f"{type(err).__name__}: {err}"
                    out["invalid"][reason] = out["invalid"].get(reason, 0) + 1
                study.tell(trial, 0.0)
                if progress is not None:
                    progress(n + 1, samples)
    finally:
        torch.set_num_threads(threads)
    return out


def inspect_space(space: SearchSpace, samples: int = 300, seed: int = 0, show: int = 5,
                  progress: Any = None) -> list[str]:
    """The report of ``explorer inspect``: size, sampled parameters, a few architectures and the GFLOPs/params
    range of ``samples`` random ones as text histograms, with the invalid samples and their reasons."""
    size = space_size(space)
    templates = param_templates(space)
    lines = [f"space        {space.name} ({space.source})",
             f"parameters   {len(templates)} sampled: {', '.join(templates)}",
             f"size         {f'{size:,} distinct architectures' if size is not None else 'continuous'}"
             f"{'' if size is not None else ' (a float range is sampled)'}"]
    result = sample_costs(space, samples, seed, progress)
    archs = result["archs"]
    lines.append(f"samples      {len(archs)} of {samples} valid, {len({a.content_hash for a in archs})} distinct "
                 f"(random sampler, seed {seed}); the first {min(show, len(archs))}:")
    lines += [f"  {a.content_hash}  {a.summary()}" for a in archs[:show]]
    for key, label, fmt in (("gflops", "GFLOPs", "{:.4f}"), ("params_m", "params (M)", "{:.3f}")):
        values = result[key]
        if values:
            source = f"fvcore, input {_input_text(archs[0])}" if key == "gflops" else "trainable + frozen"
            lines.append(f"{label:12s} min {fmt.format(min(values))}  median {fmt.format(_median(values))}  "
                         f"max {fmt.format(max(values))}  ({source})")
            lines += text_histogram(values, fmt=fmt)
    limits = {"max_gflops": "gflops", "max_params_m": "params_m"}
    for name, key in limits.items():
        limit = getattr(space.constraints, name)
        if limit is not None and result[key]:
            over = sum(v > limit for v in result[key])
            lines.append(f"constraint   {name} {limit:g}: {over} of {len(result[key])} valid samples exceed it")
    invalid = sum(result["invalid"].values())
    lines.append(f"invalid      {invalid} of {samples}" + (":" if invalid else ""))
    lines += [f"  {count:4d}  {reason}" for reason, count in sorted(result["invalid"].items(), key=lambda kv: -kv[1])]
    return lines


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _input_text(arch: Any) -> str:
    i = arch.input
    return f"1x{i.in_chans}x{i.frames}x{i.resolution}x{i.resolution}"
