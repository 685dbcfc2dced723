"""``explorer/blocks/catalogue.json`` (what the space loader reads to name a wrong mixer or option without importing
torch) is the registry's own list: adding a mixer or an option without rewriting it fails here."""

import json

from explorer.blocks.registry import CATALOGUE, catalogue
from explorer.space.templates import mixer_catalogue


def test_catalogue_file_is_the_registry():
    on_disk = json.loads(CATALOGUE.read_text())
    assert on_disk == catalogue(), "rewrite it: python -m explorer.blocks"
    assert mixer_catalogue() == on_disk
    assert on_disk["posmlp"]["options"] == ["arrangement", "groups", "window", "temporal_window"]
    assert {name: entry["layout"] for name, entry in on_disk.items()}["attention"] == "set"
