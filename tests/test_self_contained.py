"""The repository stands alone: a user clones it and nothing else, so no file may point into a folder beside the
clone (a sibling checkout of design notes) or into an absolute path of a particular machine, and the numbers the
tests compare against live inside the repository, each with its source."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Built from pieces so that this file does not match its own patterns.
_SIBLING = r"\.\./" + "shared" + r"\b|\b" + "shared" + r"/(reference|DESIGN|hooks)\b"
_MACHINE = r"(?<![\w.~-])/(" + "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me", "o" + "pt"]) + r")/"
FORBIDDEN = re.compile(f"{_SIBLING}|{_MACHINE}")
SKIP_SUFFIXES = {".parquet", ".db", ".png", ".jpg", ".npz", ".npy", ".pyc"}


def repo_files(root: Path) -> list[Path]:
    """The files a clone holds: git's tracked and untracked-but-not-ignored files, or every file without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        names = [name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(root)) for p in root.rglob("*") if ".git" not in p.parts]
    return [root / name for name in names if (root / name).is_file()]


def forbidden_references(root: Path) -> list[str]:
    """``path:line: text`` for every line that names a sibling folder or a machine's absolute path."""
    hits = []
    for path in repo_files(root):
        if path.suffix in SKIP_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return hits


def test_no_file_points_outside_the_clone():
    assert forbidden_references(REPO) == []


@pytest.mark.parametrize(
    "line",
    [
        "see ../" + "sha" + "red/DESIGN.md",
        "Path('/" + "work/" + "sha" + "red/x.json')",
        "cache in /" + "root/.cache/x",
        "spec: " + "sha" + "red/reference/blocks.md",
    ],
)
def test_the_scan_catches_what_it_forbids(tmp_path, line):
    (tmp_path / "mod.py").write_text(f"ok = 1\n{line}\n")
    assert forbidden_references(tmp_path) == [f"mod.py:2: {line}"]


@pytest.mark.parametrize(
    "line",
    ["reports/tiny/index.html", "EXPLORER_CACHE=/tmp/cache", "{shared: w}", "a shared file system", "~/ray_token"],
)
def test_the_scan_allows_ordinary_text(tmp_path, line):
    (tmp_path / "mod.py").write_text(line + "\n")
    assert forbidden_references(tmp_path) == []


def test_reference_numbers_carry_their_sources():
    data = json.loads((REPO / "tests" / "data" / "reference_numbers.json").read_text())
    sources = data["sources"]
    entries = {**data["models"], **data["blocks"], **data["token_merging"]}
    assert len(data["models"]) == 11 and len(data["blocks"]) == 6
    for name, entry in entries.items():
        assert entry["source"] in sources, name
    for family, source in sources.items():
        assert "paper" in source, family
    assert data["models"]["posmlp_video_72d_16f_ssv1"]["params"] == 13_509_537


def test_docs_the_readme_links_exist():
    readme = (REPO / "README.md").read_text()
    for link in re.findall(r"\]\((docs/[^)]+)\)", readme):
        assert (REPO / link).is_file(), link
