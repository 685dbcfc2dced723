"""MorphMLP against the released models' numbers (reference_numbers.json) and direct formulas of its operators."""

import pytest
import torch

from explorer.blocks import BlockContext, InvalidCombination, get_mixer
from explorer.blocks.morphmlp import ChunkFC, MorphFCSpatial, MorphFCTemporal, MorphMLPBlock
from explorer.cost import count_flops, count_params, example_input
from explorer.models import build, preset

# ------------------------------------------------------------------------------------------- direct formulas


def chunk_fc_reference(fc: ChunkFC, x: torch.Tensor) -> torch.Tensor:
    """Loop form of the chunked FC: flatten the frame (row- or column-major), cut L-token chunks, per (chunk, group)
    build ``v[i·S + j] = x[token i of the chunk, channel kS + j]``, apply W, scatter back."""
    b, h, w, c = x.shape
    length, s = fc.chunk_len, c // fc.chunk_len
    if fc.order == "row":
        tokens = [(r, q) for r in range(h) for q in range(w)]
    else:
        tokens = [(r, q) for q in range(w) for r in range(h)]
    out = torch.empty_like(x)
    for start in range(0, h * w, length):
        chunk = tokens[start : start + length]
        for k in range(length):
            v = torch.cat([x[:, r, q, k * s : (k + 1) * s] for r, q in chunk], dim=-1)  # (B', L·S)
            y = fc.fc(v)
            for i, (r, q) in enumerate(chunk):
                out[:, r, q, k * s : (k + 1) * s] = y[:, i * s : (i + 1) * s]
    return out


def temporal_reference(fc: MorphFCTemporal, x: torch.Tensor) -> torch.Tensor:
    """Loop form of MorphFC_t: per location and group, the frame-major T'·S_t vector through W_t, then proj."""
    b, t, h, w, c = x.shape
    s = c // fc.groups
    out = torch.empty_like(x)
    for r in range(h):
        for q in range(w):
            for k in range(fc.groups):
                v = torch.cat([x[:, f, r, q, k * s : (k + 1) * s] for f in range(t)], dim=-1)
                y = fc.mix_t(v)
                for f in range(t):
                    out[:, f, r, q, k * s : (k + 1) * s] = y[:, f * s : (f + 1) * s]
    return fc.proj(out)


def randomise_(module: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter (the zero/ones-initialised temporal FC included) so no branch is trivial."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def block(dim, grid, **options) -> torch.nn.Module:
    entry = get_mixer("morphmlp")
    return entry.build(BlockContext(dim, grid, 3.0, 0.0), entry.options(**options))


# ------------------------------------------------------------------------------------- released numbers


def test_stage1_block_and_its_parts_match_the_release():
    b = MorphMLPBlock(112, (8, 56, 56), chunk_len=14, temporal_groups=8)
    assert count_params(b) == 165228
    assert (count_params(b.fc_s), count_params(b.fc_t), count_params(b.mlp)) == (63532, 25312, 75712)
    x = torch.randn(1, 8, 56, 56, 112)
    assert count_flops(b, x) / 1e9 == pytest.approx(3.8186, rel=1e-3)
    assert count_flops(b.fc_s, x) / 1e9 == pytest.approx(1.2588, rel=1e-3)
    assert count_flops(b.fc_t, x) / 1e9 == pytest.approx(0.6294, rel=1e-3)
    assert count_flops(b.mlp, x) / 1e9 == pytest.approx(1.8882, rel=1e-3)


def test_stage4_block_is_the_two_branch_form_of_the_release():
    b = MorphMLPBlock(784, (8, 7, 7), chunk_len=49, temporal_groups=8)
    assert b.fc_s.full_frame and b.fc_s.reweight.fc2.out_features == 2 * 784
    assert count_params(b) == 7235732 == int(11.75 * 784**2 + 17.25 * 784)
    assert count_flops(b, torch.randn(1, 8, 7, 7, 784)) / 1e9 == pytest.approx(2.6555, rel=1e-3)


@pytest.mark.parametrize(
    "dim, grid, length, groups, params",
    [
        (224, (8, 28, 28), 28, 8, 656600),
        (392, (8, 14, 14), 28, 8, 2005178),
        (392, (16, 14, 14), 28, 14, 2052274),  # 32-frame release: G = 14, W_t is 448×448
    ],
)
def test_stage2_3_block_params_match_the_release(dim, grid, length, groups, params):
    b = MorphMLPBlock(dim, grid, length, groups)
    assert count_params(b) == params
    if groups == grid[0]:
        assert params == 13 * dim**2 + 19.25 * dim  # counted by hand from the released block's layers


def test_32_frame_stage3_block_flops():
    b = MorphMLPBlock(392, (16, 14, 14), 28, 14)
    assert count_flops(b, torch.randn(1, 16, 14, 14, 392)) / 1e9 == pytest.approx(5.8701, rel=1e-3)


@pytest.fixture
def fast_init(monkeypatch):
    """Param counts need no random init: skip the (slow) truncated normal of ~50M weights."""
    from explorer.blocks import layers

    monkeypatch.setattr(layers, "trunc_normal_", lambda tensor, std: tensor)


@pytest.mark.parametrize(
    "name, params", [("morphmlp_s_16f", 47039154), ("morphmlp_s_32f", 47463018), ("morphmlp_b_16f", 67784382)]
)
def test_released_model_params_exact(fast_init, name, params):
    assert count_params(build(preset(name))) == params


def test_released_model_per_stage_params_and_ssv2_head(fast_init):
    import dataclasses

    arch = preset("morphmlp_s_16f")
    model = build(arch)
    assert count_params(model.stem) == 61488
    assert [count_params(d) for d in model.downs[1:]] == [226464, 791448, 2768304]
    assert [count_params(s) for s in model.stages] == [495684, 2626400, 18046602, 21707196]
    assert count_params(model.norm) + count_params(model.head) == 1568 + 314000
    ssv2 = arch.replace(input=dataclasses.replace(arch.input, num_classes=174))
    assert count_params(build(ssv2)) == 46861744


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, gflops", [("morphmlp_s_16f", 66.3602), ("morphmlp_s_32f", 133.337), ("morphmlp_b_16f", 97.834)]
)
def test_released_model_flops_within_one_percent(name, gflops):
    arch = preset(name)
    assert count_flops(build(arch), example_input(arch)) / 1e9 == pytest.approx(gflops, rel=0.01)


# ------------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    "h, w, length, order",
    [
        (4, 8, 4, "row"),  # L < W: pieces of rows
        (4, 4, 8, "row"),  # L > W: a chunk is L/W = 2 full rows (released stage 3)
        (6, 4, 12, "row"),  # 3 full rows, non-square
        (8, 4, 4, "column"),  # L | H: pieces of columns
        (4, 6, 8, "column"),  # L = 2H: two full columns
        (6, 6, 4, "column"),  # chunks straddle columns
        (6, 6, 4, "row"),  # chunks straddle rows
    ],
)
def test_chunk_fc_equals_the_direct_formula(h, w, length, order):
    torch.manual_seed(0)
    fc = ChunkFC(2 * length, length, order)
    x = torch.randn(2, h, w, 2 * length)
    torch.testing.assert_close(fc(x), chunk_fc_reference(fc, x))


def test_width_chunk_longer_than_a_row_spans_full_rows():
    torch.manual_seed(0)
    fc = ChunkFC(8, 8, "row")  # 4×4 frame, L = 8 → chunks are rows {0, 1} and {2, 3}
    x = torch.randn(1, 4, 4, 8)
    bumped = x.clone()
    bumped[0, 1, 3] += 1.0
    changed = (fc(bumped) - fc(x)).abs().sum(-1)[0] > 0
    assert changed[:2].all() and not changed[2:].any()


def test_spatial_fc_equals_the_direct_formula():
    torch.manual_seed(0)
    for h, w, length in ((4, 4, 8), (4, 4, 16)):  # three branches; the full-frame two-branch form
        fc = MorphFCSpatial(16, h * w, length)
        randomise_(fc)
        x = torch.randn(2, 3, h, w, 16)
        frames = x.flatten(0, 1)
        if length == h * w:
            ys = [chunk_fc_reference(fc.mix_hw, frames)]
        else:
            ys = [chunk_fc_reference(fc.mix_h, frames), chunk_fc_reference(fc.mix_w, frames)]
        ys = [y.reshape(x.shape) for y in ys] + [fc.mix_c(x)]
        pooled = sum(ys).mean(dim=(1, 2, 3))
        logits = fc.reweight.fc2(torch.nn.functional.gelu(fc.reweight.fc1(pooled)))
        a = logits.reshape(2, 16, len(ys)).softmax(-1)  # (B, C, K): branch k of channel c is logit c·K + k
        want = fc.proj(sum(y * a[:, None, None, None, :, k] for k, y in enumerate(ys)))
        torch.testing.assert_close(fc(x), want)


def test_temporal_fc_equals_the_direct_formula():
    torch.manual_seed(0)
    fc = MorphFCTemporal(12, frames=5, groups=4)  # odd T', vector length 5·3 = 15
    randomise_(fc)
    x = torch.randn(2, 5, 3, 2, 12)
    torch.testing.assert_close(fc(x), temporal_reference(fc, x))


def test_temporal_fc_init_is_zero_output_with_all_ones_proj():
    b = MorphMLPBlock(32, (8, 8, 8), chunk_len=8, temporal_groups=8)
    assert torch.equal(b.fc_t.proj.weight, torch.ones(32, 32)) and not b.fc_t.proj.bias.any()
    assert not b.fc_t.mix_t.weight.any() and not b.fc_t.mix_t.bias.any()
    x = torch.randn(2, 8, 8, 8, 32)
    assert not b.fc_t(b.norm_t(x)).any()
    # ...yet W_t learns: the all-ones proj passes gradient to it
    b(x).square().sum().backward()
    assert b.fc_t.mix_t.weight.grad.abs().sum() > 0


def test_residual_base_is_the_block_input():
    torch.manual_seed(0)
    b = block(16, (4, 4, 4), chunk_len=4).eval()
    randomise_(b)
    x = torch.randn(1, 4, 4, 4, 16)
    x_t = x + b.fc_t(b.norm_t(x))
    mid = x + b.fc_s(b.norm1(x_t))
    torch.testing.assert_close(b(x), mid + b.mlp(b.norm2(mid)))


# ------------------------------------------------------------------------------------ options and shapes


def outputs(dim, grid, x, state=None, **options):
    torch.manual_seed(0)
    b = block(dim, grid, **options).eval()
    if state is None:
        randomise_(b)
    else:
        b.load_state_dict(state, strict=False)
    with torch.no_grad():
        return b(x), b.state_dict()


def test_every_option_changes_the_function():
    x = torch.randn(1, 4, 8, 8, 32)
    base, state = outputs(32, (4, 8, 8), x, chunk_len=8)
    # same weights, only the chunk layout differs (every chunk FC is C×C for any L)
    assert not torch.allclose(base, outputs(32, (4, 8, 8), x, state, chunk_len=16)[0], atol=1e-4)
    assert not torch.allclose(base, outputs(32, (4, 8, 8), x, chunk_len=8, temporal_groups=2)[0], atol=1e-4)
    without = {k: v for k, v in state.items() if "reweight" not in k}
    assert not torch.allclose(base, outputs(32, (4, 8, 8), x, without, chunk_len=8, reweight=False)[0], atol=1e-4)
    sequential, _ = outputs(32, (4, 8, 8), x, state, chunk_len=8, spatial_residual="temporal")
    assert not torch.allclose(base, sequential, atol=1e-4)


def test_residual_options_agree_while_the_temporal_fc_is_zero():
    torch.manual_seed(0)
    released = block(16, (4, 4, 4), chunk_len=4).eval()
    sequential = block(16, (4, 4, 4), chunk_len=4, spatial_residual="temporal").eval()
    sequential.load_state_dict(released.state_dict())
    x = torch.randn(1, 4, 4, 4, 16)
    torch.testing.assert_close(released(x), sequential(x))


@pytest.mark.parametrize(
    "grid, dim, options",
    [
        ((3, 4, 4), 12, {"chunk_len": 4}),  # odd T', G = T' = 3
        ((5, 4, 6), 16, {"chunk_len": 8, "temporal_groups": 4}),  # odd T', non-square, L > W
        ((1, 6, 6), 12, {"chunk_len": 4, "reweight": False}),  # one frame, chunks straddle rows
        ((2, 3, 5), 30, {"chunk_len": 15}),  # full frame (two-branch form), non-square
        ((4, 4, 4), 16, {"chunk_len": 2, "spatial_residual": "temporal", "temporal_groups": 16}),
    ],
)
def test_block_shapes(grid, dim, options):
    b = block(dim, grid, **options)
    x = torch.randn(2, *grid, dim)
    assert b(x).shape == x.shape


def test_default_temporal_groups_follow_the_frames():
    assert block(24, (3, 4, 4), chunk_len=4).fc_t.groups == 3
    assert block(24, (8, 4, 4), chunk_len=4).fc_t.mix_t.in_features == 24


@pytest.mark.parametrize(
    "dim, grid, options, message",
    [
        (32, (4, 8, 8), {"chunk_len": 5}, "chunk_len 5 does not divide width 32"),
        (32, (4, 6, 6), {"chunk_len": 8}, "chunk_len 8 does not tile the 6x6 grid"),
        (392, (16, 14, 14), {"chunk_len": 28}, r"temporal_groups 16 \(default: T' = 16\) do not divide width 392"),
        (32, (4, 8, 8), {"chunk_len": 8, "temporal_groups": 3}, "temporal_groups 3 do not divide width 32"),
    ],
)
def test_invalid_combinations_name_the_numbers(dim, grid, options, message):
    with pytest.raises(InvalidCombination, match=message):
        block(dim, grid, **options)


def test_invalid_chunk_in_a_spec_is_an_invalid_combination():
    from explorer.arch import Arch

    spec = preset("morphmlp_tiny").to_dict()
    spec["stages"][1]["mixer"]["options"]["chunk_len"] = 32
    with pytest.raises(InvalidCombination, match="chunk_len 32 does not tile the 4x4 grid"):
        build(Arch.from_dict(spec))


# ----------------------------------------------------------------------------------------- tiny model


def test_tiny_preset_shapes_and_forms():
    arch = preset("morphmlp_tiny")
    model = build(arch)
    assert not model.stages[0][0].fc_s.full_frame and model.stages[1][0].fc_s.full_frame
    x = torch.randn(2, 3, 8, 32, 32)
    assert model(x).shape == (2, 12)
    assert model.forward_features(x).shape == (2, 8, 4, 4, 64)


def test_tiny_model_trains(train_losses):
    torch.manual_seed(0)
    model = build(preset("morphmlp_tiny"))
    x, y = torch.randn(4, 3, 8, 32, 32), torch.arange(4)
    losses = train_losses(model, model.parameters(), x, y, steps=6, lr=2e-3)
    assert losses[-1] < losses[0]
    assert model.stages[0][0].fc_t.mix_t.weight.abs().sum() > 0  # the zero-initialised temporal FC moved
