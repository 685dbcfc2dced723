"""Ray processes a killed search leaves behind, found by the search's own record and stopped by the next one.

A local search starts Ray in-process. When its driver is SIGKILLed, Ray's GCS server and raylet exit, but the
raylet's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``: measured on Ray 2.60) are re-parented to init
and keep running. Nothing of Ray's cleans them up short of ``ray stop``, which kills every Ray process of the
machine, other users' searches included. So right after starting its local Ray a search writes down the processes
it started (pid and start time, so a reused pid is never mistaken for one of ours), deletes the record when it
shuts Ray down, and before starting Ray stops what any dead driver's record still names. Records are per host and
per boot: nodes that share a home directory never touch each other's, and a record from before a reboot names
nothing that still runs.

Linux only (it reads ``/proc``); elsewhere nothing is recorded or stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

from explorer.data.synthconfig import default_cache_dir

_PROC = Path("/proc")


def records_dir() -> Path:
    """``$EXPLORER_CACHE/ray-local`` (else ``~/.cache/video-explorer/ray-local``): one record per live search."""
    return default_cache_dir() / "ray-local"


def _boot_id() -> str:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def _records() -> list[Path]:
    return sorted(records_dir().glob(f"{socket.gethostname()}-*.json"))


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (which may hold spaces), or None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22), or None if it is gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def _is_alive(pid: int, started: int) -> bool:
    fields = _stat(pid)
    # a zombie has exited already; a different start time is another process that reuses the pid
    return fields is not None and fields[0] != "Z" and int(fields[19]) == started


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def record_local_ray() -> Path | None:
    """Write down the processes this driver has started (call right after starting a local Ray); returns the
    record's path, or None where there is no ``/proc``."""
    if not _PROC.is_dir():
        return None
    me = os.getpid()
    procs = [[pid, start_time(pid)] for pid in descendants(me)]
    record = {"driver": [me, start_time(me)], "boot": _boot_id(), "processes": [p for p in procs if p[1] is not None]}
    path = records_dir() / f"{socket.gethostname()}-{me}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def forget(path: Path | None) -> None:
    """Delete a record after its Ray was shut down normally."""
    if path is not None:
        path.unlink(missing_ok=True)


def stop_leftovers(grace_s: float = 2.0) -> list[int]:
    """Stop the processes that dead drivers' records name and that still run (SIGTERM, then SIGKILL after
    ``grace_s``); delete those records. Returns the pids stopped. A record whose driver still runs is left alone."""
    if not _PROC.is_dir() or not records_dir().is_dir():
        return []
    stopped: list[tuple[int, int]] = []
    for path in _records():
        try:
            record = json.loads(path.read_text())
            driver = tuple(record["driver"])
            procs = [(int(pid), int(started)) for pid, started in record["processes"]]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: a record half written when its driver was killed
            continue
        if record.get("boot") != _boot_id():  # written before a reboot: nothing it names runs any more
            path.unlink(missing_ok=True)
            continue
        if _is_alive(*driver):
            continue
        for pid, started in procs:
            if _is_alive(pid, started):
                _signal(pid, signal.SIGTERM)
                stopped.append((pid, started))
        path.unlink(missing_ok=True)
    if not _wait_gone(stopped, grace_s):
        for pid, started in stopped:
            if _is_alive(pid, started):
                _signal(pid, signal.SIGKILL)
        _wait_gone(stopped, 1.0)
    return [pid for pid, _ in stopped]


def _wait_gone(procs: list[tuple[int, int]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_is_alive(*p) for p in procs):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):  # gone meanwhile, or not ours to stop
        pass
