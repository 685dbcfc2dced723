"""Attention blocks and the ViT-S video presets against reference_numbers.json (token_merging.tome_vit_s_video)."""

import json
from pathlib import Path

import pytest
import torch

from explorer.arch import Arch, ArchError
from explorer.blocks import BlockContext, InvalidCombination, get_mixer
from explorer.blocks.attention import AttentionBlock, AttentionOptions, DividedAttentionBlock, vit_video_spec
from explorer.blocks.merge import TokenState
from explorer.cost import count_flops, count_params, example_input
from explorer.models import build, preset, validate_arch

REFERENCE = json.loads((Path(__file__).parents[1] / "data" / "reference_numbers.json").read_text())
REF = REFERENCE["token_merging"]["tome_vit_s_video"]


def _block(dim=32, grid=(3, 4, 5), seed=0, **options):
    torch.manual_seed(seed)
    return get_mixer("attention").build(BlockContext(dim, grid, 4.0, 0.0), AttentionOptions(**options))


def _perturb(module: torch.nn.Module) -> None:
    """Give zero-initialised biases (and LayerNorm affines) values so options that touch them can show."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))


def test_vit_s_video_params_exact():
    c, n, classes = 384, 1568, 400
    tubelet = 3 * 2 * 16 * 16 * c + c
    block = 12 * c * c + 13 * c  # LN 2C + qkv 3C²+3C + proj C²+C + LN 2C + MLP 8C²+5C
    expected = tubelet + n * c + 12 * block + 2 * c + classes * c + classes
    params = count_params(build(preset("vit_s_video")))
    assert params == expected == 22_640_656
    assert round(params / 1e6, 2) == REF["params"] / 1e6  # the reference's rounded 22.64 M


@pytest.mark.slow
@pytest.mark.parametrize("name, r", [("vit_s_video", 0), ("vit_s_video_tome_r32", 32), ("vit_s_video_tome_r100", 100)])
def test_vit_s_video_gflops_and_tokens_by_r(name, r):
    arch = preset(name)
    model = build(arch)
    assert count_params(model) == 22_640_656  # merging adds no parameters
    seen = []
    model.norm.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    gflops = count_flops(model, example_input(arch)) / 1e9
    assert gflops == pytest.approx(REF["gflops_by_r"][str(r)], rel=0.01)
    assert seen[-1] == REF["tokens_after_last_layer_by_r"][str(r)]


def test_attention_flops_are_counted_exactly():
    c, n, h = 48, 60, 4
    block = _block(c, (3, 4, 5), heads=h)
    x = torch.randn(1, n, c)
    linear = n * 12 * c * c
    attention = 2 * n * n * c  # Q·Kᵀ and A·V: fvcore's SDPA handle must not count 0
    norms = 2 * 5 * n * c
    assert count_flops(block, x) == linear + attention + norms
    # proportional attention (a float mask) keeps the same count
    state = TokenState(torch.rand(1, n, 1) + 1, grid=None)
    assert count_flops(_Wrap(block, state), x) == linear + attention + norms


def test_divided_attention_flops():
    c, (t, hh, ww) = 32, (3, 4, 5)
    n = t * hh * ww
    block = _block(c, (t, hh, ww), heads=4, space_time="divided")
    linear = n * 16 * c * c  # two attentions (4C² each) + MLP 8C²
    attention = 2 * n * t * c + 2 * n * hh * ww * c
    assert count_flops(block, torch.randn(1, n, c)) == linear + attention + 3 * 5 * n * c
    assert count_params(block) == 16 * c * c + 19 * c


class _Wrap(torch.nn.Module):
    def __init__(self, block, state):
        super().__init__()
        self.block, self.state = block, state

    def forward(self, x):
        return self.block(x, self.state)[0]


@pytest.mark.parametrize("space_time", ["joint", "divided"])
@pytest.mark.parametrize("grid", [(3, 4, 5), (1, 2, 2), (5, 3, 3)])
def test_shapes_odd_t_and_non_square(space_time, grid):
    block = _block(32, grid, heads=2, space_time=space_time)
    n = grid[0] * grid[1] * grid[2]
    y, state = block(torch.randn(2, n, 32))
    assert y.shape == (2, n, 32) and state is None


def test_heads_must_divide_width():
    with pytest.raises(InvalidCombination, match="heads 5 do not divide width 32"):
        _block(32, heads=5)


def test_every_option_changes_the_function():
    x = torch.randn(2, 60, 32)
    base = _block(heads=4)
    _perturb(base)
    y = base(x)[0]
    torch.manual_seed(0)
    other = _block(heads=2)
    other.load_state_dict(base.state_dict())  # same weights, other head split
    assert not torch.allclose(other(x)[0], y, atol=1e-5)
    no_bias = _block(heads=4, qkv_bias=False)
    state = {k: v for k, v in base.state_dict().items() if k != "attn.qkv.bias"}
    no_bias.load_state_dict(state)
    assert not torch.allclose(no_bias(x)[0], y, atol=1e-5)
    divided = _block(heads=4, space_time="divided")
    divided.load_state_dict({**divided.state_dict(), **base.state_dict()})
    assert isinstance(divided, DividedAttentionBlock)
    assert not torch.allclose(divided(x)[0], y, atol=1e-5)


def test_divided_sees_frame_order_joint_attention_does_not_without_positions():
    torch.manual_seed(0)
    grid = (3, 2, 2)
    x = torch.randn(1, 12, 16)
    perm = torch.randperm(12)
    joint = _block(16, grid, heads=2)
    torch.testing.assert_close(joint(x[:, perm])[0], joint(x)[0][:, perm])  # permutation-equivariant
    divided = _block(16, grid, heads=2, space_time="divided")
    assert not torch.allclose(divided(x[:, perm])[0], divided(x)[0][:, perm], atol=1e-5)


def test_proportional_attention_uses_sizes():
    block = _block(heads=4)
    _perturb(block)
    x = torch.randn(2, 60, 32)
    ones = TokenState(torch.ones(2, 60, 1), grid=None)
    torch.testing.assert_close(block(x, ones)[0], block(x)[0])  # log 1 = 0
    sizes = torch.randint(1, 6, (2, 60, 1)).float()
    y_prop = block(x, TokenState(sizes, grid=None))[0]
    assert not torch.allclose(y_prop, block(x)[0], atol=1e-5)
    # switched off, the sizes do not enter attention
    torch.testing.assert_close(block(x, TokenState(sizes, grid=None, prop_attn=False))[0], block(x)[0])
    # and it is exactly softmax(QKᵀ/√d + log s): a token of size s acts like s copies of itself (one query)
    attn = block.attn
    q = torch.randn(1, 1, 32)
    keys = torch.randn(1, 3, 32)
    s = torch.tensor([[[1.0], [3.0], [2.0]]])
    dup = torch.cat([keys[:, :1], keys[:, 1:2].expand(-1, 3, -1), keys[:, 2:].expand(-1, 2, -1)], dim=1)
    with torch.no_grad():
        merged = _attend(attn, q, keys, TokenState(s, grid=None).attn_bias())
        copies = _attend(attn, q, dup, None)
    torch.testing.assert_close(merged, copies)


def _attend(attn, q_tokens, kv_tokens, bias):
    """Attention of q_tokens onto kv_tokens with attn's weights (queries from one set, keys/values from another)."""
    import torch.nn.functional as F

    c, h = q_tokens.shape[-1], attn.heads
    w_q, w_k, w_v = attn.qkv.weight.chunk(3)
    b_q, b_k, b_v = attn.qkv.bias.chunk(3)

    def split(t):
        return t.reshape(t.shape[0], t.shape[1], h, c // h).transpose(1, 2)

    q = split(F.linear(q_tokens, w_q, b_q))
    k, v = split(F.linear(kv_tokens, w_k, b_k)), split(F.linear(kv_tokens, w_v, b_v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def test_merge_only_in_set_stages():
    spec = vit_video_spec(4, 16, 5, 4, 32, 2, 2, merge={"method": "tome", "r": 4})
    spec["stages"][0]["mixer"] = {"kind": "conv3d"}
    with pytest.raises(ArchError, match=r"stages\[0\]\.merge: token merging needs a set-layout mixer; 'conv3d'"):
        validate_arch(Arch.from_dict(spec))


def test_divided_attention_cannot_merge():
    spec = vit_video_spec(4, 16, 5, 4, 32, 2, 2, merge={"method": "tome", "r": 4}, space_time="divided")
    with pytest.raises(
        ArchError,
        match=r"stages\[0\]\.merge: mixer 'attention': divided space-time attention "
        r"needs the \(T, H, W\) token grid",
    ):
        validate_arch(Arch.from_dict(spec))
    validate_arch(Arch.from_dict(vit_video_spec(4, 16, 5, 4, 32, 2, 2, space_time="divided")))  # fine unmerged
    block = _block(16, (2, 2, 2), heads=2, space_time="divided")
    with pytest.raises(InvalidCombination, match="needs the 2x2x2 token grid"):
        block(torch.randn(1, 6, 16))


def test_no_stage_after_a_set_stage():
    spec = vit_video_spec(4, 16, 5, 4, 32, 1, 2)
    spec["stages"].append({"depth": 1, "width": 64, "mixer": {"kind": "conv3d"}})
    with pytest.raises(
        ArchError,
        match=r"stages\[1\]: a stage after the set-layout stage 0 \('attention'\) "
        r"is not supported",
    ):
        validate_arch(Arch.from_dict(spec))


def test_set_stage_after_a_grid_stage_builds():
    spec = {
        "input": {"frames": 5, "resolution": 16, "num_classes": 3},
        "stem": {"kind": "conv", "patch": 4},
        "stages": [
            {"depth": 1, "width": 16, "mixer": {"kind": "conv3d"}},
            {
                "depth": 2,
                "width": 32,
                "mixer": {"kind": "attention", "options": {"heads": 2}},
                "merge": {"method": "tome", "ratio": 0.5},
            },
        ],
    }
    model = build(Arch.from_dict(spec))
    x = torch.randn(2, 3, 5, 16, 16)  # odd T: 5 × 2 × 2 = 20 tokens in the set stage
    tokens, state = model.forward_tokens(x)
    assert tokens.shape == (2, 5, 32) and state.size.sum(1).flatten().tolist() == [20.0, 20.0]
    assert model(x).shape == (2, 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_tiny_tome", "vit_tiny_sttm"])
def test_tiny_presets_train(name, train_losses):
    torch.manual_seed(0)
    arch = preset(name)
    model = build(arch)
    x, y = example_input(arch, 8), torch.randint(0, arch.input.num_classes, (8,))
    losses = train_losses(model, model.parameters(), x, y, steps=8, lr=1e-3)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("space_time", ["joint", "divided"])
def test_blocks_train(space_time, train_losses):
    torch.manual_seed(0)
    block = _block(16, (2, 2, 2), heads=2, space_time=space_time)
    head = torch.nn.Linear(16, 3)
    x, y = torch.randn(6, 8, 16), torch.randint(0, 3, (6,))
    losses = train_losses(
        lambda v: head(block(v)[0].mean(1)), [*block.parameters(), *head.parameters()], x, y, steps=10, lr=1e-2
    )
    assert losses[-1] < losses[0]


def test_block_is_a_timm_vit_block_at_init():
    block = _block(32, heads=4)
    assert isinstance(block, AttentionBlock)
    assert all(not m.bias.detach().any() for m in block.modules() if isinstance(m, torch.nn.Linear))
    assert 0.015 < block.attn.qkv.weight.detach().std().item() < 0.025
