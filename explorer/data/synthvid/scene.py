"""synthvid's scene model: sprite atlas, per-object parameter tracks (T-rev targets), background and distractors."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from explorer.data.synthconfig import PRIMITIVES, SPRITE_NAMES, SynthConfig

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


# ----------------------------------------------------------------------------------------------
# Sprite bank (rasterised once, 4x super-sampled) and distractor blobs, packed into one atlas
# ----------------------------------------------------------------------------------------------

# SPRITE_NAMES (the bank's names, also task A's classes) lives in explorer/data/synthconfig.py.
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
        atlas[ATLAS_PAD : ATLAS_PAD + SPRITE_PX, i * cell + ATLAS_PAD : i * cell + ATLAS_PAD + SPRITE_PX] = m
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

        return dataclasses.replace(
            self,
            x=flip(self.x),
            y=flip(self.y),
            angle=flip(self.angle),
            radius=flip(self.radius),
            opacity=flip(self.opacity),
        )


@dataclass(frozen=True)
class Scene:
    """Everything `render_scene` needs for a batch of B clips."""

    background: torch.Tensor  # (B, Hb, Wb, 3) float32, Hb, Wb >= resolution
    crop: np.ndarray  # (B, T, 2) int64 top-left (row, col) of each frame's crop of the background
    layers: list[ObjectTrack]  # drawn back to front


def vivid_colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random saturated, bright RGB colours (HSV with s, v near 1)."""
    h = rng.uniform(0.0, 1.0, n)
    s = rng.uniform(0.75, 1.0, n)
    v = rng.uniform(0.85, 1.0, n)
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    rgb = v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return rgb.astype(np.float32)


def _centres(
    rng: np.random.Generator, half_x: np.ndarray, half_y: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory centres uniform over the positions that keep the whole path (mostly) visible."""
    lo_x, lo_y = np.minimum(half_x, size / 2), np.minimum(half_y, size / 2)
    cx = rng.uniform(lo_x, size - lo_x)
    cy = rng.uniform(lo_y, size - lo_y)
    return cx, cy


def make_track(
    sprite: np.ndarray,
    colour: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    angle: np.ndarray,
    radius: np.ndarray,
    opacity: np.ndarray,
    frames: int,
) -> ObjectTrack:
    n = len(sprite)

    def full(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(a, (n, frames)), dtype=np.float32)

    return ObjectTrack(
        sprite=sprite.astype(np.int64),
        colour=colour.astype(np.float32),
        x=full(x),
        y=full(y),
        angle=full(angle),
        radius=full(radius),
        opacity=full(opacity),
    )


def sample_targets(primitive: int, n: int, config: SynthConfig, rng: np.random.Generator) -> list[ObjectTrack]:
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
        colours = [vivid_colours(rng, n), vivid_colours(rng, n)]
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
            make_track(
                sprites[i],
                colours[i],
                cx[:, None] + sgn * 0.5 * dist * ux,
                cy[:, None] + sgn * 0.5 * dist * uy,
                spin[i],
                radii[i][:, None],
                ones,
                frames,
            )
            for i, sgn in ((0, -1.0), (1, 1.0))
        ]

    pool = np.array(ASYMMETRIC_SPRITES) if name == "rotate" else np.arange(len(SPRITE_NAMES))
    sprite = pool[rng.integers(0, len(pool), n)]
    colour = vivid_colours(rng, n)
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
    return [make_track(sprite, colour, cx[:, None] + dx, cy[:, None] + dy, angle, radius, opacity, frames)]


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
    field = torch.einsum("yi,ncij,xj->nyxc", up4, coarse, up4) + torch.einsum(
        "yi,ncij,xj->nyxc", up8, detail, up8
    )  # detail is grey: broadcasts
    background = field.clamp_(0.0, 1.0).contiguous()

    heading = rng.uniform(0.0, 2 * math.pi, n)
    steps = np.arange(frames) - (frames - 1) / 2
    offset_x = np.rint(config.pan * steps[None, :] * np.cos(heading)[:, None])
    offset_y = np.rint(config.pan * steps[None, :] * np.sin(heading)[:, None])
    crop = (np.stack([offset_y, offset_x], axis=-1) + margin).astype(np.int64)
    return Scene(background=background, crop=crop, layers=[])


def sample_distractors(
    n: int, config: SynthConfig, rng: np.random.Generator
) -> tuple[list[ObjectTrack], list[ObjectTrack]]:
    """Blob random walks, each time-reversed with probability 1/2 (-> reversal-symmetric).

    Returns (below, above) layers: each distractor is drawn either under or over the targets
    (occlusion); the other copy has opacity 0 and costs nothing at composite time.
    """
    size, frames = config.resolution, config.frames
    below, above = [], []
    for _ in range(config.distractors):
        sprite = len(SPRITE_NAMES) + rng.integers(0, NUM_BLOBS, n)
        colour = vivid_colours(rng, n)
        radius = rng.uniform(*DISTRACTOR_RADIUS, (n, 1)) * size
        start = rng.uniform(0.0, size, (n, 1, 2))
        steps = rng.normal(0.0, WALK_STEP * size, (n, frames - 1, 2))
        path = np.clip(start + np.concatenate([np.zeros((n, 1, 2)), steps.cumsum(axis=1)], axis=1), 0.0, size)
        angle = rng.uniform(0.0, 2 * math.pi, (n, 1)) + np.concatenate(
            [np.zeros((n, 1)), rng.normal(0.0, WALK_TURN, (n, frames - 1)).cumsum(axis=1)], axis=1
        )
        is_above = rng.random(n) < 0.5
        reverse = rng.random(n) < 0.5
        track = make_track(
            sprite, colour, path[..., 0], path[..., 1], angle, radius, np.ones((n, 1)), frames
        ).time_reversed(reverse)
        below.append(dataclasses.replace(track, opacity=track.opacity * ~is_above[:, None]))
        above.append(dataclasses.replace(track, opacity=track.opacity * is_above[:, None]))
    return below, above
