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

# every name of the one-module synthvid, re-exported (callers and tests use sv.<name>)
from explorer.data.synthconfig import (
    C_MOTIONS,
    CLASS_NAMES,
    NUM_CLASSES,
    PRESETS,
    PRIMITIVES,
    SPRITE_NAMES,
    TASKS,
    TORD_OBJECTS,
    TORD_PERMS,
    SynthConfig,
    content_hash,
    default_cache_dir,
    make_config,
    task_class_names,
)
from explorer.data.synthvid.loader import ProxyData, load_task
from explorer.data.synthvid.render import COMPOSITE_CHUNK, render_scene
from explorer.data.synthvid.sampling import (
    A_OUTLINE,
    A_RADIUS,
    A_SCALE,
    A_SPEED,
    A_SPIN_DEG,
    A_TILT_DEG,
    C_HELD_OUT,
    C_SHAPES,
    TORD_HOP,
    TORD_MIN_HOP_FRAMES,
    TORD_RADIUS,
    class_counts,
    generate_arrays,
    generate_split,
    render_appearance_batch,
    render_compositional_batch,
    render_order_batch,
    render_primitive_batch,
    tord_schedule,
)
from explorer.data.synthvid.scene import (
    ASYMMETRIC_SPRITES,
    ATLAS_PAD,
    DISTRACTOR_RADIUS,
    EDGE_SLACK,
    NUM_BLOBS,
    PAIR_RADIUS,
    ROTATE_DEG_PER_FRAME,
    SCALE_RANGE,
    SPRITE_PX,
    SUPERSAMPLE,
    TARGET_RADIUS,
    TRAVEL,
    WALK_STEP,
    WALK_TURN,
    ObjectTrack,
    Scene,
    make_track,
    sample_background,
    sample_distractors,
    sample_targets,
    sprite_atlas,
    vivid_colours,
)

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
