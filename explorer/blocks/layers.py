"""Small pieces every family shares (timm's layers cover the rest)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_


def init_linear(m: nn.Module) -> None:
    """timm / PySlowFast init used by every released family: truncated-normal (σ = 0.02) Linear weights, zero
    biases; LayerNorm keeps (1, 0). Apply with ``module.apply(init_linear)``."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def drop_path_or_identity(rate: float) -> nn.Module:
    """Stochastic depth at ``rate``; an Identity when it is 0, so eval-time graphs and FLOP counts stay clean."""
    return DropPath(rate) if rate > 0 else nn.Identity()


_CL3D = torch.channels_last_3d


def _depthwise_weight_grad(
    grad_out: torch.Tensor, x: torch.Tensor, weight_shape: torch.Size, padding: tuple[int, int, int], multiplier: int
) -> torch.Tensor:
    """The weight gradient of a stride-1, undilated depthwise convolution: tap (a, b, c) of channel k is the sum,
    over clips and output positions, of the output gradient times the padded input shifted by (a, b, c). On
    channels-last tensors each product and sum runs along contiguous channel rows. Output channel k reads input
    channel k // multiplier."""
    pt, ph, pw = padding
    if multiplier > 1:
        x = x.repeat_interleave(multiplier, dim=1)
    padded = F.pad(x, (pw, pw, ph, ph, pt, pt)).permute(0, 2, 3, 4, 1)  # (N, T', H', W', C)
    grad = grad_out.permute(0, 2, 3, 4, 1)
    t, h, w = grad.shape[1:4]
    kt, kh, kw = weight_shape[2:]
    taps = [
        (grad * padded[:, a : a + t, b : b + h, c : c + w]).sum((0, 1, 2, 3))
        for a in range(kt)
        for b in range(kh)
        for c in range(kw)
    ]
    return torch.stack(taps, 1).reshape(weight_shape)  # contiguous, as the weight it is the gradient of


class _DepthwiseConv3dFunction(torch.autograd.Function):
    """Depthwise 3-D convolution whose backward avoids PyTorch's slow CPU path for it.

    Measured at one thread (``experiments/proxy_recipe/probe.py dwconv``: C = 128, 32 clips of 8×8×8, 3×3×3 kernel):
    PyTorch's forward + backward takes ~90 ms on channels-last input against ~2 ms for the forward alone. The input
    gradient of a stride-1 depthwise convolution is itself a depthwise convolution with the flipped kernel (forward
    speed). The weight gradient is one multiply-and-sum per kernel tap (``_depthwise_weight_grad``): PyTorch's
    backward asked for it alone still took a third of Mobile-Former's step; with this the step is 1.2x faster
    (``experiments/proxy_recipe/README.md``, "Training-loop speed").
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        padding: tuple[int, int, int],
        groups: int,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.groups, ctx.has_bias = padding, groups, bias is not None
        return F.conv3d(x, weight, bias, 1, padding, 1, groups)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_out = grad_out.contiguous(memory_format=_CL3D)
        grad_x = grad_w = grad_b = None
        # output channel g·m + j reads input channel g
        multiplier = weight.shape[0] // ctx.groups
        if ctx.needs_input_grad[0]:
            # the transposed kernel groups the m outputs of each input
            flipped = weight.flip(2, 3, 4).reshape(ctx.groups, multiplier, *weight.shape[2:])
            # the transposed convolution pads by k - 1 - p (the forward's own padding only when that is k // 2)
            full = [k - 1 - p for k, p in zip(weight.shape[2:], ctx.padding)]
            grad_x = F.conv3d(grad_out, flipped.contiguous(memory_format=_CL3D), None, 1, full, 1, ctx.groups)
        if ctx.needs_input_grad[1]:
            grad_w = _depthwise_weight_grad(grad_out, x, weight.shape, ctx.padding, multiplier)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3, 4))
        return grad_x, grad_w, grad_b, None, None


class DepthwiseConv3d(nn.Conv3d):
    """``nn.Conv3d`` with ``groups = in_channels`` (channel multiplier ``out/in``), with a faster CPU training step.

    The same parameters, state dict, outputs and gradients as ``nn.Conv3d``; only the training step of a stride-1,
    zero-padded, undilated convolution on the CPU takes the fast path (``_DepthwiseConv3dFunction``), in the
    channels-last layout. Evaluation, tracing (fvcore counts ``aten::_convolution``) and GPUs use ``nn.Conv3d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=in_channels, bias=bias)

    def _fast_path(self, x: torch.Tensor) -> bool:
        return (
            torch.is_grad_enabled()
            and x.device.type == "cpu"
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and self.stride == (1, 1, 1)
            and self.dilation == (1, 1, 1)
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and all(p < k for p, k in zip(self.padding, self.kernel_size))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fast_path(x):
            return super().forward(x)
        return _DepthwiseConv3dFunction.apply(
            x.contiguous(memory_format=_CL3D), self.weight, self.bias, self.padding, self.groups
        )
