"""A SIGKILLed search leaves no Ray process running for long: its record names what it started, and the next
search stops what still runs (never a process that merely reuses a recorded pid, never a live driver's)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import stop_process_group

from explorer.search.leftovers import descendants, records_dir, start_time, stop_leftovers

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_driver(code: str, env_cache: Path) -> tuple[subprocess.Popen, Path]:
    """A driver process running ``code``, which prints its record's path when it is ready."""
    driver = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "EXPLORER_CACHE": str(env_cache)},
        start_new_session=True,
    )
    line = driver.stdout.readline().strip()
    assert line, "the driver printed no record"
    return driver, Path(line)


def _kill(driver: subprocess.Popen) -> None:
    driver.send_signal(signal.SIGKILL)  # the driver alone, as `kill -9 PID` from a terminal
    driver.wait(timeout=30)


def test_descendants_finds_grandchildren() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,time; subprocess.Popen(['sleep', '30']); print('up', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        child.stdout.readline()
        below = descendants(os.getpid())
        assert child.pid in below
        assert any(pid in descendants(child.pid) for pid in below if pid != child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_killed_drivers_children_are_stopped_and_nothing_else(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    code = (
        "import subprocess, time\nfrom explorer.search.leftovers import record_local_ray\n"
        "subprocess.Popen(['sleep', '300'])\nprint(record_local_ray(), flush=True)\ntime.sleep(300)\n"
    )
    driver, record = _start_driver(code, tmp_path)
    try:
        orphan = json.loads(record.read_text())["processes"][0][0]
        alive_driver, alive_record = _start_driver(code, tmp_path)  # a search still running: left alone
        # a record of a dead driver naming this test's own pid with another start time: a reused pid, not ours
        me = os.getpid()
        host, boot = socket.gethostname(), Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        (records_dir() / f"{host}-999999999.json").write_text(
            json.dumps({"driver": [999999999, 1], "boot": boot, "processes": [[me, start_time(me) + 1]]})
        )
        # another host's record (a home directory shared by cluster nodes) and one from before a reboot
        (records_dir() / "another-host-999999998.json").write_text(
            json.dumps({"driver": [999999998, 1], "boot": boot, "processes": [[me, start_time(me)]]})
        )
        (records_dir() / f"{host}-999999997.json").write_text(
            json.dumps({"driver": [999999997, 1], "boot": "an-earlier-boot", "processes": [[me, start_time(me)]]})
        )
        (records_dir() / f"{host}-half-written.json").write_text('{"driver": [1')
        _kill(driver)
        assert _alive(orphan)  # re-parented, still running: what a killed driver leaves behind
        stopped = stop_leftovers()
        assert stopped == [orphan] and not _alive(orphan)
        assert sorted(p.name for p in records_dir().iterdir()) == sorted(
            [alive_record.name, "another-host-999999998.json"]
        )
        assert alive_driver.poll() is None and _alive(me)
    finally:
        for d in (driver, locals().get("alive_driver")):
            if d is not None:
                stop_process_group(d)


@pytest.mark.slow
def test_a_sigkilled_local_ray_is_stopped_by_the_next_search(tmp_path, monkeypatch) -> None:
    """The real thing: a driver starts its local Ray as a search does (``_on_ray``) and is SIGKILLed; whatever of
    Ray still runs after (on Ray 2.60: its dashboard and runtime-env agents) is named in its record and stopped."""
    space = ROOT / "tests" / "spaces" / "smoke.yaml"
    code = (
        "import time\nfrom explorer.search import driver\nfrom explorer.search.leftovers import records_dir\n"
        "from explorer.space import load_space\n"
        f"space = load_space({str(space)!r})\ndriver._ray_environment(None)\n"
        "def work():\n    print(next(records_dir().glob('*.json')), flush=True)\n    time.sleep(300)\n"
        "driver._on_ray(space, None, 1, work, 'explorer search --resume RUN')\n"
    )
    driver, record = _start_driver(code, tmp_path)
    try:
        recorded = [pid for pid, _ in json.loads(record.read_text())["processes"]]
        assert len(recorded) >= 2  # at least the GCS server and the raylet
        _kill(driver)
        time.sleep(3)  # what dies with its driver has died by now
        lingering = [pid for pid in recorded if _alive(pid)]
        monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
        stopped = stop_leftovers()
        assert sorted(stopped) == sorted(lingering)
        assert [pid for pid in recorded if _alive(pid)] == []
        assert not record.exists()
    finally:
        stop_process_group(driver)
