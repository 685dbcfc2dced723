"""Proxy datasets for architecture search: procedural synthetic video (synthvid) and video datasets on disk."""

from explorer.data.synthconfig import PRESETS, TASKS, SynthConfig, task_class_names
from explorer.data.tasks import DatasetConfig, TaskConfig, load_task, task_shape, with_validation

__all__ = [
    "PRESETS",
    "TASKS",
    "DatasetConfig",
    "ProxyData",
    "SynthConfig",
    "TaskConfig",
    "load_task",
    "task_class_names",
    "task_shape",
    "with_validation",
]


def __getattr__(name: str) -> object:
    """``ProxyData`` on first use: it lives with the generator, which imports torch (the configs above do not)."""
    if name == "ProxyData":
        from explorer.data.synthvid import ProxyData

        globals()["ProxyData"] = ProxyData
        return ProxyData
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
