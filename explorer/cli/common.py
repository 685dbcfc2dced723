"""What every command shares: its one-line error, and the check that run folders can be written."""

from __future__ import annotations

import sys
from pathlib import Path


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def stopped(message: str) -> int:
    """Ctrl-C during a search, a study or an audit: what finished is kept, and how to go on (128 + SIGINT, as a shell
    reports it)."""
    print(f"stopped: {message}", file=sys.stderr)
    return 130


def unwritable(folder: Path) -> str | None:
    """Why run folders cannot be written under ``folder`` (None when they can): checked before Ray starts, so a
    wrong ``--out`` fails in a second instead of after the first trials."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        return f"--out {folder}: not a folder"
    # probe the nearest folder that exists, creating nothing: a space file rejected next must leave no trace
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"--out {folder}: cannot write there ({existing} is not a folder)"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as err:
        return f"--out {folder}: cannot write there ({err.strerror or err})"
    return None
