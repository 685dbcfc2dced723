"""``SpaceError`` and the record of where each value of a space file came from, so every check can name the file
and line."""

from __future__ import annotations

import difflib
from typing import Any

Loc = tuple[Any, ...]  # a path into the document: keys and list indices


class SpaceError(ValueError):
    """A search-space file is wrong: names the file, the line, the field and what was expected."""

    def __init__(self, file: str, line: int | None, field: str, message: str):
        self.file, self.line, self.field, self.message = file, line, field, message
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class Located:
    """A parsed (possibly merged) document plus where every path in it came from: ``loc -> (file, line)``."""

    def __init__(self, file: str, origins: dict[Loc, tuple[str, int]]):
        self.file, self.origins = file, origins

    def where(self, loc: Loc) -> tuple[str, int | None]:
        loc = tuple(loc)
        while loc not in self.origins and loc:
            loc = loc[:-1]
        return self.origins.get(loc, (self.file, None))

    def line(self, loc: Loc) -> int | None:
        return self.where(loc)[1]

    def error(self, loc: Loc, message: str) -> SpaceError:
        file, line = self.where(loc)
        return SpaceError(file, line, dotted(loc), message)


def dotted(loc: Loc) -> str:
    """A path as the error messages spell it: ``stages[0].mixer``."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def did_you_mean(word: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(a) for a in allowed], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
