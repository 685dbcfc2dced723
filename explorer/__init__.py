"""Video design-space explorer.

``import explorer`` stays light (the CLI must answer ``--help`` at once), yet every preset becomes a timm model:
registration happens when ``explorer.models`` is imported, and, if timm is imported after ``explorer`` without
``explorer.models``, a one-shot import hook registers the presets as soon as timm has loaded, so
``timm.create_model("posmlp_video_72d", num_classes=...)`` works in either import order.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def _importing_ourselves() -> bool:
    """True while a module of this package is mid-import (it may be the one importing timm right now)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("explorer.") and getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


def _register_presets_with_timm() -> None:
    # explorer.models registers every preset at the end of its own import; importing it from inside another
    # explorer import would be circular, so leave it to that import in that case
    if "explorer.models" in sys.modules or _importing_ourselves():
        return
    import explorer.models  # noqa: F401


class _RegisterAfterTimm(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps timm's loader so our presets register right after timm executes."""

    def find_spec(self, name, path, target=None):
        if name != "timm":
            return None
        sys.meta_path.remove(self)  # one shot, and no recursion into ourselves below
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_presets_with_timm()

        spec.loader.exec_module = exec_then_register
        return spec


if "timm" in sys.modules:
    _register_presets_with_timm()
elif not any(isinstance(f, _RegisterAfterTimm) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterTimm())
