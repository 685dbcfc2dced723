"""synthvid's renderer: object layers alpha-composited onto the panned background, noise, uint8 clips."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from explorer.data.synthvid.scene import ATLAS_PAD, SPRITE_PX, ObjectTrack, Scene, sprite_atlas


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
        _composite_frames(
            canvas,
            size,
            patch,
            i,
            cx[part],
            cy[part],
            x0[part],
            y0[part],
            radius[part],
            angle[part],
            opacity[part],
            sprite[part],
            colour[part],
        )


def _composite_frames(
    canvas: torch.Tensor,
    size: int,
    patch: int,
    first: int,
    cx: torch.Tensor,
    cy: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    radius: torch.Tensor,
    angle: torch.Tensor,
    opacity: torch.Tensor,
    sprite: torch.Tensor,
    colour: torch.Tensor,
) -> None:
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


def render_scene(
    scene: Scene, size: int, noise_sigma: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
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
