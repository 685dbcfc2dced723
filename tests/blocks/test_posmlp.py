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
