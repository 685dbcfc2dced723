"""Where the cost measurements are kept on disk: the per-device latency tables (and, next to them, reference speeds)."""

from __future__ import annotations

import os
from pathlib import Path


def default_table_path(device: str) -> Path:
    """``$EXPLORER_CACHE/latency/<device>.json``, else ``~/.cache/video-explorer/latency/<device>.json``."""
    root = os.environ.get("EXPLORER_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "video-explorer"
    return base / "latency" / f"{device}.json"
