"""Searches on a real two-node Ray cluster on loopback (head 127.0.0.2, worker 127.0.0.3): trials run on both nodes,
and a trial whose worker node dies mid-trial is retried on the other node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPACE = ROOT / "tests" / "spaces" / "cluster.yaml"
MIB = 2**20


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    for key, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_enable_worker_prestart": "0"}.items():
        os.environ.setdefault(key, value)
    c = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={
            "num_cpus": 1,
            "node_ip_address": "127.0.0.2",
            "object_store_memory": 100 * MIB,
            "include_dashboard": False,
        },
    )
    try:
        c.worker = c.add_node(num_cpus=1, node_ip_address="127.0.0.3", object_store_memory=100 * MIB)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def _search(address: str, out: Path, space: Path = SPACE) -> subprocess.Popen:
    """The CLI's --address path, as a user runs it against an existing cluster."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer.cli",
            "search",
            str(space),
            "--out",
            str(out),
            "--address",
            address,
            "--no-progress",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _table(out: Path) -> pd.DataFrame:
    (run,) = out.glob("cluster-*")
    return pd.read_parquet(run / "trials.parquet")


@pytest.mark.slow
def test_search_on_two_node_loopback_cluster_uses_both_nodes(cluster, tmp_path):
    proc = _search(cluster.address, tmp_path)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    df = _table(tmp_path)
    assert len(df) == 4 and (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    assert set(df["node_ip"]) == {"127.0.0.2", "127.0.0.3"}
    assert (df["attempts"] == 1).all()


def _started(out: Path) -> dict[str, str]:
    """trial id -> node of every trial attempt started so far (the markers each attempt leaves in the run folder)."""
    return {m.name: m.read_text() for m in out.glob("cluster-*/cache/attempts/*") if m.read_text()}


@pytest.mark.slow
def test_trial_on_a_dead_worker_node_is_retried_on_the_other(cluster, tmp_path):
    proc = _search(cluster.address, tmp_path, ROOT / "tests" / "spaces" / "cluster_long.yaml")
    try:
        deadline = time.monotonic() + 300
        while len(_started(tmp_path)) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.2)
        started = _started(tmp_path)
        assert sorted(started.values()) == ["127.0.0.2", "127.0.0.3"], started
        time.sleep(2.0)  # both trials are training
        cluster.remove_node(cluster.worker, allow_graceful=False)  # the worker node dies mid-trial
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    df = _table(tmp_path)
    assert len(df) == 2 and (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    assert (df["node_ip"] == "127.0.0.2").all()  # the survivor ran both in the end
    lost = next(name.rsplit(".", 1)[0] for name, node in started.items() if node == "127.0.0.3")
    assert df.set_index("trial_id").loc[lost, "attempts"] == 2
    assert df["epochs"].eq(8).all()
