"""The mixer registry: families register their blocks by name with a typed (pydantic) options schema.

The builder looks names up here, so adding a family never touches the builder. A registered factory builds one
whole *block* (mixer + its residual wiring + channel MLP if the family has one) for a stage's context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Literal

import torch.nn as nn
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# Rules an option states in its JSON schema (``json_schema_extra``) beside its pydantic checks, so that the space
# loader can check a written value from catalogue.json without importing torch. The options' validators and the
# block factories stay the authority; tests/blocks/test_catalogue.py checks that the schemas agree with them.
ODD_WHY = "must be odd for 'same' padding"
DIVIDES_WIDTH = {"x-divides": "width"}  # the factory raises InvalidCombination unless it divides the stage's width
_SCHEMA_KEYS = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "not")
_SCHEMA_KEYS += ("x-why", "x-divides")


def option_schema(prop: dict) -> dict:
    """An option's JSON schema without its prose (title, description, default): what a value must satisfy."""
    out = {k: v for k, v in prop.items() if k in _SCHEMA_KEYS}
    if "anyOf" in out:
        out["anyOf"] = [option_schema(p) for p in out["anyOf"]]
    return out


def _odd(k: int) -> int:
    if k % 2 == 0:
        raise ValueError(ODD_WHY)
    return k


# an option that must be odd (a kernel with 'same' padding): the validator, and the same rule in its JSON schema
OddInt = Annotated[int, AfterValidator(_odd), Field(json_schema_extra={"not": {"multipleOf": 2}, "x-why": ODD_WHY})]


class MixerOptions(BaseModel):
    """Base of every mixer's options: unknown keys are errors, values are checked and coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class BlockContext:
    """What a block factory needs to know about where it sits."""

    dim: int
    grid: tuple[int, int, int]  # (T, H, W) of the stage
    mlp_ratio: float
    drop_path: float
    tokens: tuple[int, int] = (0, 0)  # (M, d) global tokens the stage carries (Mobile-Former); M = 0: none
    # in_dim/stride are set only for a stage's first block after a ``down.kind = "none"`` (``resamples`` mixers)
    in_dim: int | None = None  # channels entering the block (None: ``dim``)
    stride: tuple[int, int, int] = (1, 1, 1)  # (temporal, spatial, spatial) stride the block applies
    index: int = 0  # position of the block in its stage

    @property
    def in_channels(self) -> int:
        return self.dim if self.in_dim is None else self.in_dim


class InvalidCombination(ValueError):
    """Options that are legal alone but not for this stage (e.g. a window that does not tile the grid)."""


BlockFactory = Callable[[BlockContext, MixerOptions], nn.Module]


@dataclass(frozen=True)
class MixerEntry:
    name: str
    options: type[MixerOptions]
    build: BlockFactory
    layout: Literal["grid", "set"]  # grid blocks map (B,T,H,W,C)->same; set blocks work on (B,N,C)
    doc: str
    resamples: bool = False  # the block honours BlockContext.in_dim/stride (so a stage may use down "none")


_REGISTRY: dict[str, MixerEntry] = {}


def register_mixer(
    name: str, options: type[MixerOptions], layout: Literal["grid", "set"] = "grid", resamples: bool = False
):
    """Decorator registering a block factory under ``name``; ``resamples``: its blocks change width and
    resolution themselves (``BlockContext.in_dim``/``stride``), so its stages may follow a ``down.kind`` none."""

    def wrap(build: BlockFactory) -> BlockFactory:
        if name in _REGISTRY:
            raise KeyError(f"mixer {name!r} registered twice")
        _REGISTRY[name] = MixerEntry(name, options, build, layout, (build.__doc__ or "").strip(), resamples)
        return build

    return wrap


_PRESETS: dict[str, Callable[[], dict]] = {}


def register_preset(name: str):
    """Decorator registering a named preset: a function returning the ``Arch`` in its plain dict form (blocks
    sit below ``explorer.arch`` and do not import it). Family files list their presets at the bottom."""

    def wrap(factory: Callable[[], dict]) -> Callable[[], dict]:
        if name in _PRESETS:
            raise KeyError(f"preset {name!r} registered twice")
        _PRESETS[name] = factory
        return factory

    return wrap


def preset_names() -> list[str]:
    return sorted(_PRESETS)


def preset_spec(name: str) -> dict:
    try:
        return _PRESETS[name]()
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}") from None


def preset_doc(name: str) -> str:
    """First line of a preset's docstring (for `explorer presets`)."""
    doc = (_PRESETS[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def mixer_names() -> list[str]:
    return sorted(_REGISTRY)


def get_mixer(name: str) -> MixerEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown mixer {name!r}; known mixers: {', '.join(mixer_names())}") from None


CATALOGUE = Path(__file__).with_name("catalogue.json")


def catalogue() -> dict[str, dict]:
    """Every registered mixer's layout and options (name → JSON schema of a valid value), as ``catalogue.json``
    holds them: the space loader reads that file to name an unknown mixer or option, and to check a written value,
    without importing torch (tests/blocks/test_catalogue.py keeps the file equal to the registry; ``python -m
    explorer.blocks`` rewrites it)."""
    out = {}
    for name, entry in sorted(_REGISTRY.items()):
        props = entry.options.model_json_schema()["properties"]
        out[name] = {
            "layout": entry.layout,
            "options": {o: option_schema(props[o]) for o in entry.options.model_fields},
        }
    return out


def write_catalogue() -> Path:
    CATALOGUE.write_text(json.dumps(catalogue(), indent=2) + "\n")
    return CATALOGUE


def parse_options(name: str, options: dict) -> MixerOptions:
    """Validate a mixer's options; raises ValueError with the field and what was expected."""
    entry = get_mixer(name)
    try:
        return entry.options(**options)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "options"
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(entry.options.model_fields)
            raise ValueError(f"{field}: unknown option of mixer {name!r}; expected one of: {allowed}") from None
        message = first["msg"].removeprefix("Value error, ")
        raise ValueError(f"{field}: {message} (got {first.get('input')!r})") from None
