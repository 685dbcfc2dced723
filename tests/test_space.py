"""Search-space files: every validation error names file, line, field and what was expected."""

import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from explorer.space import SpaceError, arch_from_params, load_space, sample_arch

ROOT = Path(__file__).resolve().parents[1]
KNOWN = "attention, conv3d, focal, mobile_former, morphmlp, posmlp"  # every registered family, sorted

GOOD = """\
name: t
task: {name: trev, preset: smoke}
stages:
  - depth: {choice: [1, 2]}
    width: {int: [8, 16], step: 8}
    mixer:
      choice:
        conv3d: {kernel_t: {choice: [1, 3]}}
        posmlp: {groups: 4, window: 8}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    "text, line, field, fragment",
    [
        # unknown mixer name: lists the known ones
        (
            GOOD.replace("posmlp: {groups", "posmlpp: {groups"),
            9,
            "stages[0].mixer.choice.posmlpp",
            f"unknown mixer 'posmlpp' (did you mean 'posmlp'?); known mixers: {KNOWN}",
        ),
        # misspelt key: suggests the right one and lists the allowed keys
        (GOOD.replace("task:", "taks:"), 2, "taks", "unknown key (did you mean 'task'?); expected one of: name,"),
        # wrong type
        (GOOD + "budget:\n  trials: eight\n", 11, "budget.trials", "valid integer, unable to parse string"),
        # wrong literal
        (
            GOOD.replace("preset: smoke", "preset: huge"),
            2,
            "task.preset",
            "expected one of 'smoke', 'demo', 'proxy' or 'hard'",
        ),
        # unknown mixer option
        (
            GOOD.replace("window: 8", "windw: 8"),
            9,
            "stages[0].mixer.choice.posmlp.windw",
            "unknown option of mixer 'posmlp' (did you mean 'window'?); expected one of: arrangement, groups, window",
        ),
        # invalid mixer option value
        (
            GOOD.replace("kernel_t: {choice: [1, 3]}", "kernel_t: {choice: [1, 2]}"),
            8,
            "stages[0].mixer.choice.conv3d.kernel_t",
            "must be odd for 'same' padding",
        ),
        # malformed value template
        (
            GOOD.replace("depth: {choice: [1, 2]}", "depth: {choise: [1, 2]}"),
            4,
            "stages[0].depth",
            "expected a literal",
        ),
        # a range where a positive integer is needed
        (
            GOOD.replace("width: {int: [8, 16], step: 8}", "width: {int: [0, 16]}"),
            5,
            "stages[0].width",
            "expected positive integers",
        ),
        # missing required key
        (GOOD.replace("name: t\n", ""), None, "name", "required key is missing"),
        # YAML syntax
        (GOOD.replace("depth: {choice: [1, 2]}", "depth: {choice: [1, 2]"), 5, "", "not valid YAML"),
    ],
)
def test_errors_name_file_line_field(tmp_path, text, line, field, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    err = info.value
    assert err.file == str(path)
    if line is not None:
        assert err.line == line, str(err)
    assert err.field == field
    assert fragment in err.message, str(err)


def test_cli_exits_2_with_one_clear_line(tmp_path):
    path = write(tmp_path, GOOD.replace("posmlp: {groups", "posmlpp: {groups"))
    proc = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "search", str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {path}:9: stages[0].mixer.choice.posmlpp: unknown mixer 'posmlpp' "
        f"(did you mean 'posmlp'?); known mixers: {KNOWN}"
    )


def test_sampling_is_define_by_run_and_replays(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    kinds = set()
    for _ in range(12):
        trial = study.ask()
        arch = sample_arch(space, trial)
        kind = arch.stages[0].mixer.kind
        kinds.add(kind)
        # a mixer's options exist only when that mixer is chosen
        assert ("s0.conv3d.kernel_t" in trial.params) == (kind == "conv3d")
        assert arch_from_params(space, trial.params) == arch
        assert arch.input.frames == 8 and arch.input.num_classes == 12
        study.tell(trial, 0.0)
    assert kinds == {"conv3d", "posmlp"}


def test_shipped_spaces_are_valid():
    for path in sorted((ROOT / "search_spaces").glob("*.yaml")) + sorted((ROOT / "tests" / "spaces").glob("*.yaml")):
        load_space(path)


def test_help_imports_no_heavy_library():
    code = (
        "import sys, explorer.cli as c; c._parser(); "
        "print(sorted(m for m in ('torch', 'ray', 'fvcore', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
