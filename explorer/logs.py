"""Logging: the package logs through ``logging.getLogger(__name__)``; the CLI shows those messages, and library calls
that would let Optuna chatter quiet it for their own duration only, never globally."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each record (not the stream at creation), so messages follow a
    redirected or replaced stderr."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property always answers sys.stderr
        pass


def show_messages(level: int = logging.INFO) -> None:
    """Print the package's log records on stderr as plain lines (the CLI calls this once; a library user who
    configures logging themselves sees the same records through their own handlers)."""
    root = logging.getLogger("explorer")
    if not any(getattr(h, "_explorer_cli", False) for h in root.handlers):
        handler = _StderrHandler()
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
