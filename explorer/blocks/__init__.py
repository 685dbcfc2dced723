"""Block families, one file each; importing this package registers every mixer."""

from explorer.blocks import attention, conv3d, focal, mobile_former, morphmlp, posmlp  # noqa: F401  (imported for their registrations)
from explorer.blocks.registry import (
    BlockContext,
    InvalidCombination,
    MixerEntry,
    MixerOptions,
    get_mixer,
    mixer_names,
    parse_options,
    preset_doc,
    preset_names,
    preset_spec,
    register_mixer,
    register_preset,
)

__all__ = [
    "BlockContext",
    "InvalidCombination",
    "MixerEntry",
    "MixerOptions",
    "get_mixer",
    "mixer_names",
    "parse_options",
    "preset_doc",
    "preset_names",
    "preset_spec",
    "register_mixer",
    "register_preset",
]
