"""synthvid: procedural, seedable synthetic video for proxy training.

Tasks (docs/proxy_tasks.md, tasks), all on one scene model (smooth colour background, integer camera pan,
blob distractors under and over the targets, pixel noise): ``trev`` (below), ``a`` (appearance: which of 10
procedural sprites bounces around, 10 classes; since generator version 2 the sprite is large, near-upright and has a
dark rim, so a per-frame model learns it in a few epochs), ``c`` (compositional: 6 reversal-paired motions of 4
asymmetric sprites; 8 of the 24 (shape, motion) combinations appear only in the test split) and ``tord`` (event
order: three copies of one sprite at fixed left/middle/right places hop one after another, 2 frames each, in
equal-length slots, over a still camera and still distractors; class = the order, 6 classes, frame-order-agnostic
bound = chance). scikit-learn is not installed here, so sprites are procedural only (no bundled digits).

Task T-rev ("reversal pairs", docs/proxy_tasks.md, tasks): six motion primitives, each in a
forward and an exactly time-reversed version -> 12 classes. Class ``2p + 1`` is produced by
reversing the time axis of the target objects' parameter tracks of class ``2p``, and every
nuisance (start state, background, camera pan, distractors, noise) is reversal-symmetric, so a
frame-order-agnostic model can name the primitive but is at chance on the direction
(bound 50 %, chance 1/12).

Rendering is split from sampling so the reversal property can be tested directly:
``sample_targets`` draws parameter tracks, ``ObjectTrack.time_reversed`` flips them, and
``render_scene`` turns tracks into pixels frame by frame (each frame depends only on that
frame's parameters, so reversed tracks render to the reversed video, bit for bit).

Speed: every object layer is rendered into a small patch around the object (one batched
``grid_sample`` on a sprite atlas for all clips and frames of a batch), alpha-composited into
the canvas with flat index gather/scatter; camera pan is integer and done by slicing a larger
background.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CLASS_NAMES",
    "PRESETS",
    "PRIMITIVES",
    "TASKS",
    "ObjectTrack",
    "ProxyData",
    "Scene",
    "SynthConfig",
    "class_counts",
    "content_hash",
    "default_cache_dir",
    "generate_arrays",
    "load_task",
    "make_config",
    "render_primitive_batch",
    "render_scene",
    "sample_targets",
    "task_class_names",
    "tord_schedule",
]


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


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
    "smoke": SynthConfig(frames=8, resolution=32, n_train=384, n_test=192, distractors=0,
                         noise_sigma=0.02, pan=0.0),
    "demo": SynthConfig(frames=8, resolution=32, n_train=2000, n_test=500, distractors=1,
                        noise_sigma=0.04, pan=0.5),
    "proxy": SynthConfig(frames=8, resolution=32, n_train=4000, n_test=1000, distractors=2,
                         noise_sigma=0.05, pan=0.5),
    "hard": SynthConfig(frames=16, resolution=48, n_train=5000, n_test=1000, distractors=3,
                        noise_sigma=0.08, pan=1.0),
}

PRIMITIVES: tuple[str, ...] = ("translate_x", "translate_y", "rotate", "scale", "fade", "converge")
# Direction 0 ("+") is the forward track: moving right / down, rotating with increasing angle
# (clockwise on screen, y points down), growing, appearing, approaching. "-" is its reversal.
CLASS_NAMES: list[str] = [f"{p}{sign}" for p in PRIMITIVES for sign in ("+", "-")]
NUM_CLASSES = len(CLASS_NAMES)  # T-rev's; other tasks: `task_class_names`

# Scene constants (fractions of the canvas side unless noted). Part of generator `version`.
TARGET_RADIUS = (0.14, 0.20)  # sprite radius; sprites fit inside their unit disk
PAIR_RADIUS = (0.10, 0.14)  # the two objects of `converge` are smaller so both fit
DISTRACTOR_RADIUS = (0.11, 0.17)
TRAVEL = (0.30, 0.50)  # translate / converge path length over the clip
ROTATE_DEG_PER_FRAME = (45.0, 90.0)  # far from 180 deg, where the rotation sense would alias
SCALE_RANGE = (0.5, 2.0)  # scale primitive: radius x0.5 -> x2 (geometric)
WALK_STEP = 0.04  # distractor random-walk step std
WALK_TURN = 0.25  # distractor angle random-walk step std, radians
EDGE_SLACK = 0.7  # fraction of an object's radius allowed to leave the canvas


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
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"override {name}={value!r} must be a number")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"override {name}={value!r} must be an integer")
        return int(value)
    return float(value)


def content_hash(config: SynthConfig, seed: int) -> str:
    """First 16 hex chars of sha256 over canonical JSON of (config, seed)."""
    payload = json.dumps({"config": dataclasses.asdict(config), "seed": int(seed)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def class_counts(n: int, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Balanced counts: n // k per class, the remainder spread over the first classes."""
    counts = np.full(num_classes, n // num_classes, dtype=np.int64)
    counts[: n % num_classes] += 1
    return counts


# ----------------------------------------------------------------------------------------------
# Sprite bank (rasterised once, 4x super-sampled) and distractor blobs, packed into one atlas
# ----------------------------------------------------------------------------------------------

SPRITE_NAMES: tuple[str, ...] = ("disk", "square", "triangle", "plus", "ring", "diamond",
                                 "L", "T", "half_disk", "arrow")
ASYMMETRIC_SPRITES = (6, 7, 8, 9)  # no rotational symmetry -> rotation sense is visible
NUM_BLOBS = 6
SPRITE_PX = 24
ATLAS_PAD = 2  # zero border per cell so bilinear sampling never bleeds into a neighbour
SUPERSAMPLE = 4


def _shape_mask(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of one shape in sprite coords u (right), v (down), all within the unit disk."""
    r = np.hypot(u, v)
    au, av = np.abs(u), np.abs(v)
    if name == "disk":
        return r <= 0.8
    if name == "square":
        return (au <= 0.62) & (av <= 0.62)
    if name == "triangle":  # apex up, vertices on the radius-0.85 circle
        return (v <= 0.425) & (au <= (v + 0.85) * (0.736 / 1.275))
    if name == "plus":
        return ((au <= 0.25) & (av <= 0.8)) | ((av <= 0.25) & (au <= 0.8))
    if name == "ring":
        return (r >= 0.5) & (r <= 0.85)
    if name == "diamond":
        return au + av <= 0.85
    if name == "L":
        return ((u >= -0.6) & (u <= -0.2) & (av <= 0.7)) | ((au <= 0.6) & (v >= 0.3) & (v <= 0.7))
    if name == "T":
        return ((au <= 0.7) & (v >= -0.7) & (v <= -0.3)) | ((au <= 0.2) & (v >= -0.7) & (v <= 0.75))
    if name == "half_disk":
        return (r <= 0.85) & (v >= -0.15)
    if name == "arrow":
        shaft = (av <= 0.18) & (u >= -0.8) & (u <= 0.1)
        head = (u >= 0.1) & (u <= 0.8) & (av <= (0.8 - u) * 0.9)
        return shaft | head
    raise KeyError(name)


def _supersample_grid() -> tuple[np.ndarray, np.ndarray]:
    n = SPRITE_PX * SUPERSAMPLE
    c = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    return np.meshgrid(c, c, indexing="xy")  # u varies along columns, v along rows


def _downsample(mask: np.ndarray) -> np.ndarray:
    s = SUPERSAMPLE
    return mask.reshape(SPRITE_PX, s, SPRITE_PX, s).mean(axis=(1, 3))


def _blob_masks() -> list[np.ndarray]:
    """Irregular distractor blobs (thresholded sums of Gaussians), disjoint from the sprite bank.

    Fixed seed: the bank is part of the generator, not of the dataset seed.
    """
    rng = np.random.default_rng(20240611)
    u, v = _supersample_grid()
    blobs = []
    for _ in range(NUM_BLOBS):
        field = np.zeros_like(u)
        for _ in range(int(rng.integers(3, 6))):
            cu, cv = rng.uniform(-0.4, 0.4, size=2)
            s = rng.uniform(0.18, 0.32)
            field += np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / (2 * s * s))
        inside = (field >= 0.45 * field.max()) & (np.hypot(u, v) <= 0.95)
        blobs.append(_downsample(inside.astype(np.float64)))
    return blobs


@lru_cache(maxsize=1)
def sprite_atlas() -> torch.Tensor:
    """(1, 1, cell, cell * (10 + NUM_BLOBS)) float32 coverage atlas: sprites, then blobs."""
    u, v = _supersample_grid()
    masks = [_downsample(_shape_mask(name, u, v).astype(np.float64)) for name in SPRITE_NAMES]
    masks += _blob_masks()
    cell = SPRITE_PX + 2 * ATLAS_PAD
    atlas = np.zeros((cell, cell * len(masks)), dtype=np.float32)
    for i, m in enumerate(masks):
        atlas[ATLAS_PAD:ATLAS_PAD + SPRITE_PX, i * cell + ATLAS_PAD:i * cell + ATLAS_PAD + SPRITE_PX] = m
    return torch.from_numpy(atlas)[None, None]


# ----------------------------------------------------------------------------------------------
# Parameter tracks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectTrack:
    """One object layer for a batch of B clips over T frames (numpy, float32 unless noted)."""

    sprite: np.ndarray  # (B,) int64 index into the atlas
    colour: np.ndarray  # (B, 3) RGB in [0, 1]
    x: np.ndarray  # (B, T) centre, px from the left edge
    y: np.ndarray  # (B, T) centre, px from the top edge
    angle: np.ndarray  # (B, T) radians
    radius: np.ndarray  # (B, T) px
    opacity: np.ndarray  # (B, T) in [0, 1]

    def time_reversed(self, where: np.ndarray | None = None) -> ObjectTrack:
        """Reverse the time axis of all tracks (only for clips where `where` is True)."""
        mask = np.ones(len(self.sprite), dtype=bool) if where is None else np.asarray(where, bool)

        def flip(a: np.ndarray) -> np.ndarray:
            return np.where(mask[:, None], a[:, ::-1], a)

        return dataclasses.replace(self, x=flip(self.x), y=flip(self.y), angle=flip(self.angle),
                                   radius=flip(self.radius), opacity=flip(self.opacity))


@dataclass(frozen=True)
class Scene:
    """Everything `render_scene` needs for a batch of B clips."""

    background: torch.Tensor  # (B, Hb, Wb, 3) float32, Hb, Wb >= resolution
    crop: np.ndarray  # (B, T, 2) int64 top-left (row, col) of each frame's crop of the background
    layers: list[ObjectTrack]  # drawn back to front


def _vivid_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random saturated, bright RGB colours (HSV with s, v near 1)."""
    h = rng.uniform(0.0, 1.0, n)
    s = rng.uniform(0.75, 1.0, n)
    v = rng.uniform(0.85, 1.0, n)
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    rgb = v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return rgb.astype(np.float32)


def _centres(rng: np.random.Generator, half_x: np.ndarray, half_y: np.ndarray,
             size: int) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory centres uniform over the positions that keep the whole path (mostly) visible."""
    lo_x, lo_y = np.minimum(half_x, size / 2), np.minimum(half_y, size / 2)
    cx = rng.uniform(lo_x, size - lo_x)
    cy = rng.uniform(lo_y, size - lo_y)
    return cx, cy


def _track(sprite: np.ndarray, colour: np.ndarray, x: np.ndarray, y: np.ndarray,
           angle: np.ndarray, radius: np.ndarray, opacity: np.ndarray, frames: int) -> ObjectTrack:
    n = len(sprite)

    def full(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, (n, frames)), dtype=np.float32)

    return ObjectTrack(sprite=sprite.astype(np.int64), colour=colour.astype(np.float32),
                       x=full(x), y=full(y), angle=full(angle), radius=full(radius),
                       opacity=full(opacity))


def sample_targets(primitive: int, n: int, config: SynthConfig,
                   rng: np.random.Generator) -> list[ObjectTrack]:
    """Forward (direction 0) target tracks of one primitive for n clips.

    Every track is centred on a random point in time as well as space (the path's midpoint, the
    mid-clip angle and scale are what is drawn), so its reversal is an equally likely draw.
    """
    size, frames = config.resolution, config.frames
    tau = np.linspace(-0.5, 0.5, frames, dtype=np.float64)[None, :]  # clip time, centred
    name = PRIMITIVES[primitive]
    angle0 = rng.uniform(0.0, 2 * math.pi, (n, 1))
    ones = np.ones((n, 1))

    if name == "converge":  # two objects approach until they touch
        sprites = rng.integers(0, len(SPRITE_NAMES), (2, n))
        colours = [_vivid_colours(rng, n), _vivid_colours(rng, n)]
        radii = rng.uniform(*PAIR_RADIUS, (2, n)) * size
        heading = rng.uniform(0.0, 2 * math.pi, n)
        near = 0.9 * (radii[0] + radii[1])
        far = near + rng.uniform(*TRAVEL, n) * size
        r_max = radii.max(axis=0)
        half_x = 0.5 * far * np.abs(np.cos(heading)) + EDGE_SLACK * r_max
        half_y = 0.5 * far * np.abs(np.sin(heading)) + EDGE_SLACK * r_max
        cx, cy = _centres(rng, half_x, half_y, size)
        dist = far[:, None] + (near - far)[:, None] * (tau + 0.5)
        ux, uy = np.cos(heading)[:, None], np.sin(heading)[:, None]
        spin = rng.uniform(0.0, 2 * math.pi, (2, n, 1))
        return [
            _track(sprites[i], colours[i], cx[:, None] + sgn * 0.5 * dist * ux,
                   cy[:, None] + sgn * 0.5 * dist * uy, spin[i], radii[i][:, None], ones, frames)
            for i, sgn in ((0, -1.0), (1, 1.0))
        ]

    pool = np.array(ASYMMETRIC_SPRITES) if name == "rotate" else np.arange(len(SPRITE_NAMES))
    sprite = pool[rng.integers(0, len(pool), n)]
    colour = _vivid_colours(rng, n)
    radius0 = rng.uniform(*TARGET_RADIUS, (n, 1)) * size
    travel = rng.uniform(*TRAVEL, (n, 1)) * size
    omega = np.deg2rad(rng.uniform(*ROTATE_DEG_PER_FRAME, (n, 1)))
    dx = dy = np.zeros((n, 1))
    angle, radius, opacity = angle0, radius0, ones
    if name == "translate_x":
        dx = travel * tau
    elif name == "translate_y":
        dy = travel * tau
    elif name == "rotate":
        angle = angle0 + omega * tau * (frames - 1)
    elif name == "scale":
        lo, hi = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
        radius = radius0 * np.exp(lo + (hi - lo) * (tau + 0.5))
    elif name == "fade":
        opacity = tau + 0.5
    r_max = radius.max(axis=1)
    half_x = np.abs(dx).max(axis=1) + EDGE_SLACK * r_max
    half_y = np.abs(dy).max(axis=1) + EDGE_SLACK * r_max
    cx, cy = _centres(rng, half_x, half_y, size)
    return [_track(sprite, colour, cx[:, None] + dx, cy[:, None] + dy, angle, radius, opacity, frames)]


@lru_cache(maxsize=16)
def _bicubic_matrix(coarse: int, side: int) -> torch.Tensor:
    """(side, coarse) bicubic up-sampling weights. The 2-D up-sample is separable, so two small
    matmuls per clip replace `F.interpolate` (several times faster, and channels-last for free)."""
    basis = torch.eye(coarse)[:, None, :, None]  # one 1-D unit impulse per coarse sample
    rows = F.interpolate(basis, size=(side, 1), mode="bicubic", align_corners=True)
    return rows[:, 0, :, 0].T.contiguous()


def sample_background(n: int, config: SynthConfig, rng: np.random.Generator) -> Scene:
    """Smooth random colour field plus a per-clip integer camera pan (no object layers yet).

    The pan direction is uniform on the circle and the path is centred on the middle frame, so
    a reversed pan is an equally likely pan.
    """
    size, frames = config.resolution, config.frames
    margin = int(math.ceil(config.pan * (frames - 1) / 2))
    side = size + 2 * margin
    coarse = torch.from_numpy(rng.uniform(0.2, 0.8, (n, 3, 4, 4)).astype(np.float32))
    detail = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 1, 8, 8)).astype(np.float32))
    up4, up8 = _bicubic_matrix(4, side), _bicubic_matrix(8, side)
    field = (torch.einsum("yi,ncij,xj->nyxc", up4, coarse, up4)
             + torch.einsum("yi,ncij,xj->nyxc", up8, detail, up8))  # detail is grey: broadcasts
    background = field.clamp_(0.0, 1.0).contiguous()

    heading = rng.uniform(0.0, 2 * math.pi, n)
    steps = np.arange(frames) - (frames - 1) / 2
    offset_x = np.rint(config.pan * steps[None, :] * np.cos(heading)[:, None])
    offset_y = np.rint(config.pan * steps[None, :] * np.sin(heading)[:, None])
    crop = (np.stack([offset_y, offset_x], axis=-1) + margin).astype(np.int64)
    return Scene(background=background, crop=crop, layers=[])


def sample_distractors(n: int, config: SynthConfig,
                       rng: np.random.Generator) -> tuple[list[ObjectTrack], list[ObjectTrack]]:
    """Blob random walks, each time-reversed with probability 1/2 (-> reversal-symmetric).

    Returns (below, above) layers: each distractor is drawn either under or over the targets
    (occlusion); the other copy has opacity 0 and costs nothing at composite time.
    """
    size, frames = config.resolution, config.frames
    below, above = [], []
    for _ in range(config.distractors):
        sprite = len(SPRITE_NAMES) + rng.integers(0, NUM_BLOBS, n)
        colour = _vivid_colours(rng, n)
        radius = rng.uniform(*DISTRACTOR_RADIUS, (n, 1)) * size
        start = rng.uniform(0.0, size, (n, 1, 2))
        steps = rng.normal(0.0, WALK_STEP * size, (n, frames - 1, 2))
        path = np.clip(start + np.concatenate([np.zeros((n, 1, 2)), steps.cumsum(axis=1)], axis=1),
                       0.0, size)
        angle = rng.uniform(0.0, 2 * math.pi, (n, 1)) + np.concatenate(
            [np.zeros((n, 1)), rng.normal(0.0, WALK_TURN, (n, frames - 1)).cumsum(axis=1)], axis=1)
        is_above = rng.random(n) < 0.5
        reverse = rng.random(n) < 0.5
        track = _track(sprite, colour, path[..., 0], path[..., 1], angle, radius,
                       np.ones((n, 1)), frames).time_reversed(reverse)
        below.append(dataclasses.replace(track, opacity=track.opacity * ~is_above[:, None]))
        above.append(dataclasses.replace(track, opacity=track.opacity * is_above[:, None]))
    return below, above


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _crop_background(scene: Scene, size: int) -> torch.Tensor:
    """(B*T*H*W, 3) canvas: each frame's integer-offset window of its clip's background."""
    bg = scene.background
    n, side_y, side_x, _ = bg.shape
    crop = torch.from_numpy(scene.crop)
    ar = torch.arange(size)
    rows = crop[..., 0, None] + ar  # (B, T, H)
    cols = crop[..., 1, None] + ar  # (B, T, W)
    clip = torch.arange(n)[:, None, None, None]
    flat = (clip * side_y + rows[..., :, None]) * side_x + cols[..., None, :]
    return bg.reshape(-1, 3).index_select(0, flat.reshape(-1))


COMPOSITE_CHUNK = 2048  # frames per pass: keeps the (frames, patch, patch) temporaries in cache, same pixels


def _composite_layer(canvas: torch.Tensor, track: ObjectTrack, size: int) -> None:
    """Alpha-composite one object layer (all clips and frames) into the flat canvas, in place.

    Each frame's pixels depend only on that frame's parameters, which is what makes rendering
    reversed tracks give exactly the reversed video (and lets the frames be done in chunks).
    """
    n_clips, frames = track.x.shape
    n = n_clips * frames
    cx = torch.from_numpy(track.x.reshape(n))
    cy = torch.from_numpy(track.y.reshape(n))
    radius = torch.from_numpy(track.radius.reshape(n)).clamp_min(1e-3)
    angle = torch.from_numpy(track.angle.reshape(n))
    opacity = torch.from_numpy(track.opacity.reshape(n))
    sprite = torch.from_numpy(track.sprite).repeat_interleave(frames)
    colour = torch.from_numpy(track.colour).repeat_interleave(frames, dim=0)

    patch = int(math.ceil(2.0 * float(track.radius.max()))) + 4  # covers the unit disk + 1 px
    x0 = torch.floor(cx).long() - patch // 2
    y0 = torch.floor(cy).long() - patch // 2
    if patch > size:  # a patch wider than the canvas is the canvas: same pixels, same values, less work
        patch = size
        x0, y0 = torch.zeros_like(x0), torch.zeros_like(y0)
    for i in range(0, n, COMPOSITE_CHUNK):
        part = slice(i, min(i + COMPOSITE_CHUNK, n))
        _composite_frames(canvas, size, patch, i, cx[part], cy[part], x0[part], y0[part], radius[part],
                          angle[part], opacity[part], sprite[part], colour[part])


def _composite_frames(canvas: torch.Tensor, size: int, patch: int, first: int, cx: torch.Tensor, cy: torch.Tensor,
                      x0: torch.Tensor, y0: torch.Tensor, radius: torch.Tensor, angle: torch.Tensor,
                      opacity: torch.Tensor, sprite: torch.Tensor, colour: torch.Tensor) -> None:
    """``_composite_layer`` for the frames ``first .. first + len(cx) - 1`` (flat frame index)."""
    n = len(cx)
    ar = torch.arange(patch)
    px = (x0[:, None] + ar).float() + 0.5 - cx[:, None]  # (N, P) offsets of pixel centres
    py = (y0[:, None] + ar).float() + 0.5 - cy[:, None]

    # Inverse similarity transform: canvas offset -> sprite coords (unit disk = sprite extent).
    # Written elementwise (not affine_grid's batched matmul) so every frame is computed alike.
    cos = (torch.cos(angle) / radius)[:, None, None]
    sin = (torch.sin(angle) / radius)[:, None, None]
    u = (cos * px[:, None, :] + sin * py[:, :, None]).clamp_(-1.15, 1.15)
    v = (cos * py[:, :, None] - sin * px[:, None, :]).clamp_(-1.15, 1.15)

    atlas = sprite_atlas()
    cell, width = atlas.shape[-2], atlas.shape[-1]
    origin = sprite.float() * cell + ATLAS_PAD
    gx = (origin[:, None, None] + (u + 1.0) * (SPRITE_PX / 2)) * (2.0 / width) - 1.0
    gy = (ATLAS_PAD + (v + 1.0) * (SPRITE_PX / 2)) * (2.0 / cell) - 1.0
    grid = torch.stack([gx, gy], dim=-1).reshape(1, n * patch, patch, 2)
    coverage = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    alpha = coverage.reshape(n, patch, patch) * opacity[:, None, None]

    rows, cols = y0[:, None] + ar, x0[:, None] + ar
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
    keep = inside & (alpha > 0)  # untouched pixels are skipped, not rewritten
    frame = torch.arange(first, first + n)[:, None, None]
    flat = ((frame * size + rows[:, :, None]) * size + cols[:, None, :])[keep]
    a = alpha[keep][:, None]
    colour = colour[:, None, None, :].expand(n, patch, patch, 3)[keep]
    region = canvas.index_select(0, flat)
    canvas.index_copy_(0, flat, region + a * (colour - region))


def render_scene(scene: Scene, size: int, noise_sigma: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Pixels of a batch: uint8 (B, 3, T, H, W). Noise is drawn only when noise_sigma > 0."""
    n_clips, frames = scene.crop.shape[:2]
    canvas = _crop_background(scene, size)
    for layer in scene.layers:
        _composite_layer(canvas, layer, size)
    video = canvas.reshape(n_clips, frames, size, size, 3)
    if noise_sigma > 0:  # in place: the canvas is a fresh tensor, and this is the largest array
        video.add_(torch.randn(video.shape, generator=generator).mul_(noise_sigma))
    video = video.mul_(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return video.permute(0, 4, 1, 2, 3).contiguous()


def render_primitive_batch(primitive: int, directions: np.ndarray, config: SynthConfig,
                           rng: np.random.Generator) -> torch.Tensor:
    """Clips of one primitive; clip i has class 2*primitive + directions[i].

    The random draws do not depend on `directions`, so the same rng state with all-0 and all-1
    directions yields the same underlying tracks, forward and reversed.
    """
    directions = np.asarray(directions)
    n = len(directions)
    targets = [t.time_reversed(directions == 1) for t in sample_targets(primitive, n, config, rng)]
    scene = sample_background(n, config, rng)
    below, above = sample_distractors(n, config, rng)
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    scene = dataclasses.replace(scene, layers=below + targets + above)
    return render_scene(scene, config.resolution, config.noise_sigma, generator)


# ----------------------------------------------------------------------------------------------
# Tasks A (appearance), C (compositional) and T-ord (event order) on the same scene model
# ----------------------------------------------------------------------------------------------

# C: class = how the object moves (6 reversal-paired motions); the shape is a nuisance that, in the
# training split, only ever co-occurs with 4 of the 6 motions. The test split holds exactly the 8
# held-out (shape, motion) combinations (Something-Else-style compositional split; docs/proxy_tasks.md).
C_SHAPES: tuple[int, ...] = ASYMMETRIC_SPRITES  # L, T, half-disk, arrow
C_MOTIONS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0), (1, 1), (3, 0), (3, 1))  # (primitive, dir)
C_HELD_OUT: frozenset[tuple[int, int]] = frozenset(
    (s, m) for s in range(len(C_SHAPES)) for m in ((2 * s) % 6, (2 * s + 3) % 6))

TORD_OBJECTS = 3  # k exchangeable objects -> k! = 6 classes
TORD_PERMS: tuple[tuple[int, ...], ...] = tuple(__import__("itertools").permutations(range(TORD_OBJECTS)))
TORD_RADIUS = (0.13, 0.15)  # 4.2-4.8 px at 32 px (v1: 0.08-0.10); the objects, a third of the width apart, never touch
TORD_HOP = 2.4  # hop height in object radii (>= one object size)
TORD_MIN_HOP_FRAMES = 2  # a 1-frame hop was not learned by any of our temporal models at T = 8
A_SPEED = (0.5 / 32, 1.5 / 32)  # bounce speed, canvas fractions per frame (0.5-1.5 px at 32 px)
# Task A, retuned in generator version 2 so a per-frame model learns it in a few epochs (before: 13 % after 3 epochs,
# chance 10 %). Measured on `demo` with posmlp_tiny at 3 epochs: near-upright 20 %, + larger sprites 29 %, + a dark rim
# 66 % (random vivid colours on a random colour field gave no edge that looks the same for every colour pair).
A_RADIUS = (0.28, 0.34)  # 9-11 px at 32 px (T-rev's targets: 4.5-6.4 px), so the shape spans ~5 x 5 stem tokens
# Near-upright with a small wobble (tilt + spin stay below ~20 deg): with a uniform angle the square and the diamond
# (a 45 deg turn of each other) were the same class, and the 4 x 4 px patch stem saw every shape at every angle.
A_TILT_DEG = 10.0  # start-of-clip tilt (at the middle frame), +- deg
A_SPIN_DEG = 1.0  # slow rotation, +- deg/frame
A_SCALE = 0.2  # +-20 % radius wobble
A_OUTLINE = 1.2  # a black copy of the sprite, 1.2x larger, under it: a dark rim of ~1-2 px


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


def _with_scene(targets: list[ObjectTrack], config: SynthConfig, rng: np.random.Generator) -> torch.Tensor:
    """Background, camera pan, distractors (under and over the targets) and noise around target layers."""
    n = len(targets[0].sprite)
    scene = sample_background(n, config, rng)
    below, above = sample_distractors(n, config, rng)
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    scene = dataclasses.replace(scene, layers=below + targets + above)
    return render_scene(scene, config.resolution, config.noise_sigma, generator)


def _bounce(start: np.ndarray, velocity: np.ndarray, lo: np.ndarray, hi: np.ndarray, frames: int) -> np.ndarray:
    """Positions of a point bouncing between lo and hi (mirror reflection), (B, T)."""
    span = (hi - lo)[:, None]
    free = (start - lo)[:, None] + velocity[:, None] * np.arange(frames)[None, :]
    folded = np.mod(free, 2 * span)
    return lo[:, None] + np.where(folded > span, 2 * span - folded, folded)


def render_appearance_batch(labels: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> torch.Tensor:
    """Task A: sprite `labels[i]` bouncing with random velocity, near-upright with a slow spin, +-20 % scale wobble,
    and a dark rim (a black copy A_OUTLINE x larger drawn under it) so its outline reads the same on any colour."""
    n, size, frames = len(labels), config.resolution, config.frames
    radius0 = rng.uniform(*A_RADIUS, n) * size
    speed = rng.uniform(*A_SPEED, n) * size
    heading = rng.uniform(0.0, 2 * math.pi, n)
    lo, hi = EDGE_SLACK * radius0, size - EDGE_SLACK * radius0
    x = _bounce(rng.uniform(lo, hi), speed * np.cos(heading), lo, hi, frames)
    y = _bounce(rng.uniform(lo, hi), speed * np.sin(heading), lo, hi, frames)
    t = np.arange(frames)[None, :]
    tilt = rng.uniform(-A_TILT_DEG, A_TILT_DEG, (n, 1))
    spin = rng.uniform(-A_SPIN_DEG, A_SPIN_DEG, (n, 1))
    angle = np.deg2rad(tilt + spin * (t - (frames - 1) / 2))
    phase, rate = rng.uniform(0.0, 2 * math.pi, (n, 1)), rng.uniform(0.2, 0.6, (n, 1))
    radius = radius0[:, None] * (1.0 + A_SCALE * np.sin(phase + rate * t))
    track = _track(np.asarray(labels), _vivid_colours(rng, n), x, y, angle, radius, np.ones((n, 1)), frames)
    layers = [track]
    if A_OUTLINE:
        rim = dataclasses.replace(track, colour=np.zeros_like(track.colour), radius=track.radius * A_OUTLINE)
        layers.insert(0, rim)
    return _with_scene(layers, config, rng)


def render_compositional_batch(motion: int, shapes: np.ndarray, config: SynthConfig,
                               rng: np.random.Generator) -> torch.Tensor:
    """Task C: clips of motion `C_MOTIONS[motion]` drawn with sprite `C_SHAPES[shapes[i]]`."""
    primitive, direction = C_MOTIONS[motion]
    sprite = np.asarray(C_SHAPES)[np.asarray(shapes)]
    targets = [dataclasses.replace(t, sprite=sprite.astype(np.int64)).time_reversed(
        np.full(len(sprite), direction == 1)) for t in sample_targets(primitive, len(sprite), config, rng)]
    return _with_scene(targets, config, rng)


def tord_schedule(frames: int, leak: bool = False) -> np.ndarray:
    """(T,) int: which time slot's object is up at each frame (-1 = all at rest).

    Equal slots of L = T // k frames; each object is up for the same h = min(L, max(2, L // 2)) frames in the
    middle of its slot (at T = 8: back-to-back 2-frame hops, ``[-1, 0, 0, 1, 1, 2, 2, -1]``), then back at rest:
    every permutation has the same multiset of frames, so a frame-order-agnostic model is at chance by
    construction (docs/proxy_tasks.md). ``leak=True`` gives slot j a hop of j + 1 frames instead -- the unequal-duration bug
    of the first prototype, kept so tests can show the leakage check catches it.
    """
    k = TORD_OBJECTS
    sched = np.full(frames, -1, dtype=np.int64)
    if leak:
        t = 0
        for j in range(k):
            sched[t:t + j + 1] = j
            t += j + 2  # hop, then one rest frame
        return sched
    slot = frames // k
    if slot < 1:
        raise ValueError(f"T-ord needs frames >= {k}, got {frames}")
    hop = min(slot, max(TORD_MIN_HOP_FRAMES, slot // 2))
    start = (frames - k * slot) // 2  # idle frames split before and after the slots
    for j in range(k):
        first = start + j * slot + (slot - hop) // 2
        sched[first:first + hop] = j
    return sched


def _static_distractors(n: int, config: SynthConfig, rng: np.random.Generator) -> list[ObjectTrack]:
    """T-ord's clutter: the usual distractor blobs, frozen at their first position and drawn under the targets.

    Any nuisance that changes over time tags the time slots (e.g. a pan centred on the middle frame marks the middle
    slot) and breaks the equal-frame-multiset guarantee; an occluder over a target could hide its hop.
    """
    below, above = sample_distractors(n, config, rng)
    frozen = []
    for under, over in zip(below, above):
        track = dataclasses.replace(under, opacity=under.opacity + over.opacity)  # every blob under the targets
        frozen.append(dataclasses.replace(track, **{f: np.repeat(getattr(track, f)[:, :1], config.frames, axis=1)
                                                    for f in ("x", "y", "angle", "radius", "opacity")}))
    return frozen


def render_order_batch(perm_ids: np.ndarray, config: SynthConfig, rng: np.random.Generator) -> torch.Tensor:
    """Task T-ord: k copies of one sprite (same shape, colour, size and angle: the objects are exchangeable) at fixed
    left/middle/right positions; in time slot j the object of spatial rank `perm[j]` hops up by TORD_HOP radii and
    returns. Camera and distractors are still (``config.pan`` is ignored), so the only thing that changes over time
    is the hops (and the i.i.d. pixel noise). Every parameter is drawn before (and independently of) the class."""
    n, size, frames, k = len(perm_ids), config.resolution, config.frames, TORD_OBJECTS
    radius = rng.uniform(*TORD_RADIUS, n) * size
    base_x = np.broadcast_to(((np.arange(k) + 0.5) / k * size)[:, None], (k, n))  # fixed, a third of the width apart
    base_y = rng.uniform(0.6, 0.72, n) * size
    sprite = rng.integers(0, len(SPRITE_NAMES), n)
    colour = _vivid_colours(rng, n)
    angle = rng.uniform(0.0, 2 * math.pi, n)
    sched = tord_schedule(frames, bool(config.leak))
    order = np.asarray(TORD_PERMS)[np.asarray(perm_ids)]  # (n, k): slot j -> object rank
    up_obj = np.where(sched[None, :] >= 0, np.take_along_axis(order, np.clip(sched, 0, None)[None, :]
                                                               .repeat(n, 0), axis=1), -1)  # (n, T)
    layers = []
    for i in range(k):
        lift = (up_obj == i) * TORD_HOP * radius[:, None]
        layers.append(_track(sprite, colour, np.broadcast_to(base_x[i][:, None], (n, frames)),
                             base_y[:, None] - lift, angle[:, None], radius[:, None], np.ones((n, 1)), frames))
    scene = sample_background(n, dataclasses.replace(config, pan=0.0), rng)
    clutter = _static_distractors(n, config, rng)
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    scene = dataclasses.replace(scene, layers=clutter + layers)
    return render_scene(scene, config.resolution, config.noise_sigma, generator)


def _generate_task_split(config: SynthConfig, n: int, rng: np.random.Generator,
                         split: str) -> tuple[np.ndarray, np.ndarray]:
    """Balanced, shuffled clips of one split of task A, C or T-ord."""
    num_classes = len(task_class_names(config.task))
    labels = np.repeat(np.arange(num_classes), class_counts(n, num_classes))[rng.permutation(n)]
    size, frames = config.resolution, config.frames
    videos = np.empty((n, 3, frames, size, size), dtype=np.uint8)
    if config.task == "a":
        videos[:] = render_appearance_batch(labels, config, rng).numpy()
    elif config.task == "tord":
        videos[:] = render_order_batch(labels, config, rng).numpy()
    else:  # c: each motion drawn with the shapes allowed in this split
        for m in range(len(C_MOTIONS)):
            idx = np.flatnonzero(labels == m)
            allowed = [s for s in range(len(C_SHAPES)) if ((s, m) in C_HELD_OUT) == (split == "test")]
            if len(idx):
                shapes = np.asarray(allowed)[rng.integers(0, len(allowed), len(idx))]
                videos[idx] = render_compositional_batch(m, shapes, config, rng).numpy()
    return videos, labels.astype(np.int64)


def _generate_split(config: SynthConfig, n: int, rng: np.random.Generator,
                    split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Balanced, deterministically shuffled clips of one split."""
    if config.task != "trev":
        return _generate_task_split(config, n, rng, split)
    labels = np.repeat(np.arange(NUM_CLASSES), class_counts(n))[rng.permutation(n)]
    size, frames = config.resolution, config.frames
    videos = np.empty((n, 3, frames, size, size), dtype=np.uint8)
    for p in range(len(PRIMITIVES)):
        idx = np.flatnonzero(labels // 2 == p)
        if len(idx):
            videos[idx] = render_primitive_batch(p, labels[idx] % 2, config, rng).numpy()
    return videos, labels.astype(np.int64)


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded, then restore the caller's setting.

    The generator issues many small ops; with 2 intra-op threads on a busy 2-core machine (e.g.
    several Ray trials generating at once) the thread barriers stall and generation was measured
    5-7x slower, while on an idle machine one thread costs only ~30 %.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def generate_arrays(config: SynthConfig, seed: int) -> dict[str, np.ndarray]:
    """Both splits as numpy arrays; train and test come from independent child seeds."""
    train_seq, test_seq = np.random.SeedSequence(int(seed)).spawn(2)
    with _one_torch_thread():
        train_x, train_y = _generate_split(config, config.n_train, np.random.default_rng(train_seq), "train")
        test_x, test_y = _generate_split(config, config.n_test, np.random.default_rng(test_seq), "test")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


# ----------------------------------------------------------------------------------------------
# Public loader with an on-disk cache
# ----------------------------------------------------------------------------------------------


@dataclass
class ProxyData:
    name: str  # e.g. "trev/demo"
    train_x: torch.Tensor = dataclasses.field(repr=False)  # uint8 (N, 3, T, H, W)
    train_y: torch.Tensor = dataclasses.field(repr=False)  # int64 (N,)
    test_x: torch.Tensor = dataclasses.field(repr=False)
    test_y: torch.Tensor = dataclasses.field(repr=False)
    num_classes: int
    class_names: list[str]
    config: SynthConfig  # or a DatasetConfig for a dataset on disk
    content_hash: str
    skipped: list = dataclasses.field(default_factory=list, repr=False)  # unreadable dataset files (video.Skipped)
    # a validation split carved out of the training clips (explorer.data.with_validation); None: not split
    val_x: torch.Tensor | None = dataclasses.field(default=None, repr=False)
    val_y: torch.Tensor | None = dataclasses.field(default=None, repr=False)


def default_cache_dir() -> Path:
    return Path(os.environ.get("EXPLORER_CACHE") or Path.home() / ".cache" / "video-explorer")


def _read_cache(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    """Arrays from a cache file, or None if it is missing, unreadable or for another dataset."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["content_hash"]) != digest:
                return None
            return {k: npz[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    except Exception as err:  # a corrupt file is regenerated, never fatal
        warnings.warn(f"ignoring unreadable dataset cache {path}: {err}", stacklevel=3)
        return None


def _write_cache(path: Path, digest: str, config: SynthConfig, seed: int,
                 arrays: dict[str, np.ndarray]) -> None:
    """Atomic write (temp file in the same folder + os.replace): concurrent Ray trials may
    generate the same dataset at once, and a reader must never see a half-written file."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        meta = json.dumps({"config": dataclasses.asdict(config), "seed": int(seed)}, sort_keys=True)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, content_hash=np.array(digest), meta=np.array(meta), **arrays)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; the cache may be shared
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:  # caching is an optimisation; a read-only disk must not fail a trial
        warnings.warn(f"could not write dataset cache {path}: {err}", stacklevel=3)
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_task(task: str = "trev", preset: str = "demo", seed: int = 0,
              cache_dir: str | Path | None = None, **overrides: object) -> ProxyData:
    """The proxy dataset for (task, preset + overrides, seed), generated once and cached.

    Cache file: ``<cache_dir>/synthvid-<hash>.npz``; default dir ``$EXPLORER_CACHE`` or
    ``~/.cache/video-explorer``.
    """
    config = make_config(task, preset, **overrides)
    digest = content_hash(config, seed)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"synthvid-{digest}.npz"
    arrays = _read_cache(path, digest)
    if arrays is None:
        arrays = generate_arrays(config, seed)
        _write_cache(path, digest, config, seed, arrays)
    return ProxyData(
        name=f"{task}/{preset}",
        train_x=torch.from_numpy(arrays["train_x"]),
        train_y=torch.from_numpy(arrays["train_y"]),
        test_x=torch.from_numpy(arrays["test_x"]),
        test_y=torch.from_numpy(arrays["test_y"]),
        num_classes=len(task_class_names(task)),
        class_names=task_class_names(task),
        config=config,
        content_hash=digest,
    )
