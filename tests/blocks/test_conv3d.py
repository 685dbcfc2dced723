import pytest
import torch

from explorer.cost import count_flops, count_params
from explorer.models import build, preset


def test_frame_wise_model_ignores_frame_order_and_3d_does_not():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    perm = torch.randperm(8)
    frame2d = build(preset("frame2d_tiny")).eval()
    torch.testing.assert_close(frame2d(x), frame2d(x[:, :, perm]), rtol=1e-4, atol=1e-5)
    conv3d = build(preset("conv3d_tiny")).eval()
    assert not torch.allclose(conv3d(x), conv3d(x[:, :, perm]), atol=1e-4)


def test_conv3d_block_params_and_flops_are_analytic():
    from explorer.blocks import BlockContext, get_mixer

    entry = get_mixer("conv3d")
    c, t, h = 16, 4, 8
    block = entry.build(BlockContext(c, (t, h, h), 2.0, 0.0), entry.options(kernel_t=3, kernel_s=3))
    m = t * h * h
    # 2 LayerNorms + depthwise 3x3x3 conv + MLP C->2C->C
    assert count_params(block) == 2 * 2 * c + (27 * c + c) + (c * 2 * c + 2 * c) + (2 * c * c + c)
    flops = count_flops(block, torch.randn(1, t, h, h, c))
    assert flops == 2 * 5 * m * c + 27 * m * c + 4 * m * c * c


def test_invalid_window_is_an_invalid_combination():
    from explorer.arch import Arch
    from explorer.blocks import InvalidCombination

    spec = preset("posmlp_tiny").to_dict()
    spec["stages"][0]["mixer"]["options"]["window"] = 3
    with pytest.raises(InvalidCombination, match="window 3 does not tile the 8x8 grid"):
        build(Arch.from_dict(spec))
