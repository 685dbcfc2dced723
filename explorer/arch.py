"""The architecture spec (`Arch`): one plain, frozen, serialisable description of a video backbone.

Everything in the explorer speaks this vocabulary: sampling produces an `Arch`, `models.build` turns it into an
`nn.Module`, cost and training take it, results store it, the report shows it and export writes it.

The module is deliberately free of torch (and of the mixer registry) so that it imports in milliseconds;
mixer-specific option checking happens in `explorer.models.validate_arch`, which knows the registry.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union


class ArchError(ValueError):
    """An invalid architecture spec; `path` names the offending field (e.g. ``stages[1].mixer.kind``)."""

    def __init__(self, path: str, message: str, source: str | None = None):
        self.path = path
        self.message = message
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{path or '<arch>'}: {message}")


@dataclass(frozen=True)
class InputSpec:
    """The clip the model eats: ``(B, in_chans, frames, resolution, resolution)``."""

    frames: int = 8
    resolution: int = 32
    in_chans: int = 3
    num_classes: int = 12


STEM_KINDS = ("conv", "frame_patch", "tubelet", "single_conv")
DOWN_KINDS = ("conv", "patch_merge", "none")
HEAD_POOLS = ("mean", "mobile_former")


@dataclass(frozen=True)
class StemSpec:
    """How clips become tokens; ``patch`` is the total spatial stride.

    - ``conv`` (PySlowFast, PosMLP-Video/MorphMLP): two stride-2 convs (patch 4) or one (patch 2);
      ``temporal_kernel``/``temporal_stride`` apply to the first conv (PosMLP-Video: 1/1, MorphMLP: 3/2).
    - ``frame_patch`` (Video-FocalNet): per-frame Conv2d patch×patch, stride patch, + LayerNorm.
    - ``tubelet`` (ViT): Conv3d temporal_kernel×patch×patch with stride temporal_stride×patch×patch, plus a
      learned position embedding when ``pos_embed``.
    - ``single_conv`` (Mobile-Former): one Conv3d (kt,3,3), stride (st,2,2), no bias, + BN + ReLU6 (patch 2).

    ``pos_embed``: a learned position embedding over the stem's output grid, for every kind.

    ``width``: the stem's output channels; 0 (default, left out of the serialised spec) = the first stage's
    width. A different width needs a first stage with ``down.kind = "none"`` whose first block resamples.
    """

    patch: int = 4
    temporal_kernel: int = 1
    temporal_stride: int = 1
    kind: str = "conv"
    pos_embed: bool = False
    width: int = field(default=0, metadata={"omit_default": True})


@dataclass(frozen=True)
class DownSpec:
    """Downsampling into a stage. ``conv``: a (ts,3,3) conv, stride (ts,ss,ss), padding (0,1,1), + LayerNorm
    (PySlowFast); ``patch_merge``: per-frame Conv2d ss×ss, stride ss, + LayerNorm (FocalNet); ``none``: no
    layer between the stages: the stage's first block takes the previous width and applies the strides itself
    (Mobile-Former's DnaBlock3; only mixers registered with ``resamples``). A ``none`` down on the first stage
    is honoured too (strides and width change from the stem), unlike the other kinds, which it ignores."""

    spatial_stride: int = 2
    temporal_stride: int = 1
    kind: str = "conv"


@dataclass(frozen=True)
class MixerSpec:
    """A token mixer looked up by ``kind`` in the mixer registry, with that mixer's own options."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:  # options is a dict: hash its canonical form instead
        return hash(_canonical_json(to_dict(self)))


@dataclass(frozen=True)
class GlobalTokensSpec:
    """Mobile-Former-style bridge: ``num`` global tokens of width ``width`` attached to a stage."""

    num: int = 6
    width: int = 192


MERGE_METHODS = ("tome", "sttm")


@dataclass(frozen=True)
class MergeSpec:
    """Token merging inside a set-layout stage (``docs/seed_blocks.md``, token merging).

    - ``tome``: bipartite soft matching in every block listed in ``layers`` (all blocks when None), removing
      ``r`` tokens per merging block, or ``ratio`` (≤ 0.5) of the tokens entering it; give exactly one.
    - ``sttm``: one spatial-then-temporal merge in the single block ``layers = [i]``; ``ratio`` of each frame's
      tokens is merged into meta tokens, then ``temporal_ratio`` (default 0.5) of the odd frames' groups into
      their match in the previous frame.
    - ``prop_attn``: proportional attention (log token size added to the logits) after merging.
    - ``size_weighted_pool``: the head averages tokens weighted by their size (ToMe's MAE/video models);
      False gives the plain token mean of timm's ViT.
    """

    method: str = "tome"
    r: Optional[int] = None
    ratio: Optional[float] = None
    layers: Optional[tuple[int, ...]] = None
    temporal_ratio: Optional[float] = None
    prop_attn: bool = True
    size_weighted_pool: bool = True


@dataclass(frozen=True)
class StageSpec:
    """``depth`` blocks at constant shape and ``width`` channels; ``down`` is applied before the stage
    (ignored for the first stage, which follows the stem)."""

    depth: int
    width: int
    mixer: MixerSpec
    mlp_ratio: float = 2.0
    down: DownSpec = field(default_factory=DownSpec)
    global_tokens: Optional[GlobalTokensSpec] = None
    merge: Optional[MergeSpec] = None


@dataclass(frozen=True)
class HeadSpec:
    """``pool = "mean"``: LayerNorm, mean over all tokens, dropout, linear classifier.

    ``pool = "mobile_former"`` (Mobile-Former's classifier; needs global tokens in the last stage): a last
    Mobile→Former bridge, 1×1×1 conv C→``expansion``·C + BN + ReLU6, mean over (T, H, W), hswish, concatenated
    with token z_0, Linear → ``hidden`` + BN1d + hswish, dropout, Linear → classes; ``groups`` > 1: channel
    shuffle, then the 1×1×1 conv in that many groups (Mobile-Former-26M). ``hidden``, ``expansion`` and
    ``groups`` are left out of the serialised spec at their defaults, so older specs keep their hashes.
    """

    pool: str = "mean"
    dropout: float = 0.0
    hidden: int = field(default=0, metadata={"omit_default": True})
    expansion: float = field(default=6.0, metadata={"omit_default": True})
    groups: int = field(default=1, metadata={"omit_default": True})


@dataclass(frozen=True)
class Arch:
    input: InputSpec
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head: HeadSpec = field(default_factory=HeadSpec)
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        check_arch(self)

    def __hash__(self) -> int:
        return hash(self.content_hash)

    @property
    def content_hash(self) -> str:
        """Stable 12-hex-digit hash of the canonical JSON: equal specs give equal hashes across processes."""
        return hashlib.sha256(_canonical_json(self.to_dict()).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def summary(self) -> str:
        """One line for tables and hover text, e.g. ``conv3d d2 w32 | posmlp_parallel d1 w64``."""
        return " | ".join(f"{s.mixer.kind} d{s.depth} w{s.width}{_merge_summary(s.merge)}" for s in self.stages)

    def replace(self, **changes: Any) -> "Arch":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "Arch":
        try:
            return _parse(cls, data, "")
        except ArchError as err:
            raise ArchError(err.path, err.message, source) from None

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Arch":
        return cls.from_dict(json.loads(text), source)

    @classmethod
    def from_file(cls, path: str | Path) -> "Arch":
        """Load a ``.json``, ``.yaml`` or ``.yml`` spec (an exported architecture or a hand-written one)."""
        import yaml

        path = Path(path)
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        if isinstance(data, dict) and "arch" in data and "stages" not in data:
            data = data["arch"]  # accept files that wrap the spec with metadata
        return cls.from_dict(data, source=str(path))


def _merge_summary(merge: Optional["MergeSpec"]) -> str:
    if merge is None:
        return ""
    amount = f"r{merge.r}" if merge.r is not None else f"ratio {merge.ratio:g}"
    return f" +{merge.method} {amount}"


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def to_dict(obj: Any) -> Any:
    """Dataclasses to plain dicts/lists (tuples become lists) for JSON/YAML."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("omit_default") and getattr(obj, f.name) == f.default)
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


@functools.lru_cache(maxsize=None)
def _type_hints(tp: type) -> dict[str, Any]:
    """The resolved field types of a spec dataclass (cached: resolving them costs more than parsing a spec)."""
    return typing.get_type_hints(tp)


def _parse(tp: Any, value: Any, path: str) -> Any:
    """Parse plain data into ``tp``, coercing ints to floats and naming the field of any mismatch."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _parse(options[0], value, path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ArchError(path, f"expected a mapping for {tp.__name__}, got {type(value).__name__}")
        hints = _type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ArchError(_join(path, unknown[0]), f"unknown field; expected one of {sorted(fields)}")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _parse(hints[name], value[name], _join(path, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ArchError(_join(path, name), "missing required field")
        return tp(**kwargs)
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ArchError(path, f"expected a list, got {type(value).__name__}")
        return tuple(_parse(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ArchError(path, f"expected a mapping, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArchError(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArchError(path, f"expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ArchError(path, f"expected a string, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ArchError(path, f"expected true/false, got {value!r}")
        return value
    raise ArchError(path, f"unsupported type {_type_name(tp)}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _positive(value: float, path: str) -> None:
    if value <= 0:
        raise ArchError(path, f"must be positive, got {value}")


# Far above every released model (the deepest stage: 18 blocks, Video-FocalNet-B; the widest: 1,024) and far below
# sizes that exhaust memory while the model is built: a depth of 1e8 grew `inspect` past 4.8 GB before failing
MAX_STAGE_DEPTH = 64
MAX_WIDTH = 8192
MAX_GLOBAL_TOKENS = 256
MAX_MLP_RATIO = 64  # releases use 2-4


def _at_most(value: float, limit: float, path: str) -> None:
    if value > limit:
        raise ArchError(path, f"must be at most {limit}, got {value}")


def check_arch(arch: Arch) -> None:
    """Structural checks that need no registry: positive sizes, strides dividing the grid, legal merges."""
    inp = arch.input
    for name in ("frames", "resolution", "in_chans", "num_classes"):
        _positive(getattr(inp, name), f"input.{name}")
    if arch.stem.kind not in STEM_KINDS:
        raise ArchError("stem.kind", f"expected one of {', '.join(STEM_KINDS)}, got {arch.stem.kind!r}")
    if arch.stem.kind == "conv" and arch.stem.patch not in (2, 4):
        raise ArchError("stem.patch", f"expected 2 or 4 for a conv stem, got {arch.stem.patch}")
    if arch.stem.kind == "single_conv" and arch.stem.patch != 2:
        raise ArchError(
            "stem.patch", f"a single_conv stem has one stride-2 conv: patch must be 2, got {arch.stem.patch}"
        )
    _positive(arch.stem.patch, "stem.patch")
    if arch.stem.kind == "frame_patch" and (arch.stem.temporal_kernel, arch.stem.temporal_stride) != (1, 1):
        raise ArchError("stem", "a frame_patch stem works per frame: temporal_kernel and temporal_stride must be 1")
    _positive(arch.stem.temporal_kernel, "stem.temporal_kernel")
    if arch.stem.width < 0:
        raise ArchError("stem.width", f"must be >= 0 (0: the first stage's width), got {arch.stem.width}")
    _at_most(arch.stem.width, MAX_WIDTH, "stem.width")
    _positive(arch.stem.temporal_stride, "stem.temporal_stride")
    if not arch.stages:
        raise ArchError("stages", "at least one stage is required")
    if not 0.0 <= arch.drop_path_rate < 1.0:
        raise ArchError("drop_path_rate", f"expected a value in [0, 1), got {arch.drop_path_rate}")
    if not 0.0 <= arch.head.dropout < 1.0:
        raise ArchError("head.dropout", f"expected a value in [0, 1), got {arch.head.dropout}")
    if arch.head.pool not in HEAD_POOLS:
        raise ArchError("head.pool", f"expected one of {', '.join(HEAD_POOLS)}, got {arch.head.pool!r}")
    if arch.head.pool == "mobile_former":
        _positive(arch.head.hidden, "head.hidden")
        _positive(arch.head.expansion, "head.expansion")
        _positive(arch.head.groups, "head.groups")
        last = arch.stages[-1].global_tokens if arch.stages else None
        if last is None or last.num < 1:
            raise ArchError("head.pool", "the mobile_former head reads token z_0: the last stage needs global_tokens")
    t, h = after_stem(arch)
    if t < 1 or h < 1 or inp.resolution % arch.stem.patch:
        raise ArchError(
            "stem",
            f"input {inp.frames}x{inp.resolution}² does not fit patch {arch.stem.patch}, "
            f"temporal stride {arch.stem.temporal_stride}",
        )
    for i, stage in enumerate(arch.stages):
        p = f"stages[{i}]"
        _positive(stage.depth, f"{p}.depth")
        _at_most(stage.depth, MAX_STAGE_DEPTH, f"{p}.depth")
        _positive(stage.width, f"{p}.width")
        _at_most(stage.width, MAX_WIDTH, f"{p}.width")
        _positive(stage.mlp_ratio, f"{p}.mlp_ratio")
        _at_most(stage.mlp_ratio, MAX_MLP_RATIO, f"{p}.mlp_ratio")
        if i > 0 or stage.down.kind == "none":
            if stage.down.kind not in DOWN_KINDS:
                raise ArchError(f"{p}.down.kind", f"expected one of {', '.join(DOWN_KINDS)}, got {stage.down.kind!r}")
            if stage.down.kind == "patch_merge" and stage.down.temporal_stride != 1:
                raise ArchError(f"{p}.down.temporal_stride", "patch_merge works per frame: must be 1")
            _positive(stage.down.spatial_stride, f"{p}.down.spatial_stride")
            _positive(stage.down.temporal_stride, f"{p}.down.temporal_stride")
            if h % stage.down.spatial_stride or t % stage.down.temporal_stride:
                raise ArchError(f"{p}.down", f"stride does not divide the {t}x{h}x{h} grid entering the stage")
            h //= stage.down.spatial_stride
            t //= stage.down.temporal_stride
        if stage.global_tokens is not None:
            _positive(stage.global_tokens.width, f"{p}.global_tokens.width")
            _at_most(stage.global_tokens.width, MAX_WIDTH, f"{p}.global_tokens.width")
            if stage.global_tokens.num < 0:
                raise ArchError(f"{p}.global_tokens.num", "must be >= 0")
            _at_most(stage.global_tokens.num, MAX_GLOBAL_TOKENS, f"{p}.global_tokens.num")
        if stage.merge is not None:
            _check_merge(stage.merge, stage.depth, f"{p}.merge")


def _check_merge(m: MergeSpec, depth: int, p: str) -> None:
    if m.method not in MERGE_METHODS:
        raise ArchError(f"{p}.method", f"expected one of {', '.join(MERGE_METHODS)}, got {m.method!r}")
    if (m.r is None) == (m.ratio is None):
        raise ArchError(p, "give exactly one of r (tokens removed per merging block) or ratio")
    if m.r is not None:
        if m.method == "sttm":
            raise ArchError(f"{p}.r", "sttm merges a fraction of each frame's tokens: give ratio instead of r")
        if m.r < 0:
            raise ArchError(f"{p}.r", f"must be >= 0, got {m.r}")
    if m.ratio is not None:
        # ToMe's bipartite split can remove at most half the tokens per block; STTM keeps >= 1 token per frame
        ok, allowed = (m.ratio <= 0.5, "[0, 0.5]") if m.method == "tome" else (m.ratio < 1.0, "[0, 1)")
        if m.ratio < 0 or not ok:
            raise ArchError(f"{p}.ratio", f"expected a value in {allowed} for {m.method}, got {m.ratio}")
    if m.temporal_ratio is not None:
        if m.method != "sttm":
            raise ArchError(f"{p}.temporal_ratio", "only sttm has a temporal merge; leave it unset for tome")
        if not 0.0 <= m.temporal_ratio <= 1.0:
            raise ArchError(f"{p}.temporal_ratio", f"expected a value in [0, 1], got {m.temporal_ratio}")
    if m.layers is not None:
        if not m.layers:
            raise ArchError(f"{p}.layers", "give at least one block index (or leave it unset for all blocks)")
        for j, layer in enumerate(m.layers):
            if not 0 <= layer < depth:
                raise ArchError(f"{p}.layers[{j}]", f"block index {layer} outside the stage's {depth} blocks")
        if len(set(m.layers)) != len(m.layers):
            raise ArchError(f"{p}.layers", f"repeated block index in {list(m.layers)}")
    if m.method == "sttm" and (m.layers is None or len(m.layers) != 1):
        raise ArchError(
            f"{p}.layers",
            "sttm merges once per stage (its meta tokens need the frame grid): give one block index, e.g. layers: [3]",
        )


def after_stem(arch: Arch) -> tuple[int, int]:
    s = arch.stem
    if s.kind == "frame_patch":
        return arch.input.frames, arch.input.resolution // s.patch
    pad = s.temporal_kernel // 2 if s.kind in ("conv", "single_conv") else 0  # the tubelet conv is unpadded
    t = (arch.input.frames + 2 * pad - s.temporal_kernel) // s.temporal_stride + 1
    return t, arch.input.resolution // s.patch


def stage_grids(arch: Arch) -> list[tuple[int, int, int]]:
    """The (T, H, W) token grid each stage works on."""
    t, h = after_stem(arch)
    grids = []
    for i, stage in enumerate(arch.stages):
        if i > 0 or stage.down.kind == "none":
            h //= stage.down.spatial_stride
            t //= stage.down.temporal_stride
        grids.append((t, h, h))
    return grids
