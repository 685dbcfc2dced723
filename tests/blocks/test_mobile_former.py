import math

import pytest
import torch
import torch.nn.functional as F

from explorer.arch import Arch, ArchError
from explorer.blocks import BlockContext, InvalidCombination, get_mixer, parse_options
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


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"temporal_kernel": 1},
        {"temporal_kernel": 5},
        {"factorized": True},
        {"dynamic_relu": False},
        {"token_gate": False},
        {"expansion": 6},
        {"bridge_heads": 4, "former_heads": 2, "former_ffn": 4},
    ],
)
@pytest.mark.parametrize("grid", [(3, 4, 5), (1, 4, 4), (5, 2, 3)])
def test_block_shapes_with_odd_frames_and_non_square_grids(options, grid):
    block = _block(grid=grid, **options)
    x, z = torch.randn(2, *grid, 8), torch.randn(2, 4, 16)
    y, z2 = block(x, z)
    assert y.shape == x.shape and z2.shape == z.shape
    no_tokens = _block(tokens=(0, 0), grid=grid, **options)
    assert no_tokens(x).shape == x.shape


@pytest.mark.parametrize(
    "option,value",
    [
        ("expansion", 4.0),
        ("temporal_kernel", 1),
        ("factorized", True),
        ("dynamic_relu", False),
        ("bridge_heads", 1),
        ("former_heads", 2),
        ("former_ffn", 4.0),
        ("token_gate", False),
    ],
)
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
    with pytest.raises(ValueError, match="temporal_kernel: must be odd for 'same' padding"):  # refused by the options
        parse_options("mobile_former", {"temporal_kernel": 2})


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
    attention_free = build(
        Arch.from_dict(
            {
                **preset("mobile_former_tiny").to_dict(),
                "stages": [{**s, "global_tokens": None} for s in preset("mobile_former_tiny").to_dict()["stages"]],
            }
        )
    )
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


# ---- released image Mobile-Formers as 1-frame Video Mobile-Formers (single_conv stem, down 'none', dna3 blocks,
# ---- mobile_former head) ----------------------------------------------------------------------------------------

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from explorer.blocks.mobile_former import ChannelShuffle, ConvBlock, MobileBlock3, MobileFormerHead  # noqa: E402

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_numbers.json").read_text())["models"]
RELEASED = ["mobile_former_508m", "mobile_former_151m", "mobile_former_96m", "mobile_former_26m"]


@pytest.mark.parametrize("name", RELEASED)
def test_released_presets_match_the_image_models_params_and_flops(name):
    ref = REFERENCE[f"{name}_image"]
    arch = preset(name)
    assert (arch.input.frames, arch.input.resolution, arch.input.num_classes) == (1, ref["input"][2], 1000)
    model = build(arch).eval()
    assert count_params(model) == ref["params"]
    gflops = count_flops(model, torch.randn(1, 3, 1, 224, 224)) / 1e9
    assert gflops == pytest.approx(ref["gflops"], rel=0.01)


def test_released_508m_structure():
    model = build(preset("mobile_former_508m"))
    blocks = [b for b in model.modules() if isinstance(b, MobileFormerBlock)]
    assert len(blocks) == 12  # the released 12 blocks: 1 conv block, 4 DnaBlock3, 7 DnaBlock
    assert sum(isinstance(b.mobile, ConvBlock) for b in blocks) == 1
    assert sum(isinstance(b.mobile, MobileBlock3) for b in blocks) == 4
    assert [b.identity for b in blocks] == [True, False, True, False, True, False, True, False, True, False, True, True]
    assert isinstance(model.head, MobileFormerHead) and model.norm is None
    assert model.global_tokens.embed.shape == (6, 192)


def test_new_spec_fields_keep_existing_hashes_and_round_trip():
    assert preset("posmlp_video_72d").content_hash == "34b082a8560c"
    assert preset("mobile_former_tiny").content_hash == "7d624fa0cd0f"  # new mixer options omitted at default
    old = preset("posmlp_video_72d").to_dict()
    assert "width" not in old["stem"] and set(old["head"]) == {"pool", "dropout"}
    for name in RELEASED:
        arch = preset(name)
        again = Arch.from_json(arch.to_json())
        assert again == arch and again.content_hash == arch.content_hash
    spec = preset("mobile_former_26m").to_dict()
    assert spec["stem"]["width"] == 8 and spec["head"]["groups"] == 4 and spec["head"]["hidden"] == 1024


def _one_frame_spec(name: str, kt: int, resolution: int = 64) -> dict:
    spec = preset(name).to_dict()
    spec["input"]["resolution"] = resolution
    for s in spec["stages"]:
        s["mixer"]["options"]["temporal_kernel"] = kt
    return spec


@pytest.mark.parametrize("name", ["mobile_former_151m", "mobile_former_26m"])
def test_one_frame_video_model_reduces_to_the_image_model(name):
    """With one frame, k_t×3×3 depthwise kernels only see their centre tap (the others read the zero padding):
    the temporal-kernel-3 model with the kernel-1 weights at its centre computes the same function, at the
    image model's cost when k_t = 1."""
    torch.manual_seed(0)
    image_like = _randomise(build(Arch.from_dict(_one_frame_spec(name, 1)))).eval()
    video = build(Arch.from_dict(_one_frame_spec(name, 3))).eval()
    state = {}
    for key, w in image_like.state_dict().items():
        target = video.state_dict()[key]
        if w.shape != target.shape:  # (C, 1, 1, 3, 3) -> (C, 1, 3, 3, 3), centre tap
            w = torch.zeros_like(target).index_copy_(2, torch.tensor([1]), w)
        state[key] = w
    video.load_state_dict(state)
    x = torch.randn(2, 3, 1, 64, 64)
    torch.testing.assert_close(video(x), image_like(x), atol=1e-4, rtol=1e-4)
    assert count_params(video) > count_params(image_like)


def _resampling_block(in_dim=8, dim=12, stride=(1, 2, 2), grid=(3, 6, 4), tokens=(4, 16), **options):
    entry = get_mixer("mobile_former")
    ctx = BlockContext(dim, grid, 2.0, 0.0, tokens, in_dim=in_dim, stride=stride)
    return entry.build(ctx, entry.options(**options))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"first_block": "dna3"},
        {"first_block": "dna3", "second_expansion": 0},
        {"first_block": "dna3", "groups": 2},
        {"groups": 4},
        {"first_block": "dna3", "factorized": True, "temporal_kernel": 3},
    ],
)
@pytest.mark.parametrize(
    "stride,grid", [((1, 2, 2), (3, 6, 4)), ((2, 2, 2), (4, 6, 6)), ((1, 1, 1), (5, 3, 2)), ((2, 1, 1), (3, 2, 3))]
)
def test_resampling_blocks_change_width_and_resolution(options, stride, grid):
    x, z = torch.randn(2, *grid, 8), torch.randn(2, 4, 16)
    out_grid = tuple((g - 1) // s + 1 for g, s in zip(grid, stride))
    for tokens in ((4, 16), (0, 0)):
        block = _resampling_block(stride=stride, grid=grid, tokens=tokens, **options).eval()
        y = block(x, z) if tokens[0] else block(x)
        if tokens[0]:
            y, z2 = y
            assert z2.shape == z.shape
        assert y.shape == (2, *out_grid, 12)
    same = _resampling_block(in_dim=12, stride=(1, 1, 1), **options)
    assert same.identity and not _resampling_block(**options).identity


@pytest.mark.parametrize(
    "option,value",
    [
        ("first_block", "dna3"),
        ("first_expansion", 3),
        ("second_expansion", 2.0),
        ("second_expansion", 0.0),
        ("groups", 2),
    ],
)
def test_every_resampling_option_changes_the_function(option, value):
    base = {"first_block": "dna3"} if option in ("first_expansion", "second_expansion") else {}
    x, z = torch.randn(2, 3, 6, 4, 8, generator=torch.Generator().manual_seed(1)), torch.randn(2, 4, 16)
    outs = []
    for opts in (base, {**base, option: value}):
        torch.manual_seed(0)
        block = _randomise(_resampling_block(**opts)).eval()
        outs.append(block(x, z))
    assert (
        outs[0][0].shape != outs[1][0].shape
        or not torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
        or not torch.allclose(outs[0][1], outs[1][1])
    )


def test_first_block_option_applies_to_the_first_block_only_and_conv_block_passes_tokens():
    entry = get_mixer("mobile_former")
    opts = entry.options(first_block="dna3", second_expansion=0)
    first = entry.build(BlockContext(8, (1, 4, 4), 2.0, 0.0, (4, 16), index=0), opts)
    later = entry.build(BlockContext(8, (1, 4, 4), 2.0, 0.0, (4, 16), index=1), opts)
    assert isinstance(first.mobile, ConvBlock) and not first.bridged and later.bridged
    x, z = torch.randn(2, 1, 4, 4, 8), torch.randn(2, 4, 16)
    assert first(x, z)[1] is z


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def _tiny_released_spec(frames: int = 3) -> dict:
    tokens = {"num": 3, "width": 16}

    def stage(depth, width, stride, **options):
        return {
            "depth": depth,
            "width": width,
            "mlp_ratio": 3,
            "global_tokens": tokens,
            "down": {"kind": "none", "spatial_stride": stride},
            "mixer": {
                "kind": "mobile_former",
                "options": {"temporal_kernel": 3, "first_block": "dna3", "first_expansion": 2, **options},
            },
        }

    return {
        "input": {"frames": frames, "resolution": 32, "in_chans": 3, "num_classes": 12},
        "stem": {"kind": "single_conv", "patch": 2, "width": 4},
        "stages": [
            stage(2, 8, 2, second_expansion=0, groups=2),
            stage(2, 16, 2, groups=2),
            stage(1, 24, 1, first_block="dna"),
        ],
        "head": {"pool": "mobile_former", "hidden": 32, "groups": 4},
    }


def test_tiny_released_style_model_runs_on_odd_frames_and_trains():
    torch.manual_seed(0)
    model = build(Arch.from_dict(_tiny_released_spec(3)))
    assert model(torch.randn(2, 3, 3, 32, 32)).shape == (2, 12)
    _train_decreases_loss(model, torch.randn(4, 3, 3, 32, 32))


def test_released_spec_validation_is_explained():
    spec = _tiny_released_spec()
    spec["stem"]["patch"] = 4
    with pytest.raises(ArchError, match="patch must be 2"):
        Arch.from_dict(spec)
    spec = _tiny_released_spec()
    spec["stages"][-1]["global_tokens"] = None
    with pytest.raises(ArchError, match="needs global_tokens"):
        Arch.from_dict(spec)
    spec = _tiny_released_spec()
    spec["stages"][0]["down"] = {"kind": "conv"}
    with pytest.raises(ArchError, match="stem width 4 differs from the first stage's 8"):
        build(Arch.from_dict(spec))
    spec = preset("conv3d_tiny").to_dict()
    spec["stages"][1]["down"] = {"kind": "none", "spatial_stride": 2}
    with pytest.raises(ArchError, match="cannot resample"):
        build(Arch.from_dict(spec))
    spec = _tiny_released_spec()
    spec["stages"][1]["mixer"]["options"]["groups"] = 3
    with pytest.raises(InvalidCombination, match="3 groups do not divide"):
        build(Arch.from_dict(spec))
