"""Proxy datasets for architecture search: procedural synthetic video (synthvid)."""

from explorer.data.synthvid import PRESETS, ProxyData, SynthConfig, load_task

__all__ = ["PRESETS", "ProxyData", "SynthConfig", "load_task"]
