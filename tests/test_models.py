import subprocess
import sys

import pytest
import torch

from explorer.models import build, preset, preset_names


@pytest.mark.parametrize("code", [
    "import explorer, timm",  # explorer first: the import hook registers once timm loads
    "import timm, explorer",  # timm first: explorer registers at import
    "import explorer.blocks, timm, explorer.models",  # timm loaded mid-import of explorer: models registers
])
def test_presets_are_timm_models_after_import_explorer(code):
    check = code + "; m = timm.create_model('posmlp_tiny', num_classes=5); print(m.head.out_features)"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5"


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
