import json
import subprocess
import sys

import pytest

from explorer.arch import Arch, ArchError, stage_grids

SPEC = {
    "input": {"frames": 8, "resolution": 32, "in_chans": 3, "num_classes": 12},
    "stem": {"patch": 4, "temporal_kernel": 1, "temporal_stride": 1},
    "stages": [
        {"depth": 2, "width": 16, "mlp_ratio": 2, "mixer": {"kind": "conv3d", "options": {"kernel_t": 3}}},
        {
            "depth": 1,
            "width": 32,
            "mixer": {"kind": "posmlp", "options": {"groups": 4, "window": 4}},
            "down": {"spatial_stride": 2, "temporal_stride": 2},
        },
    ],
}


def test_json_and_yaml_round_trip():
    arch = Arch.from_dict(SPEC)
    assert Arch.from_json(arch.to_json()) == arch
    import yaml

    assert Arch.from_dict(yaml.safe_load(arch.to_yaml())) == arch
    assert arch.stages[0].mlp_ratio == 2.0 and isinstance(arch.stages[0].mlp_ratio, float)


def test_hash_is_stable_across_processes_and_sensitive_to_content():
    arch = Arch.from_dict(SPEC)
    spec = json.dumps(json.dumps(SPEC))
    code = f"from explorer.arch import Arch; import json; print(Arch.from_dict(json.loads({spec})).content_hash)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == arch.content_hash and len(other) == 12
    # an int written as 2 or 2.0 is the same spec; a different width is not
    assert Arch.from_dict({**SPEC, "drop_path_rate": 0}).content_hash == arch.content_hash
    wider = json.loads(json.dumps(SPEC))
    wider["stages"][0]["width"] = 24
    assert Arch.from_dict(wider).content_hash != arch.content_hash
    assert hash(arch) == hash(Arch.from_dict(SPEC))


def test_grids_follow_stem_and_downsampling():
    assert stage_grids(Arch.from_dict(SPEC)) == [(8, 8, 8), (4, 4, 4)]


@pytest.mark.parametrize(
    "patch, path, fragment",
    [
        (
            {"stages": [{"depth": 1, "width": 8, "mixer": {"kind": "conv3d"}, "widht": 3}]},
            "stages[0].widht",
            "unknown field",
        ),
        ({"stem": {"patch": 3}}, "stem.patch", "expected 2 or 4"),
        ({"input": {"frames": "8"}}, "input.frames", "expected an integer"),
        ({"stages": [{"depth": 0, "width": 8, "mixer": {"kind": "conv3d"}}]}, "stages[0].depth", "must be positive"),
        ({"stages": [{"width": 8, "mixer": {"kind": "conv3d"}}]}, "stages[0].depth", "missing required field"),
        # sizes that would exhaust memory while the model is built are refused before
        (
            {"stages": [{"depth": 100_000_000, "width": 8, "mixer": {"kind": "conv3d"}}]},
            "stages[0].depth",
            "must be at most 64, got 100000000",
        ),
        (
            {"stages": [{"depth": 1, "width": 10**9, "mixer": {"kind": "conv3d"}}]},
            "stages[0].width",
            "must be at most 8192",
        ),
        ({"stem": {"width": 10**6}}, "stem.width", "must be at most 8192"),
    ],
)
def test_validation_names_the_field(patch, path, fragment):
    with pytest.raises(ArchError) as info:
        Arch.from_dict({**SPEC, **patch}, source="spec.json")
    assert info.value.path == path
    assert fragment in str(info.value) and str(info.value).startswith("spec.json: ")


def test_registry_checks_mixer_and_fills_defaults():
    from explorer.models import validate_arch

    arch = validate_arch(Arch.from_dict(SPEC))
    assert arch.stages[0].mixer.options == {"kernel_t": 3, "kernel_s": 3, "depthwise": True}
    explicit = json.loads(json.dumps(SPEC))
    explicit["stages"][0]["mixer"]["options"] = {"kernel_t": 3, "kernel_s": 3, "depthwise": True}
    assert validate_arch(Arch.from_dict(explicit)).content_hash == arch.content_hash
    bad = json.loads(json.dumps(SPEC))
    bad["stages"][1]["mixer"]["kind"] = "posmlpp"
    expected = r"stages\[1\]\.mixer\.kind: unknown mixer 'posmlpp'; known mixers: .*conv3d, .*posmlp"
    with pytest.raises(ArchError, match=expected):
        validate_arch(Arch.from_dict(bad))
    bad["stages"][1]["mixer"] = {"kind": "posmlp", "options": {"group": 4}}
    with pytest.raises(ArchError, match=r"stages\[1\]\.mixer\.options: group: unknown option"):
        validate_arch(Arch.from_dict(bad))
