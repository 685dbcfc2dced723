"""The fast depthwise Conv3d is nn.Conv3d with a different backward: same outputs and gradients, same FLOP count."""

import pytest
import torch
import torch.nn as nn

from explorer.blocks.layers import DepthwiseConv3d


def _reference(conv: DepthwiseConv3d) -> nn.Conv3d:
    ref = nn.Conv3d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
    ref.load_state_dict(conv.state_dict())
    return ref


@pytest.mark.parametrize(
    "cin,cout,kernel,padding,bias",
    [
        (6, 6, (3, 3, 3), (1, 1, 1), False),
        (4, 12, (3, 3, 3), (1, 1, 1), True),  # channel multiplier 3 (Mobile-Former's expanding depthwise conv)
        (5, 5, (3, 1, 1), (1, 0, 0), False),  # temporal only
        (3, 6, (1, 3, 3), (0, 1, 1), True),
        (4, 4, (5, 3, 3), (2, 1, 1), False),
        (4, 8, (3, 3, 3), (0, 1, 0), False),  # less padding than the kernel's half: the output shrinks
    ],
)
def test_outputs_and_gradients_equal_nn_conv3d(cin, cout, kernel, padding, bias):
    torch.manual_seed(0)
    conv = DepthwiseConv3d(cin, cout, kernel, padding=padding, bias=bias).double()
    ref = _reference(conv).double()
    x = torch.randn(2, cin, 5, 6, 7, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = conv(x1), ref(x2)
    torch.testing.assert_close(y1, y2)
    g = torch.randn_like(y2)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad)
    if bias:
        torch.testing.assert_close(conv.bias.grad, ref.bias.grad)


def test_gradcheck():
    torch.manual_seed(1)
    conv = DepthwiseConv3d(2, 4, (3, 3, 3), padding=1, bias=True).double()
    x = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,))


def test_strided_and_eval_calls_take_nn_conv3d():
    conv = DepthwiseConv3d(4, 8, 3, stride=(1, 2, 2), padding=1)
    ref = _reference(conv)
    x = torch.randn(2, 4, 4, 8, 8, requires_grad=True)
    assert conv(x).grad_fn.name() == ref(x).grad_fn.name()
    with torch.no_grad():
        torch.testing.assert_close(conv(x), ref(x))
    assert "DepthwiseConv3d" in DepthwiseConv3d(4, 4, 3, padding=1)(x).grad_fn.name()


def test_fvcore_counts_it_as_a_convolution():
    from fvcore.nn import FlopCountAnalysis

    conv = DepthwiseConv3d(4, 8, 3, padding=1)
    x = torch.randn(1, 4, 4, 8, 8)
    flops = FlopCountAnalysis(conv, x).unsupported_ops_warnings(False).total()
    assert flops == FlopCountAnalysis(_reference(conv), x).unsupported_ops_warnings(False).total() == 8 * 27 * 4 * 8 * 8
