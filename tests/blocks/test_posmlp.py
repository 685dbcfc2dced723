"""PosMLP-Video against the released model's numbers (reference_numbers.json) and the LRPE formula."""

import pytest
import torch

from explorer.blocks.posmlp import LearnedRelativePositionMixing, PosMLPParallelBlock, relative_index
from explorer.cost import count_flops, count_params


def test_stage1_block_params_and_flops_match_the_release():
    block = PosMLPParallelBlock(72, (16, 56, 56), window=14, groups=8)
    assert count_params(block) == 38116
    assert count_params(block.spatial) == 21940 and count_params(block.temporal) == 16176
    x = torch.randn(1, 16, 56, 56, 72)
    assert count_flops(block, x) / 1e9 == pytest.approx(2.3626, rel=1e-3)
    assert count_flops(block.spatial, x) / 1e9 == pytest.approx(1.5064, rel=1e-3)


def test_stage4_block_params():
    assert count_params(PosMLPParallelBlock(576, (16, 7, 7), window=7, groups=64)) == 2009281


def test_released_model_params_exact():
    from explorer.models import build, preset

    assert count_params(build(preset("posmlp_video_72d"))) == 13509537


def test_block_is_identity_at_init():
    block = PosMLPParallelBlock(16, (4, 8, 8), window=4, groups=4)
    x = torch.randn(2, 4, 8, 8, 16)
    assert torch.equal(block(x), x)


def test_lrpe_equals_the_reference_formula():
    torch.manual_seed(0)
    mix = LearnedRelativePositionMixing((3, 3), groups=2)
    with torch.no_grad():
        mix.table.normal_()
        mix.token_bias.normal_()
    u = torch.randn(5, 9, 6)
    coords = [(i, j) for i in range(3) for j in range(3)]
    want = torch.zeros_like(u)
    for m, (hm, wm) in enumerate(coords):
        for n, (hn, wn) in enumerate(coords):
            row = (hm - hn + 2) * 5 + (wm - wn + 2)  # Swin index, window 3
            for c in range(6):
                want[:, m, c] += mix.table[row, c % 2] * u[:, n, c]  # interleaved groups: c mod g
        want[:, m, :] += mix.token_bias[m]
    torch.testing.assert_close(mix(u), want)


def test_temporal_index_is_toeplitz():
    idx = relative_index(torch.arange(4)[:, None], (4,))
    assert idx[0].tolist() == [3, 2, 1, 0] and idx[3].tolist() == [6, 5, 4, 3]


def test_temporal_unit_sees_frame_order():
    torch.manual_seed(0)
    block = PosMLPParallelBlock(8, (4, 4, 4), window=4, groups=2)
    with torch.no_grad():
        block.temporal.unit.mix.table.normal_()
        block.temporal.fc2.weight.normal_()
    x = torch.randn(1, 4, 4, 4, 8)
    flipped = block(x.flip(1)).flip(1)
    assert not torch.allclose(block(x), flipped, atol=1e-4)


@pytest.mark.slow
def test_released_model_flops_within_one_percent():
    from explorer.cost import example_input
    from explorer.models import build, preset

    arch = preset("posmlp_video_72d")
    assert count_flops(build(arch), example_input(arch)) / 1e9 == pytest.approx(40.486, rel=0.01)


ARRANGEMENTS = ["parallel", "spatial_temporal", "temporal_spatial", "joint"]


def _block(arrangement, dim=16, grid=(5, 8, 4), window=4, groups=4, temporal_window=None):
    from explorer.blocks import BlockContext, get_mixer

    entry = get_mixer("posmlp")
    opts = entry.options(arrangement=arrangement, groups=groups, window=window, temporal_window=temporal_window)
    return entry.build(BlockContext(dim, grid, 2.0, 0.0), opts)


def _perturb(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Zero-initialised tables and biases hide differences: give every parameter random values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return module


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
def test_shapes_with_odd_frames_and_non_square_grid(arrangement):
    x = torch.randn(2, 5, 8, 4, 16)
    assert _block(arrangement)(x).shape == x.shape


def test_arrangements_compute_different_functions():
    x = torch.randn(1, 5, 8, 4, 16)
    outs = {a: _perturb(_block(a))(x) for a in ARRANGEMENTS}
    for i, a in enumerate(ARRANGEMENTS):
        for b in ARRANGEMENTS[i + 1 :]:
            assert not torch.allclose(outs[a], outs[b], atol=1e-4), (a, b)


def test_joint_unit_table_and_cost():
    block = _block("joint", temporal_window=5)
    table = block.joint.unit.mix.table
    assert table.shape == ((2 * 5 - 1) * (2 * 4 - 1) ** 2, 4)
    m, n, c = 2 * 5 * 8 * 4, 5 * 4 * 4, 16
    assert count_flops(block, torch.randn(2, 5, 8, 4, 16)) == 3 * m * c * c + m * n * c + 5 * m * c


def test_joint_lrpe_matches_brute_force():
    mix = _perturb(LearnedRelativePositionMixing((2, 2, 3), groups=2))
    coords = [(t, h, w) for t in range(2) for h in range(2) for w in range(3)]
    u = torch.randn(3, 12, 4)
    want = torch.zeros_like(u)
    for m, pm in enumerate(coords):
        for n, pn in enumerate(coords):
            row = ((pm[0] - pn[0] + 1) * 3 + (pm[1] - pn[1] + 1)) * 5 + (pm[2] - pn[2] + 2)
            for c in range(4):
                want[:, m, c] += mix.table[row, c % 2] * u[:, n, c]
        want[:, m] += mix.token_bias[m]
    torch.testing.assert_close(mix(u), want)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arrangement": "joint", "temporal_window": 2}, "temporal_window 2 does not divide the 5 frames"),
        ({"arrangement": "parallel", "window": 3}, "window 3 does not tile the 8x4 grid"),
        ({"arrangement": "parallel", "groups": 3}, "groups 3 do not divide width 16"),
    ],
)
def test_invalid_combinations_name_both_numbers(kwargs, message):
    from explorer.blocks import InvalidCombination

    with pytest.raises(InvalidCombination, match=message):
        _block(**kwargs)


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
def test_every_arrangement_trains(arrangement, train_losses):
    torch.manual_seed(0)
    block = _block(arrangement)
    head = torch.nn.Linear(16, 3)
    x, y = torch.randn(8, 5, 8, 4, 16), torch.randint(0, 3, (8,))
    losses = train_losses(
        lambda v: head(block(v).mean(dim=(1, 2, 3))),
        [*block.parameters(), *head.parameters()],
        x,
        y,
        steps=8,
        lr=1e-2,
        optimizer=torch.optim.Adam,
    )
    assert losses[-1] < losses[0]
    assert block.state_dict() and any(p.abs().sum() > 0 for n, p in block.named_parameters() if "table" in n)
