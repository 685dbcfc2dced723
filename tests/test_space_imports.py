"""``explorer.space`` stays light: importing it, and refusing a file that is not valid YAML or has a wrong key, load
no torch (the CLI reports a broken space file at once). Each check runs in a fresh interpreter, since this one has
torch loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "ray", "fvcore", "timm")


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_import_loads_no_torch():
    result = _run(f"import sys, explorer.space; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_invalid_yaml_raises_space_error_without_torch(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nstages:\n  - depth: [1, 2\n")
    code = (
        "import sys\n"
        "from explorer.space import SpaceError, load_space\n"
        "try:\n"
        "    load_space(sys.argv[1])\n"
        "except SpaceError as err:\n"
        "    print(err.line, err.message.split(':')[0])\n"
        "print('torch' in sys.modules)\n"
    )
    result = _run(code, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["4 not valid YAML", "False"]


def test_unknown_top_level_key_is_reported_without_torch(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\nstages:\n  - {depth: 1, width: 16, mixer: conv3d}\nbudgt: {trials: 1}\n")
    code = (
        "import sys\n"
        "from explorer.space import SpaceError, load_space\n"
        "try:\n"
        "    load_space(sys.argv[1])\n"
        "except SpaceError as err:\n"
        "    print(str(err).split(';')[0])\n"
        f"print([m for m in {(*HEAVY, 'numpy')!r} if m in sys.modules])\n"
    )
    result = _run(code, str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [f"{path}:4: budgt: unknown key (did you mean 'budget'?)", "[]"]


HOSTILE = [
    # a key given twice: YAML would keep the last one silently
    (
        "name: dup\nstages:\n  - {depth: 1, width: 16, mixer: conv3d}\nname: again\n",
        4,
        "name",
        "duplicate key 'name' (first given at line 1",
    ),
    (
        "name: dup\nstages:\n  - {depth: 1, width: 16, depth: 2, mixer: conv3d}\n",
        3,
        "stages[0].depth",
        "duplicate key 'depth'",
    ),
    # a billion-laughs alias bomb: refused at the first alias, before anything is expanded
    (
        "name: bomb\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "stages:\n  - {depth: 1, width: 16, mixer: conv3d}\n",
        2,
        "b[0]",
        "anchors and aliases",
    ),  # the anchor's line
    # nesting far deeper than any space
    (
        "name: deep\nshared: {x: " + "[" * 200 + "]" * 200 + "}\nstages:\n  - {depth: 1, width: 16, mixer: conv3d}\n",
        None,
        "",
        "nested deeper than 32 levels",
    ),
]


@pytest.mark.parametrize("text, line, field, fragment", HOSTILE, ids=["dup-top", "dup-stage", "alias-bomb", "deep"])
def test_hostile_yaml_is_refused_with_one_line(tmp_path, text, line, field, fragment):
    from explorer.space import SpaceError, load_space

    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    err = info.value
    assert fragment in err.message and "\n" not in str(err), str(err)
    if line is not None:
        assert (err.line, err.field) == (line, field), str(err)


def test_files_that_are_not_small_text_are_refused_without_echoing_them(tmp_path, monkeypatch):
    from explorer.space import SpaceError, load_space

    monkeypatch.setenv("EXPLORER_INCLUDE_PATH", "/dev")  # let the include reach the device, to be refused as one

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe secret-content\n")
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: huge\n# " + "x" * (2 << 20) + "\n")
    device = tmp_path / "includes-a-device.yaml"
    device.write_text("include: /dev/zero\nname: x\n")
    for path, reason in (
        (binary, "not a UTF-8 text file"),
        (huge, "larger than 1 MiB"),
        (device, "not a regular file"),
    ):
        with pytest.raises(SpaceError) as info:
            load_space(path)
        assert reason in str(info.value) and "secret-content" not in str(info.value), str(info.value)


def test_includes_stay_under_the_space_files_folder(tmp_path, monkeypatch):
    from explorer.space import SpaceError, load_space

    monkeypatch.delenv("EXPLORER_INCLUDE_PATH", raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("seed: 1  # secret-content\n")
    spaces = tmp_path / "spaces"
    (spaces / "base").mkdir(parents=True)
    stage = "stages:\n  - depth: 1\n    width: 8\n    mixer: {conv3d: {}}\n"
    (spaces / "ok.yaml").write_text("name: ok\ninclude: base/b.yaml\n" + stage)
    (spaces / "base" / "b.yaml").write_text("seed: 3\n")
    assert load_space(spaces / "ok.yaml").seed == 3  # a folder below is fine
    (spaces / "link.yaml").symlink_to(outside / "secret.yaml")
    (spaces / "base" / "escape.yaml").write_text("include: ../../outside/secret.yaml\n")
    cases = {
        "up.yaml": "../outside/secret.yaml",
        "absolute.yaml": str(outside / "secret.yaml"),
        "symlink.yaml": "link.yaml",
        "nested.yaml": "base/escape.yaml",
    }
    for name, include in cases.items():
        (spaces / name).write_text(f"name: x\ninclude: {include}\n" + stage)
        with pytest.raises(SpaceError) as info:
            load_space(spaces / name)
        message = str(info.value)
        assert "is outside" in message and "secret-content" not in message, (name, message)
        assert message.count("\n") == 0
    monkeypatch.setenv("EXPLORER_INCLUDE_PATH", str(outside))  # a folder the user names is allowed
    assert load_space(spaces / "up.yaml").seed == 1
