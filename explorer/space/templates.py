"""Value templates (literals, choices, ranges, ``{shared: name}``) and mixer/merge templates: their forms, the
checks that name what is wrong, and ``param_templates``, the parameters a space samples."""

from __future__ import annotations

import functools
import math
from typing import Any

from explorer.arch import MAX_GLOBAL_TOKENS, MAX_MLP_RATIO, MAX_STAGE_DEPTH, MAX_WIDTH
from explorer.space.errors import Loc, Located, did_you_mean
from explorer.space.schema import MERGE_FIELDS, MERGE_KINDS, Scalar, SearchSpace, StageTemplate

_VALUE_FORMS = "a literal, {choice: [...]}, {int: [lo, hi]}, {float: [lo, hi], log: true} or {shared: name}"


def shared_ref(template: Any) -> str | None:
    if isinstance(template, dict) and "shared" in template:
        return template["shared"]
    return None


def _resolve(space: SearchSpace, template: Any, loc: Loc, located: Located) -> tuple[Any, Loc]:
    """Follow a ``{shared: name}`` reference to the shared template (and its location, for errors there)."""
    if not isinstance(template, dict) or "shared" not in template:
        return template, loc
    name = template["shared"]
    if set(template) != {"shared"} or not isinstance(name, str):
        raise located.error(loc + ("shared",), f"expected {{shared: name}} alone, got {template!r}")
    if name not in space.shared:
        known = ", ".join(space.shared) or "none defined"
        raise located.error(
            loc + ("shared",),
            f"unknown shared value {name!r}{did_you_mean(name, list(space.shared))}; shared values: {known}",
        )
    return space.shared[name], ("shared", name)


def _value_candidates(template: Any, loc: Loc, located: Located) -> list[Any]:
    """Check a value template's form and return values worth validating (choices or range ends)."""
    if isinstance(template, Scalar) or template is None:
        return [template]
    if not isinstance(template, dict) or len({"choice", "int", "float"} & set(template)) != 1:
        raise located.error(loc, f"expected {_VALUE_FORMS}, got {template!r}")
    if "choice" in template:
        choices = template["choice"]
        if (
            set(template) != {"choice"}
            or not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, Scalar) or c is None for c in choices)
        ):
            raise located.error(loc + ("choice",), "expected a non-empty list of numbers or strings")
        if len(set(map(repr, choices))) != len(choices):
            raise located.error(loc + ("choice",), f"repeated value in {choices}")
        return choices
    kind = "int" if "int" in template else "float"
    bounds = template[kind]
    extra = set(template) - {kind, "log", "step"}
    number = int if kind == "int" else (int, float)
    if (
        extra
        or not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
        or bounds[0] > bounds[1]
    ):
        raise located.error(
            loc + (kind,), f"expected [lo, hi] with lo <= hi ({kind}s), optional log/step; got {template!r}"
        )
    if kind == "float" and "step" in template:
        raise located.error(loc, "a float range takes log, not step (use {choice: [...]} for a few values)")
    step = template.get("step", 1)
    if kind == "int" and (not isinstance(step, int) or step < 1 or (template.get("log") and step != 1)):
        raise located.error(loc + ("step",), f"expected a positive integer step (1 with log), got {step!r}")
    if template.get("log") and bounds[0] <= 0:
        raise located.error(loc + (kind,), f"a log range needs lo > 0, got {bounds}")
    return list(bounds)


def _candidates(space: SearchSpace, template: Any, loc: Loc, located: Located) -> tuple[list[Any], Loc]:
    template, loc = _resolve(space, template, loc, located)
    return _value_candidates(template, loc, located), loc


def _check_numbers(
    candidates: list[Any],
    loc: Loc,
    located: Located,
    integer: bool,
    minimum: float = 0,
    strict: bool = True,
    maximum: float | None = None,
) -> None:
    for value in candidates:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float)) and math.isfinite(value)
        if isinstance(value, bool) or not ok or (value <= minimum if strict else value < minimum):
            want = "integers" if integer else "finite numbers"
            bound = f"positive {want}" if strict and minimum == 0 else f"{want} {'>' if strict else '>='} {minimum:g}"
            raise located.error(loc, f"expected {bound}, got {value!r}")
        if maximum is not None and value > maximum:  # the model builder's bounds (explorer.arch), said at load time
            raise located.error(loc, f"must be at most {maximum:g}, got {value!r}")


# the architecture's size bounds (explorer.arch), checked on every value a template can take
_STAGE_MAXIMA = {"depth": MAX_STAGE_DEPTH, "width": MAX_WIDTH, "mlp_ratio": MAX_MLP_RATIO}


def kind_choice(
    template: Any, loc: Loc, located: Located, what: str, space: SearchSpace | None = None
) -> tuple[dict[str, tuple[dict[str, Any], Loc]], str | None]:
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
        kinds = (
            [shared_template]
            if isinstance(shared_template, str)
            else (shared_template or {}).get("choice")
            if isinstance(shared_template, dict)
            else None
        )
        if space is not None and not (isinstance(kinds, list) and all(isinstance(k, str) for k in kinds)):
            raise located.error(
                ("shared", name), f"a shared {what} must be a name or {{choice: [names]}}, got {shared_template!r}"
            )
        kinds = kinds or list(options)
        for k in options:
            if k not in kinds:
                raise located.error(loc + ("options", k), f"{k!r} is not among shared.{name}'s choices {kinds}")
        return {
            k: (options.get(k) or {}, loc + ("options", k) if k in options else ("shared", name)) for k in kinds
        }, name
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
    raise located.error(
        loc,
        f"expected a {what} name, {{choice: [names]}}, {{choice: {{name: {{options}}}}}}, "
        f"{{name: {{options}}}} or {{shared: name}}",
    )


def check_templates(space: SearchSpace, located: Located) -> None:
    """Every template of ``space`` is well formed and every value it can take is in range. The mixer checks come
    last, as they need the block registry (which imports torch): every other mistake is named in a fraction of a
    second."""
    for name, template in space.shared.items():
        if shared_ref(template) is not None:
            raise located.error(("shared", name), "a shared value cannot refer to another shared value")
        _value_candidates(template, ("shared", name), located)
    if space.num_stages is not None:
        values, loc = _candidates(space, space.num_stages, ("num_stages",), located)
        _check_numbers(values, loc, located, True)
        for value in values:
            if value > len(space.stages):
                raise located.error(
                    loc,
                    f"{value} stages asked for, but only {len(space.stages)} stage "
                    f"template(s) are written (expected 1..{len(space.stages)})",
                )
    for field, value in space.stem.items():
        _candidates(space, value, ("stem", field), located)
    for i, stage in enumerate(space.stages):
        base: Loc = ("stages", i)
        for field, integer in (("depth", True), ("width", True), ("mlp_ratio", False)):
            values, loc = _candidates(space, getattr(stage, field), base + (field,), located)
            _check_numbers(values, loc, located, integer, maximum=_STAGE_MAXIMA[field])
        for field, value in stage.down.items():
            values, loc = _candidates(space, value, base + ("down", field), located)
            if field in ("spatial_stride", "temporal_stride"):
                _check_numbers(values, loc, located, True)
        kind_choice(stage.mixer, base + ("mixer",), located, "mixer", space)  # its form; the names come below
        if stage.global_tokens is not None:
            _check_global_tokens(space, stage.global_tokens, base + ("global_tokens",), located)
        if stage.merge is not None:
            _check_merge(space, stage.merge, base + ("merge",), located)
    if space.sampler.name == "grid":
        for name, template in param_templates(space).items():
            if isinstance(template, dict) and "choice" not in template:
                raise located.error(("sampler", "name"), f"the grid sampler needs choices only; {name} is a range")
    mixers = [
        kind_choice(stage.mixer, ("stages", i, "mixer"), located, "mixer", space)[0]
        for i, stage in enumerate(space.stages)
    ]
    for i, (stage, kinds) in enumerate(zip(space.stages, mixers)):  # names and values first, from the catalogue
        _check_mixer_names(kinds, located)  # (no torch) ...
        widths = _listed_values(space, stage.width, ("stages", i, "width"), located)
        _check_mixer_values(space, kinds, widths, located)
    from explorer.blocks import parse_options  # ... then by the options' own validators: this imports torch

    for kinds in mixers:
        for kind, (options, loc) in kinds.items():
            for name, value in options.items():
                values, vloc = _candidates(space, value, loc + (name,), located)
                for candidate in values:
                    try:
                        parse_options(kind, {name: candidate})
                    except ValueError as err:
                        raise located.error(vloc, str(err).split(": ", 1)[-1]) from None


@functools.cache
def mixer_catalogue() -> dict[str, dict]:
    """The registered mixers' option names and layouts, read from ``explorer/blocks/catalogue.json`` (kept equal
    to the registry by a test) so that a wrong mixer or option name is named without importing torch."""
    import json
    from pathlib import Path

    import explorer

    return json.loads((Path(explorer.__file__).parent / "blocks" / "catalogue.json").read_text())


def _check_mixer_names(kinds: dict[str, tuple[Any, Loc]], located: Located) -> None:
    known = mixer_catalogue()
    names = sorted(known)
    for kind, (options, loc) in kinds.items():
        if kind not in known:
            raise located.error(
                loc, f"unknown mixer {kind!r}{did_you_mean(kind, names)}; known mixers: {', '.join(names)}"
            )
        if not isinstance(options, dict):
            raise located.error(loc, f"expected a mapping of {kind} options, got {options!r}")
        allowed = known[kind]["options"]
        for name in options:
            if name not in allowed:
                raise located.error(
                    loc + (name,),
                    f"unknown option of mixer {kind!r}"
                    f"{did_you_mean(name, allowed)}; expected one of: "
                    f"{', '.join(allowed)}",
                )


def _listed_values(space: SearchSpace, template: Any, loc: Loc, located: Located) -> list[Any] | None:
    """Every value a template can take when it lists them (a literal or a choice); None for a range."""
    template, loc = _resolve(space, template, loc, located)
    if isinstance(template, dict) and "choice" not in template:
        return None
    return _value_candidates(template, loc, located)


def _check_mixer_values(
    space: SearchSpace, kinds: dict[str, tuple[Any, Loc]], widths: list[Any] | None, located: Located
) -> None:
    """Each written option value against its JSON schema in the catalogue (``explorer.blocks.registry``: type,
    bounds, choices, odd kernels), and an option the block needs to divide the stage's width (heads, groups)
    against the widths the stage can take: a value that divides none of them can never build."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    known = mixer_catalogue()
    for kind, (options, loc) in kinds.items():
        for name, template in options.items():
            schema = known[kind]["options"][name]
            validator = Draft202012Validator(schema)
            values, vloc = _candidates(space, template, loc + (name,), located)
            for value in values:
                error = best_match(validator.iter_errors(value))
                if error is not None:
                    why = schema.get("x-why") if error.validator == "not" else error.message
                    raise located.error(vloc, f"{why} (got {value!r})")
            listed = _listed_values(space, template, loc + (name,), located)
            if schema.get("x-divides") != "width" or listed is None or widths is None:
                continue
            for value in listed:
                if isinstance(value, int) and not any(isinstance(w, int) and w % value == 0 for w in widths):
                    said = ", ".join(map(str, widths))
                    raise located.error(
                        vloc, f"{kind} {name}: {value} divides none of the stage's widths ({said}), so it never builds"
                    )


def _check_global_tokens(space: SearchSpace, tokens: dict[str, Any], loc: Loc, located: Located) -> None:
    for field in tokens:
        if field not in ("num", "width"):
            raise located.error(
                loc + (field,), f"unknown key{did_you_mean(field, ['num', 'width'])}; expected one of: num, width"
            )
    if "num" not in tokens:
        raise located.error(loc, "global_tokens needs num (0..12 in Mobile-Former; 0 = no tokens)")
    values, vloc = _candidates(space, tokens["num"], loc + ("num",), located)
    _check_numbers(values, vloc, located, True, 0, strict=False, maximum=MAX_GLOBAL_TOKENS)
    values, vloc = _candidates(space, tokens.get("width", 192), loc + ("width",), located)
    _check_numbers(values, vloc, located, True, maximum=MAX_WIDTH)


def _check_merge(space: SearchSpace, template: Any, loc: Loc, located: Located) -> None:
    kinds, _ = kind_choice(template, loc, located, "merge", space)
    for kind, (fields, kloc) in kinds.items():
        if kind not in MERGE_KINDS:
            raise located.error(
                kloc,
                f"unknown merge method {kind!r}{did_you_mean(kind, list(MERGE_KINDS))}; "
                f"expected one of: {', '.join(MERGE_KINDS)}",
            )
        if not isinstance(fields, dict) or (kind == "none" and fields):
            raise located.error(
                kloc,
                f"expected a mapping of {kind} fields ({', '.join(MERGE_FIELDS)})"
                if kind != "none"
                else "'none' takes no fields",
            )
        for name, value in fields.items():
            if name not in MERGE_FIELDS:
                raise located.error(
                    kloc + (name,),
                    f"unknown merge field{did_you_mean(name, list(MERGE_FIELDS))}; "
                    f"expected one of: {', '.join(MERGE_FIELDS)}",
                )
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


def allowed_value(template: Any, value: Any) -> bool:
    if isinstance(template, Scalar):
        return value == template
    if "choice" in template:
        return any(
            value == c and type(value) is type(c) or (isinstance(c, float) and isinstance(value, int) and value == c)
            for c in template["choice"]
        )
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


def check_seed_points(space: SearchSpace, located: Located) -> None:
    """Every key of a seed point is a sampled parameter and every value one it may take."""
    templates = param_templates(space)
    for i, point in enumerate(space.seed_points):
        for key, value in point.items():
            loc = ("seed_points", i, key)
            if key not in templates:
                raise located.error(
                    loc,
                    f"not a sampled parameter of this space{did_you_mean(key, list(templates))}"
                    f"; parameters: {', '.join(templates)}",
                )
            if not allowed_value(templates[key], value):
                raise located.error(loc, f"{value!r} is not allowed: expected {_describe(templates[key])}")


def _stage_templates(space: SearchSpace, i: int, stage: StageTemplate) -> dict[str, Any]:
    located = Located(space.source, {})
    out: dict[str, Any] = {f"s{i}.{f}": getattr(stage, f) for f in ("depth", "width", "mlp_ratio")}
    out.update({f"s{i}.down.{f}": v for f, v in stage.down.items()})
    kinds, shared = kind_choice(stage.mixer, (), located, "mixer", space)
    if shared is None:
        out[f"s{i}.mixer"] = {"choice": list(kinds)} if len(kinds) > 1 else next(iter(kinds))
    for kind, (options, _) in kinds.items():
        out.update({f"s{i}.{kind}.{name}": value for name, value in options.items()})
    if stage.global_tokens is not None:
        out[f"s{i}.global_tokens.num"] = stage.global_tokens["num"]
        out[f"s{i}.global_tokens.width"] = stage.global_tokens.get("width", 192)
    if stage.merge is not None:
        kinds, shared = kind_choice(stage.merge, (), located, "merge", space)
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
    if shared_ref(space.num_stages) is not None:
        del out["num_stages"]
    return {k: v for k, v in out.items() if not isinstance(v, Scalar) and v is not None and shared_ref(v) is None}
