"""Logging: the package logs through ``logging.getLogger(__name__)``; the CLI shows those messages, and library calls
that would let Optuna chatter quiet it for their own duration only, never globally."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def show_messages(level: int = logging.INFO) -> None:
    """Print the package's log records on stderr as plain lines (the CLI calls this once; a library user who
    configures logging themselves sees the same records through their own handlers)."""
    root = logging.getLogger("explorer")
    if not any(getattr(h, "_explorer_cli", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._explorer_cli = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


@contextmanager
def optuna_warnings_only() -> Iterator[None]:
    """Optuna logs at WARNING and above inside the block (no "A new study created" line per study), and returns to
    the caller's verbosity afterwards. Usable as a decorator."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
