"""Proxy datasets for architecture search: procedural synthetic video (synthvid) and video datasets on disk."""

from explorer.data.synthvid import PRESETS, TASKS, ProxyData, SynthConfig, task_class_names
from explorer.data.tasks import DatasetConfig, TaskConfig, load_task, task_shape, with_validation

__all__ = ["PRESETS", "TASKS", "DatasetConfig", "ProxyData", "SynthConfig", "TaskConfig", "load_task",
           "task_class_names", "task_shape", "with_validation"]
