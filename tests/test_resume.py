"""A search whose driver is SIGKILLed (or stopped with Ctrl-C) mid-run resumes with `explorer search --resume RUN`:
the finished trials are kept (not trained again), the unfinished ones run again, and the final table has every trial
exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from processes import stop_process_group

from explorer.search.leftovers import records_dir

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "tests" / "spaces" / "resume.yaml"
TRIALS = 6


def _finished_rows(out: Path) -> tuple[Path | None, pd.DataFrame]:
    runs = sorted(out.glob("resume-*"))
    if not runs or not (runs[0] / "trials.csv").exists():
        return (runs[0] if runs else None), pd.DataFrame()
    try:
        # trial ids are hex: one of only digits would read as a number unless its dtype is named
        return runs[0], pd.read_csv(runs[0] / "trials.csv", dtype={"trial_id": str})
    except (pd.errors.EmptyDataError, OSError):
        return runs[0], pd.DataFrame()


def _search(*args: str) -> list[str]:
    return [sys.executable, "-m", "explorer.cli", "search", *args, "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_killed_or_stopped_search_resumes_without_losses_or_repeats(tmp_path, stop):
    """Killed, or stopped with Ctrl-C (which Tune catches and returns from as if finished: the search must not
    then audit, call itself finished and refuse the resume)."""
    log = open(tmp_path / "first.log", "w")
    driver = subprocess.Popen(
        _search(str(SPACE), "--out", str(tmp_path)),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        run_dir, before = None, pd.DataFrame()
        while time.monotonic() < deadline and len(before) < 2:
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.5)
            run_dir, before = _finished_rows(tmp_path)
        assert len(before) >= 2, "no two trials finished in time"
        time.sleep(2.5)  # Tune saves its experiment state every second: these trials are in it
        run_dir, before = _finished_rows(tmp_path)  # the rows as they stand when the driver dies
        (tmp_path / "before.csv").write_bytes((run_dir / "trials.csv").read_bytes())
        driver.send_signal(stop)  # SIGKILL: the driver dies at once, no clean-up, no final table
        code = driver.wait(timeout=120)
        if stop == signal.SIGINT:
            assert code == 130 and "stopped: " in (tmp_path / "first.log").read_text()
    finally:
        stop_process_group(driver)
        log.close()
    assert run_dir is not None
    assert not (run_dir / "trials.parquet").exists() or len(pd.read_parquet(run_dir / "trials.parquet")) < TRIALS

    resumed = subprocess.run(_search("--resume", str(run_dir)), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # a clean local run says nothing but its result: no warning from Ray (token auth), Optuna or Tune
    assert "WARNING" not in resumed.stderr and "Warning" not in resumed.stderr, resumed.stderr[-3000:]
    assert resumed.stdout.strip().endswith(f"report: {run_dir / 'index.html'}")
    # the killed driver's record of its Ray processes was cleared by the resumed search, which forgot its own
    assert list(records_dir().glob("*.json")) == []

    after = pd.read_parquet(run_dir / "trials.parquet")
    # the budget is run; a trial that finished in the last second before the kill (after Tune's last save of its
    # state) is kept from the live table, so the table may hold one or two more
    assert TRIALS <= len(after) <= TRIALS + 2 and after["trial_id"].is_unique, after[["trial_id", "status"]]
    assert (after["status"] == "COMPLETE").all(), after[["status", "error"]]
    kept = after.set_index("trial_id").loc[before["trial_id"]]
    # no losses: every trial finished before the kill is there with its result; no repeats: none trained again
    assert kept["accuracy"].tolist() == pytest.approx(before["accuracy"].tolist())
    assert kept["trial_time_s"].tolist() == pytest.approx(before["trial_time_s"].tolist())
    # ... and its row is the same, byte for byte, in trials.csv: number, attempts, cached, times, history
    final = pd.read_csv(run_dir / "trials.csv", dtype=str, keep_default_na=False).set_index("trial_id")
    first = pd.read_csv(tmp_path / "before.csv", dtype=str, keep_default_na=False).set_index("trial_id")
    pd.testing.assert_frame_equal(final.loc[first.index, first.columns], first)
    study = optuna.load_study(study_name=run_dir.name, storage=f"sqlite:///{run_dir / 'study.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(after)  # every trial Optuna saw finish is in the table, once
