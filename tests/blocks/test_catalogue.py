"""``explorer/blocks/catalogue.json`` (what the space loader reads to name a wrong mixer or option, and to check a
written value, without importing torch) is the registry's own: adding a mixer or an option without rewriting it
fails here, and so does a schema that disagrees with the options' own validators."""

import json

import pytest
from jsonschema import Draft202012Validator

from explorer.blocks.registry import CATALOGUE, catalogue, parse_options
from explorer.space.templates import mixer_catalogue

# values a space file may write for an option (numbers of every sign and parity, non-integral numbers, null,
# strings); each option's own choices are added to them
PROBES = [-3, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 16, 0.5, 2.5, None, "", "x", "joint", "dense"]
# what pydantic's lax mode coerces (a bool as a number, 0 and 1 as bools, a number written as a string); the
# catalogue refuses them, as the space loader refuses them for stage depths and widths
LAX = [True, False, "3", "true"]
LAX_BOOL = [0, 1]


def test_catalogue_file_is_the_registry():
    on_disk = json.loads(CATALOGUE.read_text())
    assert on_disk == catalogue(), "rewrite it: python -m explorer.blocks"
    assert mixer_catalogue() == on_disk
    assert list(on_disk["posmlp"]["options"]) == ["arrangement", "groups", "window", "temporal_window"]
    assert {name: entry["layout"] for name, entry in on_disk.items()}["attention"] == "set"
    assert on_disk["conv3d"]["options"]["kernel_t"]["not"] == {"multipleOf": 2}
    assert on_disk["posmlp"]["options"]["groups"]["x-divides"] == "width"


def _accepted(mixer: str, option: str, value) -> bool:
    try:
        parse_options(mixer, {option: value})
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("mixer", sorted(catalogue()))
def test_every_option_schema_agrees_with_the_options_validators(mixer):
    for option, schema in catalogue()[mixer]["options"].items():
        check = Draft202012Validator(schema)
        choices = schema.get("enum", []) + [c for s in schema.get("anyOf", []) for c in s.get("enum", [])]
        lax = LAX + (LAX_BOOL if schema.get("type") == "boolean" else [])
        for value in [v for v in PROBES + choices if not any(v is x for x in lax)]:
            assert check.is_valid(value) == _accepted(mixer, option, value), (mixer, option, value)
        for value in lax:  # never more lenient than the validators
            assert not check.is_valid(value) or _accepted(mixer, option, value), (mixer, option, value)
