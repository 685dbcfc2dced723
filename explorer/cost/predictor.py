"""Latency predictor: LatencyTable, model_units, predict and calibrate (Σ per-unit lookup-table latencies).

A model is cut into the units its forward pass runs one after another: the ``stem``, each downsampling layer, each
block of each stage, and the ``head`` (final norm, pooling, classifier). A unit's key names its role, its class and
mixer options, the shapes it receives and a digest of its module structure (so two units share a key only when
they compute the same thing on the same shapes); its entry is the median latency of that unit alone, called on the
inputs it receives inside the whole model. A model's predicted latency is the sum of its units' entries
(LUT-based prediction as in ProxylessNAS/FBNet). Tables are measured once per device (`explorer cost calibrate`)
and saved as JSON; a key missing from the table is measured on demand and added, so prediction never fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from explorer.arch import Arch
from explorer.cost.paths import default_table_path
from explorer.cost.timing import (
    REFERENCE_PRESET,
    check_device,
    example_input,
    latency_stats,
    pinned_threads,
    reference_ms,
    resolve_clock,
    summary,
    time_callable,
)

# 2: the head unit is the head alone (in version 1 tables it had come to time the whole model: their entries are
# dropped on load and measured again on demand)
TABLE_VERSION = 2
_SKIP_IN_DIGEST = ("DropPath", "Dropout", "Identity")  # no work at inference; differ only by rate


@dataclass
class LatencyTable:
    """Unit key → median latency (ms) on one device, with the conditions it was measured under."""

    device: str = "cpu"
    threads: int = 1
    entries: dict[str, float] = field(default_factory=dict)
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def scale(self) -> float:
        """Whole-model / Σ-units latency ratio fitted by ``calibrate`` (1 before): the glue between units and the
        colder caches of a whole forward pass, which no unit timed alone sees."""
        return float(self.meta.get("scale", 1.0))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "LatencyTable":
        """The table saved at ``path`` (an empty one bound to ``path`` when the file does not exist yet)."""
        path = Path(path)
        if not path.exists():
            return cls(device or "cpu", path=path)
        try:
            data = json.loads(path.read_text())
            current = data.get("version", 1) == TABLE_VERSION
            table = cls(
                data["device"],
                int(data["threads"]),
                {k: float(v) for k, v in data["entries"].items()} if current else {},
                path,
                data.get("meta", {}) if current else {},
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"{path}: not a latency table (expected JSON with device, threads, entries): {err}"
            ) from None
        if device is not None and table.device != device:
            raise ValueError(f"{path}: a table for device {table.device!r}, but {device!r} was asked for")
        return table

    @classmethod
    def default(cls, device: str = "cpu") -> "LatencyTable":
        return cls.load(default_table_path(device), device)

    def save(self, path: str | Path | None = None, merge: bool = True) -> Path:
        """Write the table atomically; with ``merge``, entries saved to the file meanwhile by other processes and
        missing here are kept (a recalibration from scratch passes ``merge=False``)."""
        path = Path(path) if path is not None else self.path
        if path is None:
            raise ValueError("this latency table has no file: pass a path to save it")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "w") as lock:
            # concurrent trials each add the units they measured: under the lock, keep what others saved meanwhile
            fcntl.flock(lock, fcntl.LOCK_EX)
            if merge:
                self._merge_saved(path)
            data = {
                "version": TABLE_VERSION,
                "device": self.device,
                "threads": self.threads,
                "meta": self.meta,
                "entries": dict(sorted(self.entries.items())),
            }
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)  # atomic: readers (who take no lock) never see half a table
        self.path = path
        return path

    def _merge_saved(self, path: Path) -> None:
        """Add the entries of the table file at ``path`` that this one lacks (same device and clock only)."""
        try:
            saved = LatencyTable.load(path, self.device)
        except ValueError:
            return  # an unreadable or other-device file is overwritten, as before
        if saved.meta.get("clock", "wall") == self.meta.get("clock", "wall"):
            for key, ms in saved.entries.items():
                self.entries.setdefault(key, ms)


@dataclass
class Unit:
    """One unit of a model's forward pass: its key and a call that runs it on the inputs it gets in the model."""

    key: str
    run: Callable[[], Any]


def _shapes(obj: Any) -> list:
    from torch.utils._pytree import tree_flatten

    leaves = tree_flatten(obj)[0]
    out = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor):
            out.append(list(leaf.shape))
        elif hasattr(leaf, "size") and isinstance(getattr(leaf, "size"), torch.Tensor):  # TokenState
            out.append(["state", list(leaf.size.shape), leaf.pos is not None, leaf.grid is None])
    return out


def _digest(module: nn.Module) -> str:
    """Structure of ``module``: every submodule's class and extra_repr (dropout/drop-path left out)."""
    parts = [
        f"{name}:{type(m).__name__}({m.extra_repr()})"
        for name, m in module.named_modules()
        if type(m).__name__ not in _SKIP_IN_DIGEST
    ]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]


def _key(role: str, label: str, module: nn.Module, args: Any, batch: int, threads: int) -> str:
    shapes = json.dumps(_shapes(args), separators=(",", ":"))
    return f"{role}|{label}|b{batch}|t{threads}|in={shapes}|#{_digest(module)}"


def model_units(model: nn.Module, x: torch.Tensor, threads: int = 1) -> list[Unit]:
    """The units of a ``VideoBackbone`` with the inputs each receives when the model runs on ``x`` (captured by
    forward pre-hooks during one forward pass)."""
    arch = model.arch
    labelled: list[tuple[str, str, nn.Module]] = [("stem", f"{arch.stem.kind}", model.stem)]
    for i, (down, stage, spec) in enumerate(zip(model.downs, model.stages, arch.stages)):
        if not isinstance(down, nn.Identity):
            labelled.append(("down", f"{spec.down.kind}", down))
        opts = json.dumps(spec.mixer.options, sort_keys=True, separators=(",", ":"))
        blocks = stage.blocks if hasattr(stage, "blocks") else list(stage)
        for j, block in enumerate(blocks):
            merge = ""
            if getattr(stage, "merge", None) is not None and str(j) in stage.mergers:
                m = stage.merge
                merge = f"|merge={m.method},r={m.r},ratio={m.ratio},tr={m.temporal_ratio}"
            labelled.append(("block", f"{spec.mixer.kind}{opts}|mlp={spec.mlp_ratio}{merge}", block))
    captured: dict[int, tuple] = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, a, kw, i=i: captured.__setitem__(i, (a, kw)) or None, with_kwargs=True)
        for i, (_, _, m) in enumerate(labelled)
    ]
    try:
        with torch.inference_mode():
            head_in = model.forward_trunk(x)
    finally:
        for h in hooks:
            h.remove()
    batch = x.shape[0]
    units = []
    for i, (role, label, module) in enumerate(labelled):
        args, kwargs = captured[i]
        units.append(
            Unit(
                _key(role, label, module, (args, kwargs), batch, threads),
                lambda m=module, a=args, kw=kwargs: m(*a, **kw),
            )
        )
    # the head is what forward() does after the trunk: forward_head on the trunk's captured output
    head_mods = nn.ModuleList([m for m in (model.norm, model.head) if m is not None])
    label = f"{arch.head.pool}|merged={head_in[1] is not None and head_in[1].merged}"

    def run_head(model=model, head_in=head_in):
        features, state, tokens = head_in
        return model.forward_head(features, state=state, tokens=tokens)

    units.append(Unit(_key("head", label, head_mods, head_in, batch, threads), run_head))
    return units


def _measure_unit(unit: Unit, device: str, warmup: int, repeats: int, clock: str) -> float:
    times, _ = time_callable(unit.run, device, warmup, repeats, clock=clock)
    return summary(times)[0]


@dataclass
class Prediction:
    """A predicted latency: ``raw_ms`` = Σ entries of the units (``units``: (key, ms) each), ``total_ms`` = the
    table's ``scale`` × ``raw_ms``; ``measured`` lists the keys that were missing and measured on demand."""

    total_ms: float
    raw_ms: float
    units: list[tuple[str, float]]
    measured: list[str]


def _units_for(
    arch: Arch, model: nn.Module | None, device: str, threads: int, batch: int
) -> tuple[nn.Module, list[Unit]]:
    from explorer.models import build

    model = model if model is not None else build(arch)
    model.eval().to(device)
    return model, model_units(model, example_input(arch, batch).to(device), threads)


def _default_clock(device: str) -> str:
    return resolve_clock(device, None)


def table_clock(table: LatencyTable) -> str:
    """The clock the table's entries were timed with; a table without the record is from before clocks were
    recorded (wall), unless it is still empty, when it takes the device's default."""
    if "clock" not in table.meta:
        table.meta["clock"] = "wall" if table.entries else _default_clock(table.device)
    return table.meta["clock"]


def predict(
    arch: Arch,
    device: str = "cpu",
    table: LatencyTable | None = None,
    model: nn.Module | None = None,
    threads: int = 1,
    batch: int = 1,
    warmup: int = 3,
    repeats: int = 15,
    save: bool = True,
    clock: str | None = None,
) -> Prediction:
    """Σ table[unit key] over the units of ``arch`` at ``batch``. Missing keys are measured now (``warmup`` +
    ``repeats`` calls of that unit, median) and added to the table, which is saved when it has a file. ``clock``
    (None: the one the table was calibrated with, else wall) times those units; see ``explorer.cost.time_callable``."""
    check_device(device)
    table = table if table is not None else LatencyTable.default(device)
    if table.device != device:
        raise ValueError(f"latency table for {table.device!r} cannot predict on {device!r}")
    table.threads = threads
    clock = clock or table_clock(table)
    was_training = model.training if model is not None else False
    model, units = _units_for(arch, model, device, threads, batch)
    measured = []
    try:
        with pinned_threads(threads), torch.inference_mode():
            for unit in units:
                if unit.key not in table.entries:
                    table.entries[unit.key] = _measure_unit(unit, device, warmup, repeats, clock)
                    measured.append(unit.key)
    finally:
        model.train(was_training)
    if measured and save and table.path is not None:
        table.save()
    parts = [(u.key, table.entries[u.key]) for u in units]
    raw = sum(ms for _, ms in parts)
    return Prediction(table.scale * raw, raw, parts, measured)


def calibrate(
    archs: list[Arch],
    device: str = "cpu",
    table: LatencyTable | None = None,
    threads: int = 1,
    batch: int = 1,
    repeats: int = 15,
    remeasure: bool = False,
    clock: str | None = None,
    progress: Callable[[int, int, int], None] | None = None,
) -> LatencyTable:
    """Measure every unit key of ``archs`` not yet in ``table`` (all of them with ``remeasure``, or when the table
    was timed with another ``clock``), fit the table's ``scale`` as the median of (whole-model latency / Σ unit
    entries) over ``archs``, and save it."""
    from explorer.models import build

    table = table if table is not None else LatencyTable.default(device)
    clock = clock or _default_clock(device)
    fresh = remeasure or table_clock(table) != clock  # entries timed with another clock don't add up
    if fresh:
        table.entries.clear()
    table.meta["clock"] = clock  # before the first unit: `predict` times the missing ones with the table's clock
    start = time.time()
    ratios = []
    for i, arch in enumerate(archs):
        model = build(arch)
        result = predict(
            arch, device, table, model=model, threads=threads, batch=batch, repeats=repeats, save=False, clock=clock
        )
        # whole model, 3 rounds of `repeats` runs (median): on a loaded machine one round is easily off by 20%
        rounds = [
            latency_stats(
                model, example_input(arch, batch), device, threads, repeats=repeats, max_rounds=1, clock=clock
            ).median_ms
            for _ in range(3)
        ]
        ratios.append(statistics.median(rounds) / result.raw_ms)
        if progress:
            progress(i + 1, len(archs), len(result.measured))
    if ratios:
        table.meta["scale"] = round(statistics.median(ratios), 4)
    table.meta.update(
        {
            "calibrated_archs": table.meta.get("calibrated_archs", 0) + len(archs),
            "torch": torch.__version__,
            "clock": clock,
            "seconds": round(time.time() - start, 1),
        }
    )
    if clock == "paired":  # the entries are in ms of the reference's quiet speed: keep which speed that was
        table.meta.update({"reference": REFERENCE_PRESET, "reference_ms": reference_ms(threads)})
    if table.path is not None:
        table.save(merge=not fresh)
    return table
