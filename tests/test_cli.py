import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

KNOWN = "attention, conv3d, focal, mobile_former, morphmlp, posmlp"  # every registered family, sorted


def explorer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-W", "ignore", "-m", "explorer.cli", *args], capture_output=True, text=True)


def test_cost_of_a_preset_and_of_a_file(tmp_path):
    proc = explorer("cost", "conv3d_tiny", "--json", "--no-latency")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"] == 48556 and out["gflops"] > 0 and out["latency_ms"] is None
    from explorer.models import preset

    path = tmp_path / "arch.json"
    path.write_text(preset("conv3d_tiny").to_json())
    proc = explorer("cost", str(path), "--threads", "1", "--repeats", "2")
    assert proc.returncode == 0, proc.stderr
    assert "params    48,556" in proc.stdout and "1 thread(s)" in proc.stdout


def test_bad_inputs_exit_2_without_traceback(tmp_path):
    proc = explorer("cost", "no_such_thing")
    assert proc.returncode == 2 and "neither a preset" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"input": {}, "stem": {}, "stages": [{"depth": 1, "width": 8, "mixer": {"kind": "nope"}}]}')
    proc = explorer("cost", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"error: {bad}: stages[0].mixer.kind: unknown mixer 'nope'; known mixers: {KNOWN}")
    proc = explorer("report", str(tmp_path))
    assert proc.returncode == 2 and "not a run folder" in proc.stderr


def test_help_lists_the_subcommands():
    proc = explorer("--help")
    assert proc.returncode == 0
    for word in ("search", "report", "cost", "presets", "--address"):
        assert word in proc.stdout


def test_resuming_a_run_from_before_the_validation_split_is_refused(tmp_path):
    """A run whose run.json has no recipe selected on the test clips with the releases' init: resuming it would mix
    two recipes on one front, so the CLI refuses before starting anything and says what to do."""
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"name": "old-run", "space": {"name": "x"}, "objectives": [{"metric": "accuracy", "mode": "max"}]})
    )
    proc = explorer("search", "--resume", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "started by an earlier version" in proc.stderr and "Start a new search" in proc.stderr


@pytest.mark.parametrize("out", ["a_file", "a_file/runs"])
def test_an_unusable_out_folder_fails_at_once(tmp_path, out):
    (tmp_path / "a_file").write_text("not a folder")
    start = time.perf_counter()
    space = Path(__file__).parents[1] / "search_spaces" / "tiny.yaml"
    proc = explorer("search", str(space), "--out", str(tmp_path / out))
    seconds = time.perf_counter() - start
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert proc.stderr.startswith(f"error: --out {tmp_path / out}: ")
    assert ("not a folder" if out == "a_file" else "cannot write there") in proc.stderr
    assert seconds < 2, seconds  # before torch or Ray are imported
    assert (tmp_path / "a_file").read_text() == "not a folder"


def test_a_rejected_space_file_creates_no_out_folder(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstages: 3\n")
    proc = explorer("search", str(bad), "--out", str(tmp_path / "runs" / "here"))
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {bad}:")
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_budget_flags_instead_of_ignoring_them(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    proc = explorer("search", "--resume", str(run), "--concurrency", "4", "--cpus-per-trial", "2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        "error: --concurrency, --cpus-per-trial cannot change a resumed run (it keeps the "
        "budget in its run.json); start a new search to use them"
    )


def _resumable_run(run: Path, state: str, **make_run_args) -> Path:
    """A run folder (tests/test_report.py's ``make_run``, 6 trials) that this version may resume, in ``state``."""
    from test_report import make_run

    make_run(run, n=6, **make_run_args)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "recipe": {"validation_fraction": 0.2}, "state": state}))
    return run


def test_resuming_a_finished_run_returns_at_once(tmp_path):
    import pandas as pd

    run = _resumable_run(tmp_path / "done", "finished")
    start = time.perf_counter()
    proc = explorer("search", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 5  # Ray is never started (it takes ~10 s here)
    first, last = proc.stdout.strip().splitlines()
    n = len(pd.read_parquet(run / "trials.parquet"))
    assert first.startswith(f"{run}: finished already, nothing to resume ({n} trials: ")
    assert last == f"report: {run / 'index.html'}"
    assert not (run / "tune").exists()


def test_resuming_a_run_whose_study_is_gone_is_refused(tmp_path):
    run = _resumable_run(tmp_path / "killed", "running")
    proc = explorer("search", "--resume", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {run / 'study.db'}: missing, so the sampler's history of this run is "
        f"lost and the search cannot go on as the same study; start a new search "
        f"(`explorer report {run}` still draws this one)"
    )


def test_a_trial_larger_than_the_machine_is_refused_before_anything_starts(tmp_path):
    """cpus_per_trial beyond the machine (or a GPU on a machine without one) would leave every trial pending
    forever: the search says so in one line, before a run folder or Ray exist."""
    import os

    import torch

    space = (Path(__file__).parents[1] / "tests" / "spaces" / "smoke.yaml").read_text()
    cases = {"cpus": (f"{os.cpu_count() + 1}", "gpus_per_trial: 0", f"this machine has {os.cpu_count()} CPUs")}
    if not torch.cuda.is_available():
        cases["gpus"] = ("1", "gpus_per_trial: 1", "but this machine has no GPU: no trial could start")
    for name, (cpus, gpus, fragment) in cases.items():
        path = tmp_path / f"{name}.yaml"
        budget = f"budget: {{trials: 1, epochs: 1, cpus_per_trial: {cpus}, {gpus}}}"
        path.write_text("\n".join(budget if line.startswith("budget:") else line for line in space.splitlines()))
        proc = explorer(
            "search",
            str(path),
            "--out",
            str(tmp_path / "runs"),
            "--num-cpus",
            "1" if name == "gpus" else str(os.cpu_count()),
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr, proc.stderr
        assert not (tmp_path / "runs").exists()


def test_a_dataset_without_readable_clips_fails_before_a_run_folder(tmp_path):
    (tmp_path / "train.txt").write_text("gone_a.mp4 0\ngone_b.mp4 1\n")
    (tmp_path / "test.txt").write_text("gone_c.mp4 0\n")
    space = tmp_path / "gone.yaml"
    space.write_text(
        f"name: gone\ntask: {{dataset: {{format: video_list, root: {tmp_path}, train: train.txt, "
        f"test: test.txt}}}}\nstages:\n  - {{depth: 1, width: 8, mixer: conv3d}}\n"
    )
    proc = explorer("search", str(space), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: dataset {tmp_path}: no readable training clips (2 skipped, e.g. {tmp_path / 'gone_a.mp4'})"
    ]
    assert not (tmp_path / "runs").exists()


def test_resuming_a_run_with_a_device_free_latency_objective_is_refused(tmp_path):
    """A run of an earlier version whose objective was `latency_ms`: its study and searcher wait for that name,
    which trials no longer report, so the resume is refused at once (its report still reads it)."""
    run = _resumable_run(tmp_path / "old", "running", legacy_device="cuda")
    proc = explorer("search", "--resume", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (
        f"error: {run}: started by an earlier version, whose objective latency_ms is called latency_cuda_ms now; "
        f"its study cannot take the new name. Start a new search (`explorer report {run}` still draws this one)"
    )
    assert explorer("report", str(run)).returncode == 0
