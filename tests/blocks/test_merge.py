"""Token merging (ToMe, STTM) against brute-force references, conservation laws and the spec's rules."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from explorer.arch import Arch, ArchError
from explorer.blocks.attention import vit_video_spec
from explorer.blocks.merge import STTM, TokenState, ToMe, build_merger, grid_positions, token_schedule
from explorer.cost import count_flops, count_params
from explorer.models import build, validate_arch

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_numbers.json").read_text())
REF = REFERENCE["token_merging"]["tome_vit_s_video"]


@pytest.mark.parametrize("r", [0, 32, 100, 130])
def test_token_schedule_matches_the_reference(r):
    assert token_schedule(1568, 12, r)[-1] == REF["tokens_after_last_layer_by_r"][str(r)]


def _brute_tome(x, metric, size, r):
    """ToMe written out token by token: A = even, B = odd indices; top-r edges by cosine; size-weighted means."""
    xs, ss = [], []
    n = x.shape[1]
    for b in range(x.shape[0]):
        m = metric[b] / metric[b].norm(dim=-1, keepdim=True)
        a_ids, b_ids = list(range(0, n, 2)), list(range(1, n, 2))
        best = {}
        for a in a_ids:
            sims = [float(m[a] @ m[j]) for j in b_ids]
            q = max(range(len(b_ids)), key=lambda i: sims[i])
            best[a] = (sims[q], b_ids[q])
        ranked = sorted(a_ids, key=lambda a: -best[a][0])
        groups = {j: [j] for j in b_ids}
        for a in ranked[:r]:
            groups[best[a][1]].append(a)
        members = [[a] for a in ranked[r:]] + [groups[j] for j in b_ids]
        ss.append(torch.stack([sum(size[b, i] for i in g) for g in members]))
        xs.append(torch.stack([sum(size[b, i] * x[b, i] for i in g) / sum(size[b, i] for i in g) for g in members]))
    return torch.stack(xs), torch.stack(ss)


@pytest.mark.parametrize("n, r", [(11, 3), (12, 6), (9, 7)])
def test_tome_equals_the_brute_force_reference(n, r):
    torch.manual_seed(n)
    x, metric = torch.randn(2, n, 5), torch.randn(2, n, 3)
    size = torch.randint(1, 5, (2, n, 1)).float()
    merger = ToMe(r=r)
    out, state = merger(x, metric, TokenState(size, grid=(1, 1, n)))
    r_eff = min(r, n // 2)  # clamped to half the tokens
    want_x, want_s = _brute_tome(x, metric, size, r_eff)
    assert out.shape == (2, n - r_eff, 5)
    torch.testing.assert_close(out, want_x)
    torch.testing.assert_close(state.size, want_s)
    torch.testing.assert_close(state.size.sum(1), size.sum(1))  # Σ s preserved
    torch.testing.assert_close((out * state.size).sum(1), (x * size).sum(1))  # Σ s·x preserved
    assert state.merged and state.grid is None


@pytest.mark.parametrize("merger", [ToMe(r=4), STTM(6, 0.5, 0.5)], ids=["tome", "sttm"])
def test_merged_sizes_carry_no_gradient_and_tokens_the_exact_one(merger):
    """Sizes and positions come from constants and a discrete matching: a merge hands them on without a graph (so
    the proportional-attention mask needs no gradient and CPU SDPA keeps its fused kernel), while the tokens'
    gradient stays exact (float64 gradcheck against finite differences, the matching held by a fixed metric)."""
    torch.manual_seed(0)
    grid = (2, 3, 4)
    x = torch.randn(2, 24, 6, dtype=torch.float64, requires_grad=True)
    metric = torch.randn(2, 24, 4, dtype=torch.float64)
    merger = merger.double()

    def merge(tokens):
        return merger(tokens, metric, TokenState.start(tokens, grid, with_pos=True))

    _, state = merge(x)
    assert not state.size.requires_grad and not state.pos.requires_grad
    assert not state.attn_bias().requires_grad
    assert torch.autograd.gradcheck(lambda t: merge(t)[0], (x,))


def test_tome_ratio_and_clamp():
    assert ToMe(ratio=0.25).tokens_removed(1568) == 392
    assert ToMe(r=900).tokens_removed(1568) == 784
    assert ToMe(r=5).tokens_removed(1) == 0
    x = torch.randn(1, 6, 4)
    out, state = ToMe(r=0)(x, torch.randn(1, 6, 2), TokenState(torch.ones(1, 6, 1), grid=(1, 2, 3)))
    assert out is x and state.grid == (1, 2, 3)  # nothing merged: still the grid
    with pytest.raises(ValueError):
        ToMe(r=2, ratio=0.1)


class _Merge(torch.nn.Module):
    def __init__(self, merger, grid, with_pos=False):
        super().__init__()
        self.merger, self.grid, self.with_pos = merger, grid, with_pos

    def forward(self, x, metric):
        return self.merger(x, metric, TokenState.start(x, self.grid, with_pos=self.with_pos))[0]


def test_merge_matmuls_are_counted():
    x, metric = torch.randn(1, 40, 8), torch.randn(1, 40, 4)
    assert count_flops(_Merge(ToMe(r=5), (1, 5, 8)), (x, metric)) == 20 * 20 * 4  # |A|·|B|·d_h
    sttm = STTM(8, ratio=0.5, temporal_ratio=0.5)  # grid 4×2×5: K_s = 5, 2 frame pairs, 5 merged
    spatial = 4 * 10 * 4 * 5
    temporal = 2 * 5 * 4 * 5
    out_tokens = 4 * 5 - 5
    assert count_flops(_Merge(sttm, (4, 2, 5), True), (x, metric)) == spatial + temporal + out_tokens * 6 * 8


def _brute_sttm(x, metric, grid, k, r_t, motion):
    """STTM (our reconstruction) token by token for batch 1: meta tokens = top-k key norm per frame; every token
    joins its most similar meta token; odd frames' groups merge into their best match in the previous frame
    (the r_t strongest edges); outputs = [kept odd-frame groups by edge rank (frame order when r_t = 0),
    even-frame groups]."""
    t, h, w = grid
    n = h * w
    pos = grid_positions(grid)[0]
    unit = F.normalize(metric[0], dim=-1)
    groups = {}  # (frame, slot) -> member token ids
    for f in range(t):
        ids = list(range(f * n, (f + 1) * n))
        norms = metric[0, ids].norm(dim=-1)
        meta = [ids[i] for i in norms.topk(k).indices.tolist()]
        for slot, m in enumerate(meta):
            groups[(f, slot)] = [m]
        for i in ids:
            if i in meta:
                continue
            slot = max(range(k), key=lambda s: float(unit[i] @ unit[meta[s]]))
            groups[(f, slot)].append(i)

    def mean(members, values):
        return sum(values[i] for i in members) / len(members)

    edges = []
    for f in range(1, t, 2):
        for slot in range(k):
            key = F.normalize(mean(groups[(f, slot)], metric[0]), dim=-1)
            sims = [float(key @ F.normalize(mean(groups[(f - 1, s)], metric[0]), dim=-1)) for s in range(k)]
            best = max(range(k), key=lambda s: sims[s])
            edges.append((sims[best], (f, slot), (f - 1, best)))
    edges.sort(key=lambda e: -e[0])
    final = {g: list(m) for g, m in groups.items() if g[0] % 2 == 0}
    later = {g: [] for g in final}
    for _, src, dst in edges[:r_t]:
        final[dst] += groups[src]
        later[dst] += groups[src]
    kept = [src for _, src, _ in edges[r_t:]] if r_t else sorted(g for g in groups if g[0] % 2)  # no matching
    order = kept + sorted(final)
    rows, sizes = [], []
    for g in order:
        members = groups[g] if g not in final else final[g]
        p = mean(members, pos)
        delta = mean(later[g], pos) - mean(groups[g], pos) if g in later and later[g] else torch.zeros(3)
        rows.append(mean(members, x[0]) + motion(torch.cat([p, delta])))
        sizes.append(float(len(members)))
    return torch.stack(rows)[None], torch.tensor(sizes)[None, :, None]


@pytest.mark.parametrize(
    "grid, ratio, temporal_ratio", [((3, 2, 3), 0.5, 0.5), ((4, 3, 3), 0.7, 1.0), ((2, 2, 2), 0.25, 0.0)]
)
def test_sttm_equals_the_brute_force_reference(grid, ratio, temporal_ratio):
    torch.manual_seed(sum(grid))
    n = grid[0] * grid[1] * grid[2]
    dim = 6
    sttm = STTM(dim, ratio, temporal_ratio)
    with torch.no_grad():
        sttm.motion.weight.normal_()
        sttm.motion.bias.normal_()
    x, metric = torch.randn(1, n, dim), torch.randn(1, n, 4)
    out, state = sttm(x, metric, TokenState.start(x, grid, with_pos=True))
    k = sttm.meta_tokens(grid[1] * grid[2])
    r_t = round(temporal_ratio * (grid[0] // 2) * k)
    want_x, want_s = _brute_sttm(x, metric, grid, k, r_t, sttm.motion)
    assert out.shape[1] == grid[0] * k - r_t
    torch.testing.assert_close(state.size, want_s)
    torch.testing.assert_close(out, want_x)


@pytest.mark.parametrize("grid", [(1, 4, 4), (5, 3, 2), (6, 2, 2)])
def test_sttm_conserves_sizes_and_weighted_sums(grid):
    torch.manual_seed(0)
    n = grid[0] * grid[1] * grid[2]
    x, metric = torch.randn(2, n, 8), torch.randn(2, n, 4)
    state0 = TokenState.start(x, grid, with_pos=True)
    out, state = STTM(8, 0.5, 0.5)(x, metric, state0)  # motion is zero-initialised: pure merging
    torch.testing.assert_close(state.size.sum(1), torch.full((2, 1), float(n)))
    torch.testing.assert_close((out * state.size).sum(1), x.sum(1))
    torch.testing.assert_close((state.pos * state.size).sum(1), state0.pos.sum(1))
    k = max(1, round(0.5 * grid[1] * grid[2]))
    assert out.shape[1] == grid[0] * k - round(0.5 * (grid[0] // 2) * k)


def test_sttm_motion_features_change_the_output():
    torch.manual_seed(0)
    x, metric = torch.randn(1, 32, 8), torch.randn(1, 32, 4)
    sttm = STTM(8, 0.5, 1.0)
    plain = sttm(x, metric, TokenState.start(x, (4, 2, 4), with_pos=True))[0]
    with torch.no_grad():
        sttm.motion.weight[:, 3:].normal_()  # only the Δp̄ (motion) columns
    moved = sttm(x, metric, TokenState.start(x, (4, 2, 4), with_pos=True))[0]
    assert not torch.allclose(plain, moved)
    assert count_params(sttm) == 6 * 8 + 8


def test_sttm_needs_the_grid():
    x = torch.randn(1, 8, 4)
    with pytest.raises(ValueError, match="needs the"):
        STTM(4, 0.5)(x, x, TokenState(torch.ones(1, 8, 1), grid=None))


def _tiny(merge=None, **options):
    spec = vit_video_spec(4, 16, 5, 4, 32, 3, 2, merge=merge)
    spec["stages"][0]["mixer"]["options"].update(options)
    return Arch.from_dict(spec)


def _out(arch, x, perturb=None):
    torch.manual_seed(0)
    model = build(arch).eval()
    if perturb:
        perturb(model)
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize(
    "a, b",
    [
        ({"method": "tome", "r": 4}, {"method": "tome", "r": 8}),
        ({"method": "tome", "r": 8}, {"method": "tome", "r": 8, "prop_attn": False}),
        ({"method": "tome", "r": 8}, {"method": "tome", "r": 8, "size_weighted_pool": False}),
        ({"method": "tome", "r": 8}, {"method": "tome", "r": 8, "layers": [1]}),
        ({"method": "tome", "ratio": 0.5}, {"method": "tome", "ratio": 0.25}),
        ({"method": "tome", "ratio": 0.5, "layers": [0]}, {"method": "sttm", "ratio": 0.5, "layers": [0]}),
        (
            {"method": "sttm", "ratio": 0.5, "layers": [0]},
            {"method": "sttm", "ratio": 0.5, "layers": [0], "temporal_ratio": 1.0},
        ),
        ({"method": "sttm", "ratio": 0.5, "layers": [0]}, {"method": "sttm", "ratio": 0.75, "layers": [0]}),
    ],
)
def test_every_merge_option_changes_the_function(a, b):
    x = torch.randn(2, 3, 4, 16, 16)
    assert not torch.allclose(_out(_tiny(a), x), _out(_tiny(b), x), atol=1e-6)


def test_merging_changes_the_function_and_tokens():
    x = torch.randn(2, 3, 4, 16, 16)
    model = build(_tiny({"method": "tome", "r": 4}))
    tokens, state = model.forward_tokens(x)
    assert tokens.shape[1] == 32 - 3 * 4 == token_schedule(32, 3, 4)[-1]
    assert not torch.allclose(_out(_tiny(), x), _out(_tiny({"method": "tome", "r": 4}), x), atol=1e-6)


def test_sttm_model_token_count_and_size_weighted_pool():
    arch = _tiny({"method": "sttm", "ratio": 0.5, "layers": [1]})  # grid 2×4×4: K_s = 8, one pair, 4 merged
    model = build(arch).eval()
    x = torch.randn(2, 3, 4, 16, 16)
    tokens, state = model.forward_tokens(x)
    assert tokens.shape[1] == 2 * 8 - 4
    with torch.no_grad():
        feats = model.norm(tokens)
        want = model.head((feats * state.size).sum(1) / 32)
        torch.testing.assert_close(model(x), want)


def test_merge_spec_round_trip_and_defaults():
    arch = _tiny({"method": "sttm", "ratio": 0.5, "layers": [1]})
    assert Arch.from_json(arch.to_json()) == arch
    import yaml

    assert Arch.from_dict(yaml.safe_load(arch.to_yaml())) == arch
    assert arch.stages[0].merge.layers == (1,)
    full = validate_arch(arch)
    assert full.stages[0].merge.temporal_ratio == 0.5
    explicit = _tiny({"method": "sttm", "ratio": 0.5, "layers": [1], "temporal_ratio": 0.5})
    assert validate_arch(explicit).content_hash == full.content_hash


@pytest.mark.parametrize(
    "merge, path, fragment",
    [
        ({"method": "tome"}, "stages[0].merge", "exactly one of r"),
        ({"method": "tome", "r": 2, "ratio": 0.1}, "stages[0].merge", "exactly one of r"),
        ({"method": "tomee", "r": 2}, "stages[0].merge.method", "expected one of tome, sttm"),
        ({"method": "tome", "r": -1}, "stages[0].merge.r", "must be >= 0"),
        ({"method": "tome", "ratio": 0.6}, "stages[0].merge.ratio", "[0, 0.5]"),
        ({"method": "sttm", "ratio": 1.0, "layers": [0]}, "stages[0].merge.ratio", "[0, 1)"),
        ({"method": "sttm", "r": 3, "layers": [0]}, "stages[0].merge.r", "give ratio"),
        ({"method": "sttm", "ratio": 0.5}, "stages[0].merge.layers", "sttm merges once"),
        ({"method": "sttm", "ratio": 0.5, "layers": [0, 1]}, "stages[0].merge.layers", "sttm merges once"),
        ({"method": "tome", "r": 2, "layers": [3]}, "stages[0].merge.layers[0]", "outside the stage's 3 blocks"),
        ({"method": "tome", "r": 2, "layers": [1, 1]}, "stages[0].merge.layers", "repeated"),
        ({"method": "tome", "r": 2, "temporal_ratio": 0.5}, "stages[0].merge.temporal_ratio", "only sttm"),
        (
            {"method": "sttm", "ratio": 0.5, "layers": [0], "temporal_ratio": 2},
            "stages[0].merge.temporal_ratio",
            "[0, 1]",
        ),
    ],
)
def test_merge_spec_validation_names_the_field(merge, path, fragment):
    with pytest.raises(ArchError) as info:
        _tiny(merge)
    assert info.value.path == path and fragment in str(info.value)


def test_build_merger():
    assert isinstance(build_merger("tome", 8, r=3), ToMe)
    assert isinstance(build_merger("sttm", 8, ratio=0.5), STTM)
    with pytest.raises(ValueError, match="unknown merge method"):
        build_merger("pool", 8, r=1)
