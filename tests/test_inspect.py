"""``explorer inspect``: space size, a few samples, GFLOPs/params histograms and the invalid samples."""

import textwrap
from pathlib import Path

from explorer.cli import main
from explorer.space import text_histogram

ROOT = Path(__file__).resolve().parents[1]


def test_inspect_reports_size_samples_histograms_and_invalid(capsys):
    # failing.yaml: width 8|16 x (conv3d | posmlp with a window that does not tile the grid) = 4 archs
    assert main(["inspect", str(ROOT / "tests" / "spaces" / "failing.yaml"), "--samples", "10", "--seed", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1] == "parameters   2 sampled: s0.width, s0.mixer"
    assert lines[2] == "size         4 distinct architectures"
    valid = int(lines[3].split()[1])
    invalid_line = next(line for line in lines if line.startswith("invalid"))
    invalid = int(invalid_line.split()[1])
    assert valid + invalid == 10 and 0 < invalid < 10
    assert f"samples      {valid} of 10 valid, 2 distinct" in out  # only the two conv3d archs build
    assert "InvalidCombination" in out and "window" in out
    gflops = next(line for line in lines if line.startswith("GFLOPs"))
    assert "min 0.00" in gflops and "(fvcore, input 1x3x8x32x32)" in gflops
    assert sum(int(line.split()[2]) for line in lines if line.startswith("  [0.0") and "#" in line) >= valid
    assert "costing samples 10/10" in err


def test_inspect_says_continuous_and_fails_cleanly_on_a_bad_space(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: c
        task: {name: trev, preset: smoke}
        stages:
          - {depth: 1, width: 8, mlp_ratio: {float: [1.0, 3.0]}, mixer: {conv3d: {kernel_t: 3}}}
        """)
    )
    assert main(["inspect", str(path), "--samples", "2", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "size         continuous (a float range is sampled)" in out and err == ""
    path.write_text(path.read_text().replace("kernel_t", "kernel_tt"))
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}:4: stages[0].mixer.conv3d.kernel_tt: unknown option")


def test_text_histogram_counts_every_value():
    lines = text_histogram([0.1, 0.2, 0.2, 0.9], bins=4, width=10, fmt="{:.1f}")
    assert lines == [
        "  [0.1, 0.3)      3  ##########",
        "  [0.3, 0.5)      0  ",
        "  [0.5, 0.7)      0  ",
        "  [0.7, 0.9]      1  ###",
    ]


NEVER_BUILDS = """\
name: never
task: {name: trev, preset: smoke}
stages:
  - depth: {choice: [1, 2]}
    width: 32
    mixer: {posmlp: {groups: 4, window: 3}}
"""


def test_a_space_that_never_builds_is_an_error_before_anything_runs(tmp_path, capsys):
    # a window of 3 never tiles the 8x8 grid of the smoke clips behind the patch-4 stem (a fact of the built model,
    # which the loader cannot see): every sample fails, whatever the depth
    path = tmp_path / "never.yaml"
    path.write_text(NEVER_BUILDS)
    assert main(["inspect", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: no architecture of this space builds (64 of 64 random samples rejected)")
    assert "posmlp window 3 does not tile the 8x8 grid (64x)" in err and len(err.splitlines()) == 1
    out = tmp_path / "runs"
    assert main(["search", str(path), "--out", str(out), "--no-progress"]) == 2
    assert "no architecture of this space builds" in capsys.readouterr().err and not out.exists()
    path.write_text(NEVER_BUILDS.replace("depth: {choice: [1, 2]}", "depth: 1"))  # one architecture: one try
    assert main(["inspect", str(path), "--no-progress"]) == 2
    assert "(1 of 1 random samples rejected)" in capsys.readouterr().err
    path.write_text(NEVER_BUILDS.replace("window: 3", "window: {choice: [3, 4]}"))  # one window builds
    assert main(["inspect", str(path), "--no-progress", "--samples", "4"]) == 0
