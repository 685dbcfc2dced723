"""fvcore must count every operator that carries real work, in every family (element-wise ops are uncounted by the
fvcore convention of the papers' GFLOPs columns)."""

import re

import pytest

from explorer.cost import example_input, sdpa_flops
from explorer.models import build, preset

# one small model per family, merging and global tokens included
FAMILY_PRESETS = [
    "conv3d_tiny",
    "posmlp_tiny",
    "morphmlp_tiny",
    "focal_tiny",
    "vit_tiny_tome",
    "vit_tiny_sttm",
    "mobile_former_tiny",
    "mobile_former_26m",
]
WORK = re.compile(r"mm|matmul|conv|einsum|linear|attention|bmm|addmm|dot")


@pytest.mark.parametrize("name", FAMILY_PRESETS)
def test_no_uncounted_operator_carries_work(name):
    from fvcore.nn import FlopCountAnalysis

    arch = preset(name)
    analysis = FlopCountAnalysis(build(arch).eval(), example_input(arch))
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flops)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    assert analysis.total() > 0
    uncounted = [op for op in analysis.unsupported_ops() if WORK.search(op)]
    assert uncounted == [], f"{name}: fvcore skips work-carrying ops {uncounted}"
