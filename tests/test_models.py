import subprocess
import sys

import pytest
import torch

from explorer.models import build, preset, preset_names


def _python(code: str) -> list[str]:
    """What a fresh interpreter prints for ``code``, split into words."""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize(
    "code",
    [
        "import explorer.models, timm",  # the models module registers its presets when it is imported
        "import timm, explorer.models",
        "import timm, explorer.models; explorer.models.register_timm_models()",  # by name, and idempotent
    ],
)
def test_presets_are_timm_models_after_import_explorer_models(code):
    assert _python(code + "; m = timm.create_model('posmlp_tiny', num_classes=5); print(m.head.out_features)") == ["5"]


def test_import_explorer_registers_nothing_and_loads_neither_timm_nor_torch():
    """The registration is explicit: no import hook patches timm's loader, and the package root stays light."""
    assert _python("import sys, explorer; print('torch' in sys.modules, 'timm' in sys.modules)") == ["False", "False"]
    check = (
        "import sys, explorer, timm; print('explorer.models' in sys.modules, timm.is_model('posmlp_tiny'), "
        "any(type(f).__module__.startswith('explorer') for f in sys.meta_path))"
    )
    assert _python(check) == ["False", "False", "False"]


def test_timm_create_model_matches_build():
    import timm

    torch.manual_seed(0)
    via_timm = timm.create_model("conv3d_tiny", drop_path_rate=0.1)
    torch.manual_seed(0)
    direct = build(preset("conv3d_tiny").replace(drop_path_rate=0.1))
    assert type(via_timm) is type(direct)
    for (n1, p1), (n2, p2) in zip(via_timm.state_dict().items(), direct.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("conv3d_tiny", pretrained=True)


def test_every_preset_is_valid_and_listed():
    import timm

    for name in preset_names():
        assert timm.is_model(name)
        preset(name)  # validates against the registry


def test_timm_data_config_gives_the_clip_shape():
    """timm's model contract: the preset's default config carries the clip (C, T, H, W) and the classifier."""
    import timm
    from timm.data import resolve_data_config

    m = timm.create_model("video_focalnet_t", num_classes=174)
    config = resolve_data_config(model=m)
    assert config["input_size"] == (3, 8, 224, 224)
    assert config["mean"] == pytest.approx((0.485, 0.456, 0.406)) and config["crop_pct"] == 1.0
    assert m.pretrained_cfg["classifier"] == "head" and m.get_classifier() is m.head
    assert (m.num_classes, m.num_features, m.get_classifier().out_features) == (174, 768, 174)
    assert resolve_data_config(model=timm.create_model("mobile_former_tiny"))["input_size"] == (3, 8, 32, 32)


@pytest.mark.parametrize(
    "name", ["focal_tiny", "vit_tiny_tome", "mobile_former_tiny", "posmlp_tiny", "mobile_former_26m"]
)
def test_forward_head_and_reset_classifier(name):
    import timm

    torch.manual_seed(0)
    m = timm.create_model(name).eval()
    shape = m.arch.input
    x = torch.randn(2, shape.in_chans, shape.frames, shape.resolution, shape.resolution)
    features, state = m.forward_tokens(x)
    if m.norm is not None:
        assert torch.equal(m.forward_head(m.forward_features(x), state=state), m(x))
        assert m.forward_head(features, pre_logits=True, state=state).shape == (2, m.num_features)
    else:  # the Mobile-Former head reads the tokens as the last stage left them
        _, _, z = m.forward_trunk(x)
        assert torch.equal(m.forward_head(features, tokens=z), m(x))
        with pytest.raises(ValueError, match="global tokens"):
            m.forward_head(features)
    m.reset_classifier(5)
    assert m(x).shape == (2, 5) and m.num_classes == 5 and m.arch.input.num_classes == 5
    assert m.get_classifier().out_features == 5
    m.reset_classifier(0)
    assert m(x).shape == (2, m.num_features)


@pytest.mark.parametrize("name", ["focal_tiny", "vit_tiny_sttm", "mobile_former_tiny"])
def test_grad_checkpointing_gives_the_same_gradients(name):
    torch.manual_seed(0)
    m = build(preset(name)).eval()  # eval: BatchNorm statistics are not updated twice by the recomputation
    x = torch.randn(2, 3, 8, 32, 32)
    grads = []
    for enable in (False, True):
        m.set_grad_checkpointing(enable)
        m.zero_grad()
        m(x).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_drop_path_rates_rise_linearly_over_all_blocks():
    m = build(preset("video_focalnet_t"))
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for stage in m.stages for b in stage]
    assert rates == pytest.approx([0.2 * i / 11 for i in range(12)])


@pytest.mark.parametrize("kind", ["conv", "frame_patch"])
def test_a_position_embedding_follows_any_stem(kind):
    """``pos_embed`` on a conv or per-frame stem adds a learned (T', H', W', C) embedding (it used to be ignored
    there): an attention stage behind such a stem then tells frames apart."""
    from explorer.arch import Arch
    from explorer.blocks import preset_spec

    spec = preset_spec("vit_tiny_sttm")
    spec["stages"][0].pop("merge")
    spec["stem"] = {"kind": kind, "patch": 4, "pos_embed": True}
    with_pos = build(Arch.from_dict(spec))
    spec["stem"]["pos_embed"] = False
    without = build(Arch.from_dict(spec))
    grid_params = 8 * 8 * 8 * 64  # (T', H', W') = (8, 8, 8) at width 64
    assert sum(p.numel() for p in with_pos.parameters()) - sum(p.numel() for p in without.parameters()) == grid_params
    assert with_pos.no_weight_decay() == {"stem.pos_embed"}
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 32, 32)
    reversed_x = x.flip(2)
    with torch.no_grad():  # joint attention without positions is blind to frame order; with them it is not
        assert torch.allclose(without.eval()(x), without(reversed_x), atol=1e-5)
        assert not torch.allclose(with_pos.eval()(x), with_pos(reversed_x), atol=1e-5)
