"""synthvid's configuration: SynthConfig, tasks, presets, class names, content hash, cache dir (no torch/numpy)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLASS_NAMES",
    "PRESETS",
    "PRIMITIVES",
    "TASKS",
    "SynthConfig",
    "content_hash",
    "default_cache_dir",
    "make_config",
    "task_class_names",
]


@dataclass(frozen=True)
class SynthConfig:
    """Every knob that changes the pixels; its hash (with the seed) identifies the dataset."""

    task: str = "trev"
    frames: int = 8
    resolution: int = 32
    n_train: int = 2000
    n_test: int = 500
    distractors: int = 1
    noise_sigma: float = 0.04
    pan: float = 0.5  # camera pan speed, px/frame
    leak: int = 0  # T-ord only: 1 = unequal event durations, a deliberate shortcut the leakage tests must catch
    version: int = 2  # bump when the generator changes (2: tasks A and T-ord retuned; T-rev and C pixels unchanged)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; allowed: {', '.join(TASKS)}")
        checks = {
            "frames": self.frames >= 2,
            "resolution": self.resolution >= 16,
            "n_train": self.n_train >= 1,
            "n_test": self.n_test >= 1,
            "distractors": self.distractors >= 0,
            "noise_sigma": self.noise_sigma >= 0.0,
            "pan": self.pan >= 0.0,
            "leak": self.leak in (0, 1),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid SynthConfig value(s) for {', '.join(bad)}: {self}")


TASKS: tuple[str, ...] = ("trev", "a", "c", "tord")

# docs/proxy_tasks.md, presets. `proxy` and `hard` add clips, clutter and noise; `hard` also doubles T and
# goes to 48 px, where T-ord's three slots are 5 frames long (2-frame hops, 3 rest frames: longer temporal range).
PRESETS: dict[str, SynthConfig] = {
    "smoke": SynthConfig(frames=8, resolution=32, n_train=384, n_test=192, distractors=0, noise_sigma=0.02, pan=0.0),
    "demo": SynthConfig(frames=8, resolution=32, n_train=2000, n_test=500, distractors=1, noise_sigma=0.04, pan=0.5),
    "proxy": SynthConfig(frames=8, resolution=32, n_train=4000, n_test=1000, distractors=2, noise_sigma=0.05, pan=0.5),
    "hard": SynthConfig(frames=16, resolution=48, n_train=5000, n_test=1000, distractors=3, noise_sigma=0.08, pan=1.0),
}

PRIMITIVES: tuple[str, ...] = ("translate_x", "translate_y", "rotate", "scale", "fade", "converge")
# Direction 0 ("+") is the forward track: moving right / down, rotating with increasing angle
# (clockwise on screen, y points down), growing, appearing, approaching. "-" is its reversal.
CLASS_NAMES: list[str] = [f"{p}{sign}" for p in PRIMITIVES for sign in ("+", "-")]
NUM_CLASSES = len(CLASS_NAMES)  # T-rev's; other tasks: `task_class_names`

# The class lists of tasks A, C and T-ord, here because `task_class_names` needs them; the rest of those tasks'
# constants live with their samplers (explorer/data/synthvid/sampling.py), the sprite bank in synthvid/scene.py.
SPRITE_NAMES: tuple[str, ...] = (
    "disk",
    "square",
    "triangle",
    "plus",
    "ring",
    "diamond",
    "L",
    "T",
    "half_disk",
    "arrow",
)
C_MOTIONS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1), (3, 0), (3, 1))  # task C: (primitive, dir)
TORD_OBJECTS = 3  # k exchangeable objects -> k! = 6 classes
TORD_PERMS: tuple[tuple[int, ...], ...] = tuple(__import__("itertools").permutations(range(TORD_OBJECTS)))


def make_config(task: str = "trev", preset: str = "demo", **overrides: object) -> SynthConfig:
    """Preset plus overrides, with values coerced to the field types so equal configs hash equal."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; allowed tasks: {', '.join(TASKS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; allowed presets: {', '.join(PRESETS)}")
    base = PRESETS[preset]
    allowed = [f.name for f in dataclasses.fields(SynthConfig) if f.name != "task"]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"unknown override(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    coerced = {name: _coerce(name, value, type(getattr(base, name))) for name, value in overrides.items()}
    return dataclasses.replace(base, task=task, **coerced)


def _coerce(name: str, value: object, kind: type) -> int | float:
    if isinstance(value, bool) or not _is_number(value):
        raise ValueError(f"override {name}={value!r} must be a number")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"override {name}={value!r} must be an integer")
        return int(value)
    return float(value)


def _is_number(value: object) -> bool:
    """int, float, or a numpy integer/floating scalar (numpy is loaded whenever such a value exists)."""
    if isinstance(value, (int, float)):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, (np.integer, np.floating))


def content_hash(config: SynthConfig, seed: int) -> str:
    """First 16 hex chars of sha256 over canonical JSON of (config, seed)."""
    payload = json.dumps(
        {"config": dataclasses.asdict(config), "seed": int(seed)}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def task_class_names(task: str) -> list[str]:
    """Class names of a synthvid task (their count is the task's number of classes)."""
    if task == "trev":
        return list(CLASS_NAMES)
    if task == "a":
        return list(SPRITE_NAMES)
    if task == "c":
        return [f"{PRIMITIVES[p]}{'+-'[d]}" for p, d in C_MOTIONS]
    if task == "tord":
        return ["".join("LMR"[i] for i in perm) for perm in TORD_PERMS]
    raise ValueError(f"unknown task {task!r}; allowed tasks: {', '.join(TASKS)}")


def default_cache_dir() -> Path:
    return Path(os.environ.get("EXPLORER_CACHE") or Path.home() / ".cache" / "video-explorer")
