"""Video design-space explorer.

``import explorer`` stays light (the CLI must answer ``--help`` at once, and a bad space file must be reported before
torch loads), so it registers nothing with timm. The presets become timm models the way timm's own model modules
do: importing the module that defines them registers them. So, in either order::

    import timm
    import explorer.models  # registers every preset with timm's registry

    m = timm.create_model("video_focalnet_t", num_classes=174)

``explorer.models.register_timm_models()`` is the same registration by name (idempotent), for code that wants to
say so explicitly.
"""

from __future__ import annotations

__version__ = "0.1.0"
