"""Helpers for tests that start a driver process and SIGKILL it (not a test module)."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(driver: subprocess.Popen) -> None:
    """Kill ``driver`` if it still runs, then its whole process group (started with ``start_new_session=True``):
    the Ray daemons a driver started die with it (their reaper), or here by the group handle."""
    if driver.poll() is None:
        driver.kill()
    try:
        os.killpg(driver.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
