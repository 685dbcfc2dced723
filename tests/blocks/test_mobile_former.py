import math

import pytest
import torch
import torch.nn.functional as F

from explorer.arch import Arch, ArchError
from explorer.blocks import BlockContext, InvalidCombination, get_mixer
from explorer.blocks.mobile_former import (
    DynamicReLU,
    Former,
    FormerToMobile,
    GlobalTokenBridge,
    MobileFormerBlock,
    MobileToFormer,
)
from explorer.cost import count_flops, count_params
from explorer.models import build, preset


def _randomise(module: torch.nn.Module) -> torch.nn.Module:
    """Perturb zero-initialised parts (dynamic-ReLU W_2, LayerNorm affine) so option tests can fail."""
    torch.manual_seed(123)
    for m in module.modules():
        if isinstance(m, DynamicReLU):
            torch.nn.init.normal_(m.hyper[2].weight, std=0.5)
            torch.nn.init.normal_(m.hyper[2].bias, std=0.5)
        if isinstance(m, torch.nn.LayerNorm):
            torch.nn.init.normal_(m.weight, 1.0, 0.2)
            torch.nn.init.normal_(m.bias, 0.0, 0.2)
    return module


def test_mobile_to_former_is_the_per_head_softmax_with_raw_keys_and_values():
    torch.manual_seed(0)
    b, n, c, m, d, h = 2, 5, 4, 3, 6, 2
    layer = _randomise(MobileToFormer(c, d, heads=h)).eval()
    x, z = torch.randn(b, n, c), torch.randn(b, m, d)
    q = z @ layer.q.weight.T + layer.q.bias
    heads = []
    for i in range(h):
        sl = slice(i * c // h, (i + 1) * c // h)
        a = torch.softmax(q[..., sl] @ x[..., sl].transpose(1, 2) / math.sqrt(c / h), dim=-1)  # (B, M, N)
        heads.append(a @ x[..., sl])
    o = torch.cat(heads, -1) * 2 * F.hardsigmoid(z @ layer.gate.weight.T + layer.gate.bias)
    expected = F.layer_norm(z + o @ layer.proj.weight.T + layer.proj.bias, (d,), layer.norm.weight, layer.norm.bias)
    torch.testing.assert_close(layer(x, z), expected)


def test_former_has_query_only_projection_and_post_norm_ffn():
    torch.manual_seed(0)
    b, m, d, h = 2, 3, 8, 4
    layer = _randomise(Former(d, heads=h)).eval()
    z = torch.randn(b, m, d)
    q = layer.q(z)
    heads = []
    for i in range(h):
        sl = slice(i * d // h, (i + 1) * d // h)
        a = torch.softmax(q[..., sl] @ z[..., sl].transpose(1, 2) / math.sqrt(d / h), dim=-1)
        heads.append(a @ z[..., sl])
    z1 = layer.norm1(z + layer.proj(torch.cat(heads, -1)))
    expected = layer.norm2(z1 + layer.ffn[2](F.gelu(layer.ffn[0](z1))))
    torch.testing.assert_close(layer(z), expected)


def test_former_to_mobile_uses_features_as_queries_without_output_projection():
    torch.manual_seed(0)
    b, n, c, m, d, h = 2, 7, 6, 3, 5, 2
    layer = FormerToMobile(c, d, heads=h)
    x, z = torch.randn(b, n, c), torch.randn(b, m, d)
    k, v = layer.k(z), layer.v(z)
    heads = []
    for i in range(h):
        sl = slice(i * c // h, (i + 1) * c // h)
        a = torch.softmax(x[..., sl] @ k[..., sl].transpose(1, 2) / math.sqrt(c / h), dim=-1)  # softmax over M
        heads.append(a @ v[..., sl])
    torch.testing.assert_close(layer(x, z), x + torch.cat(heads, -1))


def test_dynamic_relu_slopes_come_from_token_zero_and_start_as_relu():
    torch.manual_seed(0)
    act = DynamicReLU(4, 8)
    x, z0 = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 8)
    torch.testing.assert_close(act(x, z0), F.relu(x))  # W_2 = 0: a = ½ ⇒ α₁ = 1, α₂ = 0
    _randomise(act)
    a1, a2 = act.hyper(z0)[:, :, None, None, None].chunk(2, dim=1)
    expected = torch.maximum((2 * (a1 - 0.5) + 1) * x, 2 * (a2 - 0.5) * x)
    torch.testing.assert_close(act(x, z0), expected)


@pytest.mark.parametrize("c,d", [(16, 32), (24, 192), (64, 128)])
def test_bridge_params_match_the_spec_formulas(c, d):
    assert count_params(MobileToFormer(c, d)) == 3 * c * d + 2 * c + 3 * d
    assert count_params(MobileToFormer(c, d, token_gate=False)) == 2 * c * d + c + 3 * d
    assert count_params(FormerToMobile(c, d)) == 2 * (d * c + c)
    assert count_params(Former(d)) == 6 * d * d + 9 * d


def test_bridge_flops_count_the_attention():
    b, n, c, m, d = 1, 4 * 8 * 8, 16, 6, 32
    x, z = torch.randn(b, n, c), torch.randn(b, m, d)
    # projections + the two attention products (2·M·N·C) + LayerNorm (5 per element, fvcore)
    assert count_flops(MobileToFormer(c, d), (x, z)) == 3 * m * d * c + 2 * m * n * c + 5 * m * d
    assert count_flops(FormerToMobile(c, d), (x, z)) == 2 * m * d * c + 2 * n * m * c
    assert count_flops(Former(d), z) == 6 * m * d * d + 2 * m * m * d + 2 * 5 * m * d


def _block(tokens=(4, 16), grid=(3, 4, 5), dim=8, **options) -> MobileFormerBlock:
    entry = get_mixer("mobile_former")
    return entry.build(BlockContext(dim, grid, 2.0, 0.0, tokens), entry.options(**options))


@pytest.mark.parametrize("options", [{}, {"temporal_kernel": 1}, {"temporal_kernel": 5}, {"factorized": True},
                                     {"dynamic_relu": False}, {"token_gate": False}, {"expansion": 6},
                                     {"bridge_heads": 4, "former_heads": 2, "former_ffn": 4}])
@pytest.mark.parametrize("grid", [(3, 4, 5), (1, 4, 4), (5, 2, 3)])
def test_block_shapes_with_odd_frames_and_non_square_grids(options, grid):
    block = _block(grid=grid, **options)
    x, z = torch.randn(2, *grid, 8), torch.randn(2, 4, 16)
    y, z2 = block(x, z)
    assert y.shape == x.shape and z2.shape == z.shape
    no_tokens = _block(tokens=(0, 0), grid=grid, **options)
    assert no_tokens(x).shape == x.shape


@pytest.mark.parametrize("option,value", [("expansion", 4.0), ("temporal_kernel", 1), ("factorized", True),
                                          ("dynamic_relu", False), ("bridge_heads", 1), ("former_heads", 2),
                                          ("former_ffn", 4.0), ("token_gate", False)])
def test_every_option_changes_the_function(option, value):
    x, z = torch.randn(2, 3, 4, 4, 8, generator=torch.Generator().manual_seed(1)), torch.randn(2, 4, 16)
    outs = []
    for opts in ({}, {option: value}):
        torch.manual_seed(0)
        block = _randomise(_block(**opts)).eval()
        outs.append(block(x, z))
    assert not torch.allclose(outs[0][0], outs[1][0], atol=1e-5) or not torch.allclose(outs[0][1], outs[1][1])


def test_video_kernel_sees_neighbouring_frames_and_temporal_kernel_1_does_not():
    x = torch.randn(1, 3, 4, 4, 8)
    x2 = x.clone()
    x2[:, 1] += 1.0  # frame 1 is in frame 0's 3-frame window
    for kt, changes in ((3, True), (1, False)):
        torch.manual_seed(0)
        block = _block(tokens=(0, 0), temporal_kernel=kt).eval()
        assert torch.allclose(block(x)[:, 0], block(x2)[:, 0]) != changes


def test_invalid_combinations_are_explained():
    with pytest.raises(InvalidCombination, match="3 heads do not divide width 8"):
        _block(bridge_heads=3)
    with pytest.raises(InvalidCombination, match="temporal_kernel 2"):
        _block(temporal_kernel=2)


def _conv3d_spec(tokens: dict | None) -> dict:
    spec = preset("conv3d_tiny").to_dict()
    spec["stages"][1]["global_tokens"] = tokens
    return spec


def test_global_tokens_are_the_same_for_every_sample_at_init():
    model = build(preset("mobile_former_tiny"))
    z = model.global_tokens(3)
    assert z.shape == (3, 6, 64)
    torch.testing.assert_close(z[0], z[1])
    torch.testing.assert_close(z[0], z[2])


def test_num_zero_equals_no_bridges():
    x = torch.randn(2, 3, 8, 32, 32)
    outs = []
    for tokens in (None, {"num": 0, "width": 64}):
        torch.manual_seed(0)
        model = build(Arch.from_dict(_conv3d_spec(tokens))).eval()
        outs.append((model(x), count_params(model)))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]


def test_global_tokens_attach_to_a_conv3d_stage_change_the_output_and_train():
    torch.manual_seed(0)
    model = build(Arch.from_dict(_conv3d_spec({"num": 4, "width": 32})))
    bridges = [m for m in model.modules() if isinstance(m, GlobalTokenBridge)]
    assert len(bridges) == 1 and type(bridges[0].block).__name__ == "Conv3dBlock"
    x = torch.randn(4, 3, 8, 32, 32)
    model.eval()
    before = model(x)
    with torch.no_grad():
        model.global_tokens.embed.add_(torch.randn_like(model.global_tokens.embed))
    assert not torch.allclose(before, model(x), atol=1e-5)
    model.train()
    _train_decreases_loss(model, x)
    assert model.global_tokens.embed.grad is not None and model.global_tokens.embed.grad.abs().sum() > 0


def _train_decreases_loss(model, x, steps=6):
    y = torch.arange(x.shape[0]) % 12
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_mobile_former_tiny_trains():
    torch.manual_seed(0)
    model = build(preset("mobile_former_tiny"))
    _train_decreases_loss(model, torch.randn(4, 3, 8, 32, 32))


@pytest.mark.parametrize("factorized", [False, True])
def test_block_without_tokens_trains(factorized):
    torch.manual_seed(0)
    spec = preset("mobile_former_tiny").to_dict()
    for s in spec["stages"]:
        s["global_tokens"] = None
        s["mixer"]["options"]["factorized"] = factorized
    _train_decreases_loss(build(Arch.from_dict(spec)), torch.randn(4, 3, 5, 32, 32))


def test_tiny_preset_cost_and_odd_frames():
    model = build(preset("mobile_former_tiny"))
    flops = count_flops(model, torch.randn(1, 3, 8, 32, 32))
    attention_free = build(Arch.from_dict({**preset("mobile_former_tiny").to_dict(), "stages": [
        {**s, "global_tokens": None} for s in preset("mobile_former_tiny").to_dict()["stages"]]}))
    assert flops > count_flops(attention_free, torch.randn(1, 3, 8, 32, 32))
    spec = preset("mobile_former_tiny").to_dict()
    spec["input"]["frames"] = 5
    assert build(Arch.from_dict(spec))(torch.randn(2, 3, 5, 32, 32)).shape == (2, 12)


def test_token_sets_must_agree_across_stages_and_stay_on_grid_stages():
    spec = preset("mobile_former_tiny").to_dict()
    spec["stages"][1]["global_tokens"] = {"num": 6, "width": 32}
    with pytest.raises(ArchError, match="width 32 here, but 6 of width 64 in stage 0"):
        build(Arch.from_dict(spec))
    spec = preset("vit_tiny_tome").to_dict()
    spec["stages"][-1]["global_tokens"] = {"num": 2, "width": 16}
    with pytest.raises(ArchError, match="grid-layout"):
        build(Arch.from_dict(spec))


@pytest.mark.parametrize("kt,factorized", [(3, False), (1, False), (3, True)])
def test_block_params_are_bridges_plus_mobile_plus_dynamic_relu(kt, factorized):
    c, e, m, d = 8, 2, 4, 16
    h = c * e
    block = _block(tokens=(m, d), dim=c, temporal_kernel=kt, factorized=factorized)
    bridges = (3 * c * d + 2 * c + 3 * d) + (6 * d * d + 9 * d) + 2 * (d * c + c)
    depthwise = (9 * h + 2 * h + kt * h + 2 * h) if factorized else (9 * kt * h + 2 * h)
    mobile = (c * h + 2 * h) + depthwise + (h * c + 2 * c)  # 1×1 convs without bias, each with BN
    dyrelu = 2 * ((d * (d // 4) + d // 4) + (d // 4 * 2 * h + 2 * h))
    assert count_params(block) == bridges + mobile + dyrelu
    no_tokens = _block(tokens=(0, 0), dim=c, temporal_kernel=kt, factorized=factorized)
    assert count_params(no_tokens) == mobile
