"""synthvid's per-task clip sampling (T-rev, A, C, T-ord) and the two splits of a dataset (generate_arrays)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from explorer.data.synthconfig import (
    C_MOTIONS,
    NUM_CLASSES,
    PRIMITIVES,
    SPRITE_NAMES,
    TORD_OBJECTS,
    TORD_PERMS,
    SynthConfig,
    task_class_names,
)
from explorer.data.synthvid.render import render_scene
from explorer.data.synthvid.scene import (
    ASYMMETRIC_SPRITES,
    EDGE_SLACK,
    ObjectTrack,
    make_track,
    sample_background,
    sample_distractors,
    sample_targets,
    vivid_colours,
)


def class_counts(n: int, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Balanced counts: n // k per class, the remainder spread over the first classes."""
    counts = np.full(num_classes, n // num_classes, dtype=np.int64)
    counts[: n % num_classes] += 1
    return counts


# ----------------------------------------------------------------------------------------------
# Task T-rev (reversal pairs)
# ----------------------------------------------------------------------------------------------


def render_primitive_batch(
    primitive: int, directions: np.ndarray, config: SynthConfig, rng: np.random.Generator
) -> torch.Tensor:
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
# C_MOTIONS (the 6 (primitive, dir) classes) lives in explorer/data/synthconfig.py.
C_HELD_OUT: frozenset[tuple[int, int]] = frozenset(
    (s, m) for s in range(len(C_SHAPES)) for m in ((2 * s) % 6, (2 * s + 3) % 6)
)

# TORD_OBJECTS and TORD_PERMS (T-ord's classes) live in explorer/data/synthconfig.py.
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
    track = make_track(np.asarray(labels), vivid_colours(rng, n), x, y, angle, radius, np.ones((n, 1)), frames)
    layers = [track]
    if A_OUTLINE:
        rim = dataclasses.replace(track, colour=np.zeros_like(track.colour), radius=track.radius * A_OUTLINE)
        layers.insert(0, rim)
    return _with_scene(layers, config, rng)


def render_compositional_batch(
    motion: int, shapes: np.ndarray, config: SynthConfig, rng: np.random.Generator
) -> torch.Tensor:
    """Task C: clips of motion `C_MOTIONS[motion]` drawn with sprite `C_SHAPES[shapes[i]]`."""
    primitive, direction = C_MOTIONS[motion]
    sprite = np.asarray(C_SHAPES)[np.asarray(shapes)]
    targets = [
        dataclasses.replace(t, sprite=sprite.astype(np.int64)).time_reversed(np.full(len(sprite), direction == 1))
        for t in sample_targets(primitive, len(sprite), config, rng)
    ]
    return _with_scene(targets, config, rng)


def tord_schedule(frames: int, leak: bool = False) -> np.ndarray:
    """(T,) int: which time slot's object is up at each frame (-1 = all at rest).

    Equal slots of L = T // k frames; each object is up for the same h = min(L, max(2, L // 2)) frames in the
    middle of its slot (at T = 8: back-to-back 2-frame hops, ``[-1, 0, 0, 1, 1, 2, 2, -1]``), then back at rest:
    every permutation has the same multiset of frames, so a frame-order-agnostic model is at chance by
    construction (docs/proxy_tasks.md). ``leak=True`` gives slot j a hop of j + 1 frames instead -- the
    unequal-duration bug
    of the first prototype, kept so tests can show the leakage check catches it.
    """
    k = TORD_OBJECTS
    sched = np.full(frames, -1, dtype=np.int64)
    if leak:
        t = 0
        for j in range(k):
            sched[t : t + j + 1] = j
            t += j + 2  # hop, then one rest frame
        return sched
    slot = frames // k
    if slot < 1:
        raise ValueError(f"T-ord needs frames >= {k}, got {frames}")
    hop = min(slot, max(TORD_MIN_HOP_FRAMES, slot // 2))
    start = (frames - k * slot) // 2  # idle frames split before and after the slots
    for j in range(k):
        first = start + j * slot + (slot - hop) // 2
        sched[first : first + hop] = j
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
        frozen.append(
            dataclasses.replace(
                track,
                **{
                    f: np.repeat(getattr(track, f)[:, :1], config.frames, axis=1)
                    for f in ("x", "y", "angle", "radius", "opacity")
                },
            )
        )
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
    colour = vivid_colours(rng, n)
    angle = rng.uniform(0.0, 2 * math.pi, n)
    sched = tord_schedule(frames, bool(config.leak))
    order = np.asarray(TORD_PERMS)[np.asarray(perm_ids)]  # (n, k): slot j -> object rank
    up_obj = np.where(
        sched[None, :] >= 0, np.take_along_axis(order, np.clip(sched, 0, None)[None, :].repeat(n, 0), axis=1), -1
    )  # (n, T)
    layers = []
    for i in range(k):
        lift = (up_obj == i) * TORD_HOP * radius[:, None]
        layers.append(
            make_track(
                sprite,
                colour,
                np.broadcast_to(base_x[i][:, None], (n, frames)),
                base_y[:, None] - lift,
                angle[:, None],
                radius[:, None],
                np.ones((n, 1)),
                frames,
            )
        )
    scene = sample_background(n, dataclasses.replace(config, pan=0.0), rng)
    clutter = _static_distractors(n, config, rng)
    generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    scene = dataclasses.replace(scene, layers=clutter + layers)
    return render_scene(scene, config.resolution, config.noise_sigma, generator)


def _generate_task_split(
    config: SynthConfig, n: int, rng: np.random.Generator, split: str
) -> tuple[np.ndarray, np.ndarray]:
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


def generate_split(
    config: SynthConfig, n: int, rng: np.random.Generator, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
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
        train_x, train_y = generate_split(config, config.n_train, np.random.default_rng(train_seq), "train")
        test_x, test_y = generate_split(config, config.n_test, np.random.default_rng(test_seq), "test")
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
