"""``python -m explorer.blocks``: rewrite ``catalogue.json`` from the registry (after adding a mixer or an option)."""

from explorer.blocks.registry import write_catalogue

print(f"wrote {write_catalogue()}")
