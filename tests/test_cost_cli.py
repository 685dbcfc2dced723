"""`explorer cost` breakdowns and `explorer cost calibrate` through the real command line."""

import json
import subprocess
import sys


def explorer(*args, env=None):
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], capture_output=True, text=True, env=env)


def test_cost_json_has_breakdowns_memory_and_prediction(tmp_path):
    table = tmp_path / "cpu.json"
    proc = explorer(
        "cost",
        "conv3d_tiny",
        "--json",
        "--repeats",
        "3",
        "--memory",
        "--predict",
        "--elementwise",
        "--throughput",
        "4",
        "--table",
        str(table),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"] == 48556 and sum(out["params_by_part"].values()) == 48556
    assert list(out["flops_by_part"]) == ["stem", "stages.0", "stages.1", "head"]
    assert sum(out["flops_by_part"].values()) == round(out["gflops"] * 1e9)
    assert out["elementwise_gflops"] > 0 and out["latency"]["runs"] >= 3 and out["latency_ms"] > 0
    assert out["memory"]["inference_mb"] > 0 and out["throughput_clips_s"] > 0
    assert out["predicted_latency_ms"] > 0 and len(json.loads(table.read_text())["entries"]) == 5


def test_calibrate_writes_a_table_and_help_explains_it(tmp_path):
    out = tmp_path / "t.json"
    proc = explorer("cost", "calibrate", "--device", "cpu", "--archs", "1", "--repeats", "5", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["device"] == "cpu" and data["entries"] and data["meta"]["calibrated_archs"] == 1
    assert f"latency table {out}" in proc.stdout
    proc = explorer("cost", "--help")
    assert "explorer cost calibrate --device cpu|cuda" in proc.stdout
    proc = explorer("cost", "calibrate", "--space", str(tmp_path / "missing.yaml"), "--out", str(out))
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_cost_says_which_clock_timed_the_latency(tmp_path):
    """The default clock is paired inside its validated band; more threads than it was validated for fall back to
    the min clock, and the output says so and why."""
    import os

    env = {**os.environ, "EXPLORER_CACHE": str(tmp_path)}
    proc = explorer("cost", "conv3d_tiny", "--repeats", "3", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "paired clock: each run timed right after posmlp_tiny runs as long" in proc.stdout
    proc = explorer("cost", "conv3d_tiny", "--repeats", "3", "--threads", "3", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "min clock: the fastest of" in proc.stdout and "validated at up to 1 thread(s)" in proc.stdout
    proc = explorer("cost", "conv3d_tiny", "--repeats", "3", "--threads", "3", "--clock", "paired", env=env)
    assert "paired clock" in proc.stdout  # asked for by name, it is kept
