"""Token merging for set-layout stages: ToMe (Bolya et al., ICLR 2023) and STTM (Feng et al., ACM TOMM 2024).

Spec: ``docs/seed_blocks.md`` (attention and token merging). Read top-down: the state a token set carries →
ToMe's bipartite soft matching and size-weighted merge → STTM → the factory the builder calls.

A merger is called by a set block *between* its attention and its MLP (ToMe's placement) as
``x, state = merger(x, metric, state)``, where ``metric`` is the head-averaged attention keys ``k̄ ∈ R^{N×d_h}``.
Every merge is a size-weighted average, ``x_j = Σ_{i→j} s_i x_i / Σ_{i→j} s_i`` with ``s_j = Σ_{i→j} s_i``, so
``Σ s`` (the number of input patches) is preserved. The only work-carrying products are the similarity
matmuls (counted by fvcore); sorting, gathers and scatters are memory traffic and stay uncounted, as in the
reference measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class TokenState:
    """What travels with a token set through a set stage.

    ``size`` (B, N, 1): input patches each token stands for (1 at the start). ``pos`` (B, N, 3): the
    size-weighted mean (t, y, x) of those patches in [0, 1], tracked only when STTM needs it. ``grid``:
    the (T, H, W) raster the tokens still form, None once they have been merged (order no longer spatial).
    """

    size: torch.Tensor
    pos: Optional[torch.Tensor] = None
    grid: Optional[tuple[int, int, int]] = None
    prop_attn: bool = True

    @classmethod
    def start(
        cls, x: torch.Tensor, grid: tuple[int, int, int], with_pos: bool = False, prop_attn: bool = True
    ) -> "TokenState":
        """State of the raster-ordered (t, h, w) tokens ``x`` (B, T·H·W, C) straight out of the grid."""
        b, n, _ = x.shape
        # float32 even under autocast: sizes are counts up to N (bf16 is exact only to 256)
        size = torch.ones(b, n, 1, dtype=torch.float32, device=x.device)
        pos = grid_positions(grid, x.device, torch.float32).expand(b, -1, -1) if with_pos else None
        return cls(size, pos, grid, prop_attn)

    @property
    def merged(self) -> bool:
        return self.grid is None

    def attn_bias(self) -> Optional[torch.Tensor]:
        """Proportional attention's additive logit bias ``log s`` (B, 1, 1, N) for every key, or None while all
        sizes are 1 (nothing merged yet) or when switched off."""
        if not self.prop_attn or not self.merged:
            return None
        return self.size.log().transpose(1, 2)[:, None]


def grid_positions(grid: tuple[int, int, int], device=None, dtype=None) -> torch.Tensor:
    """(1, T·H·W, 3) raster-ordered (t, y, x), each axis scaled to [0, 1] (0 for an axis of length 1)."""
    axes = [torch.arange(e, device=device, dtype=dtype) / max(e - 1, 1) for e in grid]
    t, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([t.flatten(), y.flatten(), x.flatten()], dim=-1)[None]


# ------------------------------------------------------------------------------------------------------ ToMe


@dataclass(frozen=True)
class Matching:
    """A bipartite merge plan: A-tokens ``unmerged`` stay; A-tokens ``src`` go into B-tokens ``dst``.
    Indices are (B, ·, 1) positions inside A and B."""

    unmerged: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor


def best_edges(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every a ∈ A its best partner in B and the edge weight ``max_b Â·B̂``: (B, Na) each.

    a (B, Na, d), b (B, Nb, d) un-normalised metrics; the cosine scores ``Â B̂ᵀ`` are one matmul with the big
    operand on the left, so fvcore counts its ``Na·d·Nb`` MACs.
    """
    scores = torch.matmul(F.normalize(a, dim=-1), F.normalize(b, dim=-1).transpose(-1, -2))
    return scores.max(dim=-1)


def top_edges(edge: torch.Tensor, partner: torch.Tensor, r: int) -> Matching:
    """The ``r`` A-tokens with the strongest edges become sources (into their partners); the rest stay."""
    order = edge.argsort(dim=-1, descending=True)[..., None]
    src = order[:, :r]
    return Matching(unmerged=order[:, r:], src=src, dst=partner[..., None].gather(1, src))


def bipartite_soft_matching(a: torch.Tensor, b: torch.Tensor, r: int) -> Matching:
    """ToMe's matching of set A onto set B: each a ∈ A keeps its best cosine edge to B, and the ``r`` A-tokens
    with the strongest edges are merged into their partners."""
    return top_edges(*best_edges(a, b), r)


def merge_sum(a: torch.Tensor, b: torch.Tensor, m: Matching) -> torch.Tensor:
    """``[A-tokens kept, B-tokens + Σ of the A-tokens merged into each]`` along dim 1 (a sum, not a mean:
    callers pass ``s·x`` and ``s`` and divide)."""
    c = a.shape[-1]
    kept = a.gather(1, m.unmerged.expand(-1, -1, c))
    moved = a.gather(1, m.src.expand(-1, -1, c))
    return torch.cat([kept, b.scatter_add(1, m.dst.expand(-1, -1, c), moved)], dim=1)


def _carry(x: torch.Tensor, state: TokenState) -> torch.Tensor:
    """``[s·x, s·pos, s]`` in one tensor, so one gather/scatter pass merges all of them size-weighted."""
    parts = [x * state.size] + ([state.pos * state.size] if state.pos is not None else []) + [state.size]
    return torch.cat(parts, dim=-1)


def _uncarry(carried: torch.Tensor, dim: int, state: TokenState, **changes) -> tuple[torch.Tensor, TokenState]:
    # Sizes and positions are sums of constants picked by a non-differentiable matching: no parameter's gradient
    # runs through them. Detached, the proportional-attention bias needs no gradient, which keeps CPU SDPA on its
    # fused kernel (a mask that requires grad sends it to the unfused math path: 1.5x slower ToMe training steps).
    size = carried[..., -1:].detach()
    x = carried[..., :dim] / size
    pos = carried[..., dim:-1].detach() / size if state.pos is not None else None
    return x, replace(state, size=size, pos=pos, grid=None, **changes)


class ToMe(nn.Module):
    """ToMe bipartite soft matching (Bolya et al.) on the head-averaged keys.

    A = tokens at even positions, B = odd positions (in raster T·H·W order for video, so A and B alternate
    within rows); the ``r`` strongest A→B edges are merged (``r`` clamped to ⌊N/2⌋), size-weighted. Output order
    is ``[unmerged A in edge order, B]``: spatial order is lost. Parameter-free.
    """

    def __init__(self, r: Optional[int] = None, ratio: Optional[float] = None):
        super().__init__()
        if (r is None) == (ratio is None):
            raise ValueError("give exactly one of r or ratio")
        self.r, self.ratio = r, ratio

    def tokens_removed(self, n: int) -> int:
        """``r`` for a block entering with ``n`` tokens: the fixed r or ⌊ratio·n⌋, at most ⌊n/2⌋."""
        r = self.r if self.r is not None else int(self.ratio * n)
        return max(0, min(r, n // 2))

    def forward(self, x: torch.Tensor, metric: torch.Tensor, state: TokenState) -> tuple[torch.Tensor, TokenState]:
        r = self.tokens_removed(x.shape[1])
        if r == 0:
            return x, state
        match = bipartite_soft_matching(metric[:, ::2], metric[:, 1::2], r)
        carried = _carry(x, state)
        return _uncarry(merge_sum(carried[:, ::2], carried[:, 1::2], match), x.shape[-1], state)

    def extra_repr(self) -> str:
        return f"r={self.r}" if self.r is not None else f"ratio={self.ratio}"


def token_schedule(n: int, depth: int, r: int, layers: Optional[tuple[int, ...]] = None) -> list[int]:
    """Tokens after each of ``depth`` blocks when ToMe removes ``r`` per merging block: ``N_l = N_{l−1} −
    min(r, ⌊N_{l−1}/2⌋)``."""
    out = []
    for i in range(depth):
        if layers is None or i in layers:
            n -= min(r, n // 2)
        out.append(n)
    return out


# ------------------------------------------------------------------------------------------------------ STTM


class STTM(nn.Module):
    """Spatial-temporal token merger (Feng, Xu, Ma, Zhang, ACM TOMM 2024) — **our reconstruction from the
    paper's abstract** (the paper and its code are not available to us; see ``docs/seed_blocks.md``). It follows
    the abstract's four ideas; every concrete choice below is ours.

    On the raster-ordered tokens of a (T, H, W) grid, with normalised head-averaged keys ``k̂``:

    1. *Meta tokens*: per frame, the ``K_s = max(1, round((1 − ratio)·H·W))`` tokens with the largest key norm
       ``‖k̄_i‖`` (a parameter-free saliency) are the frame's object clues.
    2. *Spatial merge*: every token joins its most similar meta token (``argmax_j k̂_i·k̂_{m_j}``, a matmul
       ``(H·W)×d_h×K_s`` per frame; meta tokens join themselves); groups are size-weighted means.
    3. *Temporal merge*: ToMe's bipartite matching restricted to consecutive frames — groups of odd frames
       (A) are matched to the groups of the previous, even frame (B) on the merged keys, and the
       ``round(temporal_ratio·|A|)`` strongest edges are merged, size-weighted.
    4. *Motion features*: the positions ``p = (t, y, x)`` are merged with the same weights, ``p̄_j = Σ s_i p_i /
       Σ s_i``; a token spanning two frames also gets ``Δp̄_j = p̄_j^{later frame} − p̄_j^{earlier frame}``
       (0 otherwise). ``x_j += W_m [p̄_j, Δp̄_j]`` with ``W_m``: Linear 6 → C, zero-initialised so that
       inserting STTM into a trained model starts from pure merging.

    Output: ``T·K_s − round(temporal_ratio·⌊T/2⌋·K_s)`` tokens as ``[unmerged odd-frame groups, even-frame
    groups]``; later blocks use proportional attention on the sizes. Needs the grid, so it merges once.
    """

    def __init__(self, dim: int, ratio: float, temporal_ratio: float = 0.5):
        super().__init__()
        self.ratio, self.temporal_ratio = ratio, temporal_ratio
        self.motion = nn.Linear(6, dim)
        nn.init.zeros_(self.motion.weight)
        nn.init.zeros_(self.motion.bias)

    def meta_tokens(self, frame_tokens: int) -> int:
        return max(1, min(frame_tokens, round((1.0 - self.ratio) * frame_tokens)))

    def forward(self, x: torch.Tensor, metric: torch.Tensor, state: TokenState) -> tuple[torch.Tensor, TokenState]:
        if state.grid is None or state.pos is None:
            raise ValueError("STTM needs the (T, H, W) token grid and positions: it must be the stage's only merge")
        t, h, w = state.grid
        bsz, _, dim = x.shape
        n, d = h * w, metric.shape[-1]
        k = self.meta_tokens(n)

        # 1-2. spatial: per frame, tokens join their most similar meta token
        frames = metric.reshape(bsz * t, n, d)
        meta_idx = frames.norm(dim=-1).topk(k, dim=-1).indices  # (B·T, K_s)
        unit = F.normalize(frames, dim=-1)
        meta = unit.gather(1, meta_idx[..., None].expand(-1, -1, d))
        assign = torch.matmul(unit, meta.transpose(1, 2)).argmax(dim=-1)  # (B·T, n)
        assign = assign.scatter(1, meta_idx, torch.arange(k, device=x.device).expand(bsz * t, -1))
        carried = torch.cat([_carry(x, state), metric * state.size], dim=-1)
        carried = carried.reshape(bsz * t, n, -1)
        groups = carried.new_zeros(bsz * t, k, carried.shape[-1])
        groups = groups.scatter_add(1, assign[..., None].expand(-1, -1, carried.shape[-1]), carried)
        groups = groups.reshape(bsz, t, k, -1)  # [s·x (C), s·p (3), s (1), s·k̄ (d)]

        # 3. temporal: odd frames' groups (A) onto the previous frame's groups (B), bipartite
        pairs = t // 2
        r = round(self.temporal_ratio * pairs * k)
        size_at = dim + 3
        a_groups, b_groups = groups[:, 1 : 2 * pairs : 2], groups[:, 0::2]  # (B, T//2, K_s, ·), (B, ⌈T/2⌉, K_s, ·)
        b_pos = b_groups[..., dim:size_at] / b_groups[..., size_at : size_at + 1]
        width = groups.shape[-1]
        a_flat = a_groups.reshape(bsz, pairs * k, width)
        b_flat = b_groups.reshape(bsz, -1, width)
        if r > 0:
            a_key = a_groups[..., size_at + 1 :].reshape(bsz * pairs, k, d)
            b_key = b_groups[:, :pairs, :, size_at + 1 :].reshape(bsz * pairs, k, d)
            edge, partner = best_edges(a_key, b_key)  # (B·T//2, K_s): partner inside the previous frame
            # index of the partner among all B-groups: the previous frame of pair j is B-frame j
            partner = partner.reshape(bsz, pairs, k) + (torch.arange(pairs, device=x.device) * k)[:, None]
            match = top_edges(edge.reshape(bsz, pairs * k), partner.reshape(bsz, pairs * k), r)
            merged = merge_sum(a_flat, b_flat, match)
            # Δp̄ of a B-group that received later-frame groups: their mean position minus its own
            landed = merge_sum(a_flat[..., dim : size_at + 1], torch.zeros_like(b_flat[..., dim : size_at + 1]), match)[
                :, -b_flat.shape[1] :
            ]
            moved = landed[..., 3:]
            later = landed[..., :3] / moved.clamp_min(1e-6)
            merged_delta = torch.where(moved > 0, later - b_pos.reshape(bsz, -1, 3), torch.zeros_like(later))
            delta = torch.cat([merged_delta.new_zeros(bsz, merged.shape[1] - b_flat.shape[1], 3), merged_delta], 1)
        else:
            merged = torch.cat([a_flat, b_flat], dim=1)
            delta = merged.new_zeros(bsz, merged.shape[1], 3)

        x, state = _uncarry(merged[..., : size_at + 1], dim, state)
        # 4. motion features from the aggregated positions
        x = x + self.motion(torch.cat([state.pos, delta], dim=-1))
        return x, state

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, temporal_ratio={self.temporal_ratio}"


# --------------------------------------------------------------------------------------------------- factory


def build_merger(
    method: str,
    dim: int,
    r: Optional[int] = None,
    ratio: Optional[float] = None,
    temporal_ratio: Optional[float] = None,
) -> nn.Module:
    """The merger one block of a set stage calls (the builder makes one per merging block)."""
    if method == "tome":
        return ToMe(r, ratio)
    if method == "sttm":
        return STTM(dim, ratio if ratio is not None else 0.5, 0.5 if temporal_ratio is None else temporal_ratio)
    raise ValueError(f"unknown merge method {method!r}; expected tome or sttm")
