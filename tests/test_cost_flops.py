"""FLOP counting: fvcore (the papers' convention) against torch's FlopCounterMode ÷ 2 on every block family, the
per-part / per-operator breakdowns, and the element-wise figure."""

import json

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from explorer.arch import Arch
from explorer.cost import count_flops, example_input, flop_breakdown
from explorer.models import build, preset

# fvcore counts these (about one FLOP per element, its convention for norms); FlopCounterMode has no formula for them
NORM_OPS = ("layer_norm", "batch_norm", "group_norm", "instance_norm")


def _sdpa_cpu_formula(q, k, v, *args, out_shape=None, **kwargs):
    """FlopCounterMode has no formula for the CPU flash-attention kernel SDPA dispatches to: 2 FLOPs per MAC of
    Q·Kᵀ and A·V."""
    batch = 1
    for s in q[:-2]:
        batch *= s
    return 2 * batch * q[-2] * k[-2] * (q[-1] + v[-1])


def torch_flops(model: nn.Module, x: torch.Tensor) -> int:
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_formula}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    # autograd stays on: FlopCounterMode's module tracker hooks outputs' grad_fns and fails on a bare parameter
    # (Mobile-Former's global tokens) under no_grad
    with counter:
        model.eval()(x)
    return counter.get_total_flops()


def variant(name: str, kind: str, drop_merge: bool = False, **options) -> Arch:
    spec = json.loads(preset(name).to_json())
    hit = False
    for stage in spec["stages"]:
        if drop_merge:
            stage.pop("merge", None)
        if stage["mixer"]["kind"] == kind:
            stage["mixer"]["options"].update(options)
            hit = True
    assert hit, f"{name} has no {kind} stage"
    return Arch.from_dict(spec)


CASES = {
    "conv3d_tiny": lambda: preset("conv3d_tiny"),
    "posmlp_tiny": lambda: preset("posmlp_tiny"),
    "posmlp_tiny/joint": lambda: variant("posmlp_tiny", "posmlp", arrangement="joint"),
    "posmlp_tiny/temporal_spatial": lambda: variant("posmlp_tiny", "posmlp", arrangement="temporal_spatial"),
    "morphmlp_tiny": lambda: preset("morphmlp_tiny"),
    "focal_tiny": lambda: preset("focal_tiny"),
    "focal_tiny/serial": lambda: variant("focal_tiny", "focal", combination="serial"),
    "focal_tiny/joint3d": lambda: variant("focal_tiny", "focal", combination="joint3d"),
    "vit_tiny_tome": lambda: preset("vit_tiny_tome"),
    "vit_tiny_sttm": lambda: preset("vit_tiny_sttm"),
    "vit_tiny_tome/divided": lambda: variant("vit_tiny_tome", "attention", drop_merge=True, space_time="divided"),
    "mobile_former_tiny": lambda: preset("mobile_former_tiny"),
    "mobile_former_26m": lambda: preset("mobile_former_26m"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fvcore_and_flop_counter_mode_agree(case):
    arch = CASES[case]()
    model, x = build(arch), example_input(arch)
    report = flop_breakdown(model, x)
    fv = report.total - sum(v for op, v in report.by_operator.items() if op in NORM_OPS)
    tm = torch_flops(model, x) / 2
    assert fv > 0 and tm > 0
    assert abs(fv - tm) / tm < 0.02, f"{case}: fvcore {fv:,} vs FlopCounterMode/2 {tm:,.0f}"


@pytest.mark.parametrize("name", ["vit_tiny_tome", "mobile_former_tiny", "focal_tiny"])
def test_breakdown_sums_to_total_and_names_parts(name):
    arch = preset(name)
    model, x = build(arch), example_input(arch)
    report = flop_breakdown(model, x, elementwise=True)
    assert report.total == count_flops(model, x)
    assert sum(report.by_part.values()) == report.total
    assert list(report.by_part)[:2] == ["stem", "stages.0"] and list(report.by_part)[-1] == "head"
    assert sum(report.by_operator.values()) == report.total
    assert report.elementwise > 0


def test_attention_operator_is_counted_in_a_vit():
    arch = preset("vit_tiny_tome")
    report = flop_breakdown(build(arch), example_input(arch))
    assert report.by_operator["scaled_dot_product_attention"] > 0


class _Elementwise(nn.Module):
    def forward(self, x):
        return torch.nn.functional.gelu(x * 2 + 1).softmax(-1)


def test_elementwise_counts_one_per_output_element():
    x = torch.randn(3, 5, 7)
    report = flop_breakdown(_Elementwise(), x, elementwise=True)
    assert report.total == 0
    assert report.elementwise == 4 * 3 * 5 * 7  # mul, add, gelu, softmax


def test_linear_layer_in_a_3d_tensor_and_depthwise_conv():
    assert count_flops(nn.Linear(6, 10), torch.randn(2, 3, 4, 6)) == 2 * 3 * 4 * 6 * 10
    dw = nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8)
    assert count_flops(dw, torch.randn(1, 8, 4, 6, 6)) == 8 * 4 * 6 * 6 * 27
