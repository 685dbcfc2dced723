"""Reading a space: YAML with the line of every key, ``include:`` files merged underneath, schema errors turned
into ``SpaceError`` (file, line, field), and the checks across settings; the template checks live in templates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from explorer.metrics import METRIC_MODES, PREDICTABLE_COSTS
from explorer.space.errors import Loc, Located, SpaceError, did_you_mean, dotted
from explorer.space.schema import SearchSpace, costaware_objection
from explorer.space.templates import check_seed_points, check_templates


def _key(node: yaml.Node) -> Any:
    """A mapping key as safe_load gives it (int keys stay ints: ``stages: {1: ...}`` overrides by index)."""
    return int(node.value) if node.tag.endswith(":int") else node.value


# Limits of a space file: far above any real space, far below what exhausts a laptop
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 32
# includes resolve only under the top space file's folder, or under a folder this variable names (os.pathsep-separated):
# a space file from elsewhere must not read, or report on, any file of the machine
INCLUDE_PATH_ENV = "EXPLORER_INCLUDE_PATH"


class _Unsafe(Exception):
    """A structural problem of the YAML itself, at a 1-based line and a path."""

    def __init__(self, line: int, loc: Loc, message: str):
        super().__init__(message)
        self.line, self.loc, self.message = line, loc, message


# what plain YAML resolves to (SafeLoader's implicit tags); any other tag was written explicitly
_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}


def _node_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], seen: set[int] | None = None) -> None:
    """Record the 1-based line of every mapping key and sequence item, keyed by its path from the root.

    Refuses what a space never needs and an attacker would use: a key given twice in one mapping (YAML keeps the
    last one silently), anchors and aliases (a node met twice: an alias bomb expands exponentially), and nesting
    deeper than ``MAX_DEPTH``."""
    seen = set() if seen is None else seen
    line = node.start_mark.line + 1
    if id(node) in seen:
        raise _Unsafe(
            line,
            loc,
            "YAML anchors and aliases (&name, *name) are not supported in a space file; "
            "use shared: for a value used in several places",
        )
    seen.add(id(node))
    if node.tag not in _PLAIN_TAGS:  # !!python/object, !custom: a space file is plain data
        raise _Unsafe(line, loc, f"YAML tag {node.tag!r} is not supported in a space file (plain values only)")
    if len(loc) > MAX_DEPTH:
        raise _Unsafe(line, loc, f"nested deeper than {MAX_DEPTH} levels")
    lines.setdefault(loc, line)
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            name = _key(key)
            child = loc + (name,)
            if name in first:
                raise _Unsafe(
                    key.start_mark.line + 1,
                    child,
                    f"duplicate key {name!r} (first given at line {first[name]}; YAML would keep only the last)",
                )
            first[name] = key.start_mark.line + 1
            lines[child] = key.start_mark.line + 1
            _node_lines(value, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _node_lines(item, loc + (i,), lines, seen)


def _read_text(path: Path) -> str:
    """The file's text, refusing what is not a small regular UTF-8 file (a device, a huge or binary file) without
    echoing any of its content."""
    if not path.is_file():
        raise OSError("not a regular file" if path.exists() else "it does not exist")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise OSError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise OSError("not a UTF-8 text file") from None


def _read_yaml(path: Path, located: Located | None, include_loc: Loc) -> tuple[Any, dict[Loc, tuple[str, int]]]:
    file = str(path)
    try:
        text = _read_text(path)
    except OSError as err:
        reason = err.strerror or str(err)
        if located is not None:  # a bad include names the including file's line
            raise located.error(include_loc, f"cannot read included file {file} ({reason})") from None
        raise SpaceError(file, None, "", f"cannot read the file ({reason})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpaceError(
            file, mark.line + 1 if mark else None, "", f"not valid YAML: {getattr(err, 'problem', err)}"
        ) from None
    except RecursionError:
        raise SpaceError(file, None, "", f"nested deeper than {MAX_DEPTH} levels") from None
    lines: dict[Loc, int] = {}
    if root is not None:
        try:
            _node_lines(root, (), lines)
        except _Unsafe as err:
            raise SpaceError(file, err.line, dotted(err.loc), err.message) from None
    data = yaml.safe_load(text)  # safe now: no aliases, no duplicate keys, bounded depth
    return data, {loc: (file, line) for loc, line in lines.items()}


def _subtree(origins: dict[Loc, tuple[str, int]], loc: Loc) -> dict[Loc, tuple[str, int]]:
    n = len(loc)
    return {k: v for k, v in origins.items() if k[:n] == loc}


def _merge(base: Any, over: Any, loc: Loc, bo: dict, oo: dict, out: dict, over_loc: Located) -> Any:
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
                raise over_loc.error(
                    loc + (i,),
                    f"index {i} overrides no item: the included list has {len(base)} item(s) (0..{len(base) - 1})",
                )
            result[i] = _merge(base[i], value, loc + (i,), bo, oo, out, over_loc)
        return result
    out.update(_subtree(oo, loc))
    return over


def include_roots(space_file: Path) -> tuple[Path, ...]:
    """The folders includes may resolve into: the top space file's folder, then those of ``$EXPLORER_INCLUDE_PATH``."""
    extra = [Path(p).resolve() for p in os.environ.get(INCLUDE_PATH_ENV, "").split(os.pathsep) if p]
    return (space_file.parent.resolve(), *extra)


def _check_include(here: Located, loc: Loc, target: Path, roots: tuple[Path, ...]) -> None:
    if not any(target.resolve().is_relative_to(root) for root in roots):
        raise here.error(
            loc,
            f"included file {target} is outside {roots[0]}: includes must stay under the space "
            f"file's folder (name other folders in ${INCLUDE_PATH_ENV})",
        )


def _load_with_includes(
    path: Path,
    stack: tuple[Path, ...] = (),
    parent: Located | None = None,
    parent_loc: Loc = (),
    roots: tuple[Path, ...] | None = None,
) -> tuple[Any, dict[Loc, tuple[str, int]]]:
    """The document at ``path`` with its ``include:`` files merged underneath it (paths relative to it)."""
    roots = include_roots(path) if roots is None else roots
    resolved = path.resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in stack + (resolved,))
        raise parent.error(parent_loc, f"include cycle: {chain}")
    data, origins = _read_yaml(path, parent, parent_loc)
    if not isinstance(data, dict) or "include" not in data:
        return data, origins
    here = Located(str(path), origins)
    includes = data.pop("include")
    items = [includes] if isinstance(includes, str) else includes
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise here.error(("include",), f"expected a file name or a list of file names, got {includes!r}")
    merged: Any = None
    merged_origins: dict[Loc, tuple[str, int]] = {}
    for j, name in enumerate(items):
        loc = ("include",) if isinstance(includes, str) else ("include", j)
        _check_include(here, loc, path.parent / name, roots)
        base, base_origins = _load_with_includes(path.parent / name, stack + (resolved,), here, loc, roots)
        if not isinstance(base, dict):
            raise here.error(loc, f"included file {path.parent / name} must hold a mapping of space settings")
        if merged is None:
            merged, merged_origins = base, base_origins
        else:
            out: dict = {}
            merged = _merge(
                merged, base, (), merged_origins, base_origins, out, Located(str(path.parent / name), base_origins)
            )
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
    return parse_space(data, Located(str(path), origins))


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


def parse_space(data: Any, located: Located | None = None) -> SearchSpace:
    located = located or Located("<dict>", {})
    if not isinstance(data, dict):
        raise located.error((), "expected a mapping of space settings at the top level")
    if "include" in data:
        raise located.error(("include",), "includes are resolved by load_space (from a file)")
    try:
        space = SearchSpace.model_validate({**_apply_seed(data), "source": located.file})
    except ValidationError as err:
        raise _translate(err, located) from None
    _check_settings(space, located)
    check_templates(space, located)
    check_seed_points(space, located)
    return space


def read_located(path: str | Path) -> tuple[Any, Located]:
    """A YAML file without includes (a study file), with the file and line of every value, refused like a space
    file when it is unreadable, unsafe or not YAML."""
    data, origins = _read_yaml(Path(path), None, ())
    return data, Located(str(path), origins)


def validation_error(err: ValidationError, located: Located, model: type[BaseModel]) -> SpaceError:
    """A pydantic error of ``model`` as a SpaceError naming the file, line and field (what a space gets)."""
    return _translate(err, located, model)


def _allowed_fields(loc: Loc, root: type[BaseModel] = SearchSpace) -> list[str]:
    """The keys allowed at a path of the schema (to list them after an unknown key)."""
    model: Any = root
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


def _translate(err: ValidationError, located: Located, root: type[BaseModel] = SearchSpace) -> SpaceError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1], root)
        return located.error(loc, f"unknown key{did_you_mean(loc[-1], allowed)}; expected one of: {', '.join(allowed)}")
    if kind == "missing":
        return located.error(loc, "required key is missing")
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        hint = did_you_mean(first.get("input"), [s.strip(" '") for s in expected.replace(" or ", ",").split(",")])
        return located.error(loc, f"expected one of {expected}, got {first.get('input')!r}{hint}")
    if kind == "value_error":  # a validator's own sentence: it says what is wrong without echoing the input
        return located.error(loc, first["msg"].removeprefix("Value error, "))
    return located.error(loc, f"{first['msg']}, got {first.get('input')!r}")


def _check_settings(space: SearchSpace, located: Located) -> None:
    """Checks across fields of the settings (not the architecture template)."""
    dataset = space.task.dataset
    if dataset is not None and (missing := dataset.missing_paths()):
        raise located.error(("task", "dataset"), missing)
    seen: dict[str, int] = {}
    for i, obj in enumerate(space.objectives):
        want = METRIC_MODES[obj.metric]
        if obj.mode != want:
            raise located.error(
                ("objectives", i, "mode"),
                f"{obj.metric} is better when smaller/larger: expected mode {want!r}, got {obj.mode!r}",
            )
        if obj.metric in seen:
            raise located.error(("objectives", i, "metric"), f"{obj.metric!r} is already objective {seen[obj.metric]}")
        seen[obj.metric] = i
    if space.sampler.name == "costaware" and "name" in space.sampler.model_fields_set:  # the default falls back instead
        metrics = space.metric_names
        if costaware_objection(metrics) is not None:
            raise located.error(
                ("sampler", "name"),
                f"the costaware sampler models accuracy and works out every other "
                f"objective before training (any of "
                f"{', '.join(PREDICTABLE_COSTS)}); the objectives here are "
                f"{', '.join(metrics)}: name tpe, nsga2 or random instead",
            )
    if space.sampler.population is not None and space.sampler.name != "nsga2":
        raise located.error(
            ("sampler", "population"), f"only the nsga2 sampler has a population; sampler is {space.sampler.name!r}"
        )
