"""``explorer.space`` stays light: importing it, and refusing a file that is not valid YAML or has a wrong key, load
no torch (the CLI reports a broken space file at once). Each check runs in a fresh interpreter, since this one has
torch loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "ray", "fvcore", "timm")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])


def test_import_loads_no_torch():
    result = _run(f"import sys, explorer.space; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_invalid_yaml_raises_space_error_without_torch(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nstages:\n  - depth: [1, 2\n")
    code = ("import sys\n"
            "from explorer.space import SpaceError, load_space\n"
            "try:\n"
            "    load_space(sys.argv[1])\n"
            "except SpaceError as err:\n"
            "    print(err.line, err.message.split(':')[0])\n"
            "print('torch' in sys.modules)\n")
    result = _run(code, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["4 not valid YAML", "False"]


def test_unknown_top_level_key_is_reported_without_torch(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nstages:\n  - {depth: 1, width: 16, mixer: conv3d}\nbudgt: {trials: 1}\n")
    code = ("import sys\n"
            "from explorer.space import SpaceError, load_space\n"
            "try:\n"
            "    load_space(sys.argv[1])\n"
            "except SpaceError as err:\n"
            "    print(str(err).split(';')[0])\n"
            f"print([m for m in {(*HEAVY, 'numpy')!r} if m in sys.modules])\n")
    result = _run(code, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [f"{path}:4: budgt: unknown key (did you mean 'budget'?)", "[]"]
