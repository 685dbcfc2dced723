"""Video-FocalNets against the released models' numbers (tests/data/reference_numbers.json), the focal-modulation
formula (docs/seed_blocks.md) and the release's initialisation."""

import pytest
import torch
import torch.nn.functional as F

from explorer.arch import Arch
from explorer.blocks import BlockContext, get_mixer, parse_options
from explorer.blocks.focal import FocalBlock, FocalModulation, FocalOptions, focal_kernels, video_focalnet_spec
from explorer.cost import count_flops, count_params, example_input
from explorer.models import build, preset

COMBINATIONS = ["parallel", "serial", "spatial_only", "joint3d"]
T_DIMS, T_DEPTHS = (96, 192, 384, 768), (2, 2, 6, 2)
B_DIMS, B_DEPTHS = (128, 256, 512, 1024), (2, 2, 18, 2)
# element-wise ops fvcore leaves uncounted by convention (the release's count leaves the same kinds out)
ELEMENTWISE = {"aten::mul", "aten::add", "aten::gelu", "aten::mean", "aten::unflatten", "aten::flatten"}


def _block(dim=16, mlp_ratio=4.0, **options) -> FocalBlock:
    entry = get_mixer("focal")
    return entry.build(BlockContext(dim, (4, 6, 6), mlp_ratio, 0.0), entry.options(**options))


def _perturb(module: torch.nn.Module, std: float = 0.2) -> None:
    """Trained-like weights: the 0.02-std init makes every branch's contribution tiny (LayerNorms kept at 1/0)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in module.modules():
            if not isinstance(m, torch.nn.LayerNorm):
                for p in m.parameters(recurse=False):
                    p.normal_(0.0, std)


def _load_shared(dst: torch.nn.Module, src: torch.nn.Module) -> int:
    """Copy every tensor whose name and shape match, so two options differ only where they must."""
    mine = dst.state_dict()
    shared = {k: v for k, v in src.state_dict().items() if k in mine and mine[k].shape == v.shape}
    dst.load_state_dict({**mine, **shared})
    return len(shared)


# ------------------------------------------------------------------------------------ released numbers


@pytest.mark.parametrize(
    "dim, params, gflops, mod_params, mod_gflops",
    [
        (96, 208038, 5.2071, 133446, 3.3333),  # focal_block_stage1_c96 (T/S stage 1)
        (128, 367494, 9.2035, 235270, 5.8830),  # focal_block_stage1_c128 (B stage 1)
    ],
)
def test_stage1_block_params_and_flops_match_the_release(dim, params, gflops, mod_params, mod_gflops):
    block = FocalBlock(dim, 4.0, 0.0, FocalOptions())
    modulation = block.modulations[0]
    assert count_params(block) == params
    assert count_params(modulation) == mod_params == 14 * dim**2 + 46 * dim + 6
    temporal = modulation.contexts[1]
    assert count_params(temporal.focal_layers) == 8 * dim**2  # dense C×C×k, k = 3 + 5 (pitfall 1)
    x = torch.randn(1, 8, 56, 56, dim)
    assert count_flops(block, x) / 1e9 == pytest.approx(gflops, rel=1e-3)
    assert count_flops(modulation, x) / 1e9 == pytest.approx(mod_gflops, rel=1e-3)
    n = 8 * 56 * 56
    assert count_flops(modulation, x) == n * (14 * dim**2 + 40 * dim)  # the modulation formula, exact


def test_video_focalnet_t_params_exact_and_flops_per_stage():
    from fvcore.nn import FlopCountAnalysis

    arch = preset("video_focalnet_t")
    model = build(arch).eval()
    assert count_params(model) == 49553272
    analysis = FlopCountAnalysis(model, example_input(arch))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analysis.total() / 1e9
    assert total == pytest.approx(63.14, rel=0.01)
    assert set(analysis.unsupported_ops()) <= ELEMENTWISE
    # the release's stage split (the release counts each stage's trailing downsampling with it): the shared skeleton's
    # per-frame stem, patch merging and head reproduce the release
    by = {k: v / 1e9 for k, v in analysis.by_module().items()}
    assert by["stem"] == pytest.approx(0.13, abs=0.005)
    for i, want in enumerate((10.88, 10.76, 31.16)):
        assert by[f"stages.{i}"] + by[f"downs.{i + 1}"] == pytest.approx(want, abs=0.005)
    assert by["stages.3"] == pytest.approx(10.20, abs=0.005)


def test_video_focalnet_b_params_exact():
    assert count_params(build(preset("video_focalnet_b"))) == 157389216


@pytest.mark.slow
def test_video_focalnet_b_flops_within_one_percent():
    arch = preset("video_focalnet_b")
    assert count_flops(build(arch), example_input(arch)) / 1e9 == pytest.approx(220.93, rel=0.01)


@pytest.mark.parametrize(
    "options, t_params, b_params",
    [({"temporal_conv": "depthwise"}, 32.34e6, 101.65e6), ({"combination": "spatial_only"}, 27.97e6, 87.53e6)],
)
def test_design_space_reference_points(options, t_params, b_params):
    """Our variants' reference points, measured with the official code (params; GFLOPs below, slow)."""
    for dims, depths, want in ((T_DIMS, T_DEPTHS, t_params), (B_DIMS, B_DEPTHS, b_params)):
        arch = Arch.from_dict(video_focalnet_spec(8, 224, 400, dims, depths, 0.0, **options))
        assert count_params(build(arch)) == pytest.approx(want, abs=0.005e6)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options, gflops", [({"temporal_conv": "depthwise"}, 41.03), ({"combination": "spatial_only"}, 35.36)]
)
def test_design_space_reference_flops(options, gflops):
    arch = Arch.from_dict(video_focalnet_spec(8, 224, 400, T_DIMS, T_DEPTHS, 0.0, **options))
    assert count_flops(build(arch), example_input(arch)) / 1e9 == pytest.approx(gflops, rel=0.01)


# ------------------------------------------------------------------------------------ the formula


def _reference_parallel(mod: FocalModulation, x: torch.Tensor) -> torch.Tensor:
    """The modulation formula written out: per-frame depthwise convs (a loop over frames), a dense Conv1d over T per
    position."""
    b, t, h, w, c = x.shape
    levels = mod.levels
    spatial, temporal = mod.contexts
    q, z, g = F.linear(x, mod.f.weight, mod.f.bias).split((c, c, levels + 1), -1)
    frames = []
    for i in range(t):  # spatial branch: each frame alone
        zs = z[:, i].permute(0, 3, 1, 2)
        gs = g[:, i].permute(0, 3, 1, 2)
        agg = 0
        for level, layer in enumerate(spatial.focal_layers):
            k = layer[0].weight.shape[-1]
            zs = F.gelu(F.conv2d(zs, layer[0].weight, padding=k // 2, groups=c))
            agg = agg + gs[:, level : level + 1] * zs
        agg = agg + gs[:, levels:] * F.gelu(zs.mean((2, 3), keepdim=True))
        frames.append(agg.permute(0, 2, 3, 1))
    m_s = F.linear(torch.stack(frames, 1), spatial.h.weight, spatial.h.bias)
    zt, gt = F.linear(x, mod.f_branches[0].weight, mod.f_branches[0].bias).split((c, levels + 1), -1)
    zt = zt.permute(0, 2, 3, 4, 1).reshape(b * h * w, c, t)  # one sequence of T per position
    gt = gt.permute(0, 2, 3, 4, 1).reshape(b * h * w, levels + 1, t)
    agg = 0
    for level, layer in enumerate(temporal.focal_layers):
        weight = layer[0].weight[..., 0]  # (C, C, k): dense Conv1d
        zt = F.gelu(F.conv1d(zt, weight, padding=weight.shape[-1] // 2))
        agg = agg + gt[:, level : level + 1] * zt
    agg = agg + gt[:, levels:] * F.gelu(zt.mean(2, keepdim=True))
    agg = agg.reshape(b, h, w, c, t).permute(0, 4, 1, 2, 3)
    m_t = F.linear(agg, temporal.h.weight, temporal.h.bias)
    return F.linear(q * m_s * m_t, mod.proj.weight, mod.proj.bias)


@pytest.mark.parametrize("levels, window", [(2, 3), (3, 1)])
def test_parallel_modulation_equals_the_reference_formula(levels, window):
    mod = FocalModulation(12, ("spatial", "temporal"), levels, window)
    _perturb(mod)
    x = torch.randn(2, 5, 6, 7, 12)
    torch.testing.assert_close(mod(x), _reference_parallel(mod, x), rtol=1e-4, atol=1e-5)


def test_kernels_and_param_formula_for_other_levels():
    assert focal_kernels(2, 3) == [3, 5] and focal_kernels(3, 5) == [5, 7, 9]
    c, levels, window = 16, 3, 5
    ks = focal_kernels(levels, window)
    g = levels + 1
    want = (
        (c * (2 * c + g) + 2 * c + g)
        + (c * (c + g) + c + g)
        + 3 * (c * c + c)
        + c * sum(k * k for k in ks)
        + c * c * sum(ks)
    )
    assert count_params(FocalModulation(c, ("spatial", "temporal"), levels, window)) == want
    depthwise = FocalModulation(c, ("spatial", "temporal"), levels, window, dense_temporal=False)
    assert count_params(depthwise) == want - c * c * sum(ks) + c * sum(ks)
    joint = FocalModulation(c, ("joint",), levels, window)
    assert count_params(joint) == (c * (2 * c + g) + 2 * c + g) + 2 * (c * c + c) + c * sum(k**3 for k in ks)


def test_spatial_ops_act_per_frame():
    """spatial_only: every frame's output depends on that frame alone (frames folded into the batch)."""
    block = _block(combination="spatial_only")
    _perturb(block)
    x = torch.randn(1, 3, 6, 5, 16)
    whole = block(x)
    for t in range(3):
        torch.testing.assert_close(whole[:, t : t + 1], block(x[:, t : t + 1]), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------ options and shapes


@pytest.mark.parametrize("combination", COMBINATIONS)
@pytest.mark.parametrize("temporal_conv", ["dense", "depthwise"])
@pytest.mark.parametrize("grid", [(5, 6, 6), (3, 4, 7), (1, 2, 2)])
def test_shapes_odd_t_and_non_square(combination, temporal_conv, grid):
    block = _block(combination=combination, temporal_conv=temporal_conv, focal_levels=3, focal_window=1)
    x = torch.randn(2, *grid, 16)
    assert block(x).shape == x.shape


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_tiny_models_odd_frames(combination):
    spec = preset("focal_tiny").to_dict()
    spec["input"]["frames"] = 5
    for stage in spec["stages"]:
        stage["mixer"]["options"]["combination"] = combination
    arch = Arch.from_dict(spec)
    model = build(arch)
    assert model(example_input(arch, 2)).shape == (2, 12)


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_op_with_real_work_is_counted(combination):
    block = _block(combination=combination)
    x = torch.randn(1, 4, 6, 6, 16)
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(block.eval(), x)
    analysis.unsupported_ops_warnings(False)
    assert analysis.total() > 0 and set(analysis.unsupported_ops()) <= ELEMENTWISE


def test_options_are_checked_and_canonical():
    with pytest.raises(ValueError, match="focal_window"):
        parse_options("focal", {"focal_window": 4})
    with pytest.raises(ValueError, match="focal_levels"):
        parse_options("focal", {"focal_levels": 0})
    with pytest.raises(ValueError, match="combination"):
        parse_options("focal", {"combination": "divided"})
    with pytest.raises(ValueError, match="unknown option"):
        parse_options("focal", {"focal_factor": 2})
    # no temporal branch: the temporal-conv choice builds the same model, so it is normalised (same hash)
    assert parse_options("focal", {"combination": "joint3d", "temporal_conv": "depthwise"}).temporal_conv == "dense"
    assert parse_options("focal", {"combination": "serial", "temporal_conv": "depthwise"}).temporal_conv == "depthwise"
    specs = [
        video_focalnet_spec(8, 32, 12, (32,), (1,), 0.0, combination="spatial_only", **extra)
        for extra in ({}, {"temporal_conv": "depthwise"})
    ]
    from explorer.models import validate_arch

    a, b = (validate_arch(Arch.from_dict(s)) for s in specs)
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    "base, other",
    [
        ({}, {"combination": "spatial_only"}),  # drop the temporal modulator (all other weights shared)
        ({}, {"combination": "serial"}),
        ({}, {"combination": "joint3d"}),
        ({"combination": "serial"}, {"combination": "spatial_only"}),
        ({"combination": "joint3d"}, {"combination": "spatial_only"}),
        ({}, {"temporal_conv": "depthwise"}),
        ({"combination": "serial"}, {"combination": "serial", "temporal_conv": "depthwise"}),
        ({}, {"focal_levels": 3}),
        ({}, {"focal_window": 5}),
        ({"combination": "joint3d"}, {"combination": "joint3d", "focal_window": 5}),
    ],
)
def test_every_option_changes_the_function(base, other):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6, 16)
    first = _block(**base)
    _perturb(first)
    second = _block(**other)
    _perturb(second)
    assert _load_shared(second, first) > 0  # same weights wherever the two share a tensor
    assert not torch.allclose(first(x), second(x), atol=1e-4)


def test_mlp_ratio_comes_from_the_stage():
    assert _block(mlp_ratio=2.0).mlp.fc1.out_features == 32 and _block().mlp.fc1.out_features == 64


# ------------------------------------------------------------------------------------ behaviour


def test_spatial_only_is_blind_to_frame_order_and_parallel_is_not():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    for combination, blind in (("spatial_only", True), ("parallel", False), ("serial", False), ("joint3d", False)):
        spec = video_focalnet_spec(8, 32, 12, (32, 64), (1, 1), 0.0, combination=combination)
        model = build(Arch.from_dict(spec)).eval()
        _perturb(model, 0.1)
        with torch.no_grad():
            same = torch.allclose(model(x), model(x[:, :, perm]), rtol=1e-4, atol=1e-5)
        assert same == blind, combination


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_tiny_model_trains(combination, train_losses):
    torch.manual_seed(0)
    spec = video_focalnet_spec(8, 32, 12, (32, 64), (1, 1), 0.1, combination=combination)
    arch = Arch.from_dict(spec)
    model = build(arch)
    x, y = example_input(arch, 4), torch.randint(0, 12, (4,))
    losses = train_losses(model, model.parameters(), x, y, steps=6, lr=1e-3)
    assert losses[-1] < losses[0]


def test_focal_tiny_preset():
    arch = preset("focal_tiny")
    assert [s.mixer.kind for s in arch.stages] == ["focal", "focal"]
    assert arch.stages[0].mixer.options == FocalOptions().model_dump()
    model = build(arch)
    assert model(example_input(arch, 2)).shape == (2, 12)


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_modulator_starts_at_the_release_init(combination):
    """The release's ``h`` is a 1×1 conv left at PyTorch's default init by its Linear-only init: weight std
    1/√(3C) and a non-zero uniform bias in ±1/√C. (At σ = 0.02 and zero bias the modulation starts frozen.)"""
    dim = 64
    torch.manual_seed(0)
    block = _block(dim=dim, combination=combination)
    for modulation in block.modulations:
        for context in modulation.contexts:
            assert context.h.weight.std().item() == pytest.approx((3 * dim) ** -0.5, rel=0.1)
            assert 0 < context.h.bias.abs().max().item() <= dim**-0.5
            assert context.h.bias.std().item() == pytest.approx((3 * dim) ** -0.5, rel=0.3)


@pytest.mark.parametrize("combination", ["parallel", "serial"])
def test_modulation_is_alive_at_init(combination):
    """A unit-variance clip gives a modulation output of ~1e-4 of its input at proxy width (C = 32), not ~1e-9,
    and the focal convs get gradients (~1e-9) that AdamW's ε (1e-8) does not swamp by orders of magnitude."""
    torch.manual_seed(0)
    block = _block(dim=32, combination=combination)
    x = torch.randn(4, 4, 6, 6, 32)
    out = block.modulations[0](block.norms[0](x))
    assert out.pow(2).mean().sqrt().item() > 1e-5
    out.mul(torch.randn_like(out)).mean().backward()
    conv_grads = [
        m.weight.grad.abs().max().item()
        for m in block.modulations[0].modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))
    ]
    assert min(conv_grads) > 1e-11
