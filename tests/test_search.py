"""End-to-end searches on a real local Ray instance (slow: ~1 minute)."""

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

SPACES = Path(__file__).parent / "spaces"
pytestmark = pytest.mark.slow


def completed_study_trials(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    study = optuna.load_study(study_name=run_dir.name, storage=storage)
    return study.get_trials()


@pytest.fixture(scope="module")
def smoke_run(local_ray, tmp_path_factory) -> Path:
    from explorer.search import run_search

    report = run_search(SPACES / "smoke.yaml", out_root=tmp_path_factory.mktemp("runs"), progress=False)
    assert report.name == "index.html" and report.exists()
    return report.parent


def test_four_trial_search_records_both_objectives(smoke_run):
    run_dir = smoke_run
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert len(df) == 4
    assert (df["status"] == "COMPLETE").all(), df[["status", "error"]]
    for metric in ("accuracy", "gflops", "params_m", "latency_cpu_ms"):
        assert df[metric].map(math.isfinite).all()
    assert df["gflops"].gt(0).all() and df["accuracy"].between(0, 1).all()
    assert set(df["param.s0.mixer"]) <= {"conv3d", "posmlp"}
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "trials.csv")[["number", "status"]], df[["number", "status"]])
    for h in df["arch_hash"]:
        assert (run_dir / "archs" / f"{h}.json").exists()
    trials = completed_study_trials(run_dir)
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 4
    assert all(len(t.values) == 2 for t in trials)


def test_the_run_folder_holds_the_resolved_space(smoke_run):
    import json

    from explorer.space import load_space

    resolved = load_space(smoke_run / "space.resolved.yaml")  # loads as it is: no include left to find
    assert resolved.model_dump(mode="json") == json.loads((smoke_run / "run.json").read_text())["space"]
    assert (smoke_run / "space.yaml").read_text() == (SPACES / "smoke.yaml").read_text()


def test_failing_trials_are_recorded_and_the_others_finish(local_ray, tmp_path):
    from explorer.search import run_search

    run_dir = run_search(SPACES / "failing.yaml", out_root=tmp_path, progress=False).parent
    df = pd.read_parquet(run_dir / "trials.parquet").sort_values(["param.s0.mixer", "param.s0.width"])
    assert df["param.s0.mixer"].tolist() == ["conv3d", "conv3d", "posmlp", "posmlp"]
    assert df["status"].tolist() == ["COMPLETE", "COMPLETE", "FAILED", "FAILED"]
    failed = df[df["status"] == "FAILED"]
    assert (failed["error"] == "InvalidCombination: posmlp window 3 does not tile the 8x8 grid").all()
    assert df.loc[df["status"] == "COMPLETE", "accuracy"].notna().all()
    states = sorted(t.state.name for t in completed_study_trials(run_dir))
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    page = (run_dir / "index.html").read_text()
    assert "does not tile the 8x8 grid" in page


@pytest.mark.browser
def test_real_run_report_renders_in_chromium(smoke_run, tmp_path):
    from test_report import CHROMIUM, chromium

    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install -y chromium)")
    url = (smoke_run / "index.html").resolve().as_uri()
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", url, user_data=tmp_path / "profile").stdout
    assert dom.count('class="main-svg"') >= 1, "plotly did not draw (is plotly.min.js loading?)"
    assert dom.count('class="point"') >= 4  # every trial is a point of the accuracy-vs-GFLOPs scatter
    assert "Pareto front" in dom


def test_report_rebuilds_without_ray(smoke_run):
    import subprocess
    import sys

    (smoke_run / "index.html").unlink()
    code = (
        "import sys; from explorer.cli import main; rc = main(['report', sys.argv[1]]); "
        "assert 'ray' not in sys.modules and 'torch' not in sys.modules; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(smoke_run)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"report: {smoke_run / 'index.html'}"
    assert (smoke_run / "index.html").exists()


def test_duplicate_architecture_is_not_trained_twice(local_ray, tmp_path):
    from explorer.search import run_search

    run_dir = run_search(SPACES / "duplicate.yaml", out_root=tmp_path, progress=False).parent
    df = pd.read_parquet(run_dir / "trials.parquet")
    assert df["arch_hash"].nunique() == 1 and (df["status"] == "COMPLETE").all()
    assert df["cached"].tolist() == [False, True]
    assert df["accuracy"].iloc[0] == df["accuracy"].iloc[1]
    assert df["train_time_s"].iloc[0] > 0 and df["train_time_s"].iloc[1] == 0


def test_export_pareto_specs_load_and_build(smoke_run, tmp_path):
    from explorer.analysis import front_mask, load_run_meta, load_trials
    from explorer.arch import Arch
    from explorer.cli import main
    from explorer.models import build, validate_arch

    assert main(["export", str(smoke_run), "--pareto", "--out", str(tmp_path)]) == 0
    df = load_trials(smoke_run)
    front = set(df.loc[front_mask(df, load_run_meta(smoke_run)["objectives"]), "arch_hash"])
    files = sorted(tmp_path.glob("*.yaml"))
    assert {f.stem for f in files} == front and front
    for path in files:
        arch = Arch.from_file(path)
        assert validate_arch(arch).content_hash == path.stem  # the run's hash is the canonical one
        build(arch)


def test_a_search_where_every_trial_fails_exits_1_and_says_why(local_ray, tmp_path, capsys):
    from explorer.cli import main

    rc = main(["search", str(SPACES / "all_failing.yaml"), "--out", str(tmp_path), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: no trial finished (2 trials: 0 complete, 0 stopped early, 2 failed, 0 infeasible)")
    assert "2x FloatingPointError: loss became" in last
    assert out.strip().splitlines()[-1].startswith("report: ")  # the page still shows the failures
    df = pd.read_parquet(next(tmp_path.glob("*/trials.parquet")))
    assert df["status"].tolist() == ["FAILED", "FAILED"]


def test_skipped_clips_of_a_dataset_reach_the_terminal_run_json_and_report(local_ray, tmp_path, capsys):
    """Unreadable clips were only warned about inside the Ray workers: now the driver collects them, the search
    ends by saying so, and run.json and the report list them."""
    import json

    import numpy as np

    from explorer.cli import main
    from tests.data.test_video import write_video

    root = tmp_path / "videos"
    lines = {"train": [], "test": []}
    for label, colour in enumerate(((200, 30, 30), (30, 30, 200))):
        for g in range(5):
            clip = np.full((8, 16, 16, 3), colour, dtype=np.uint8)
            write_video(root / f"c{label}_{g}.mp4", clip)
            lines["train" if g < 4 else "test"].append(f"c{label}_{g}.mp4 {label}")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    lines["train"] += ["broken.mp4 0", "missing.mp4 1"]
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    space = tmp_path / "videos.yaml"
    space.write_text(f"""\
name: videos
task: {{dataset: {{format: video_list, root: {root}, train: train.txt, test: test.txt, frames: 4,
        resolution: 16}}}}
budget: {{trials: 1, epochs: 1, concurrency: 1, batch_size: 4}}
sampler: {{name: random}}
stages:
  - {{depth: 1, width: 8, mixer: {{conv3d: {{kernel_t: 3}}}}}}
""")
    assert main(["search", str(space), "--out", str(tmp_path / "runs"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    run = next((tmp_path / "runs").glob("videos-*"))
    warning = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and warning[0].startswith("warning: 2 clip(s) of the dataset could not be read")
    meta = json.loads((run / "run.json").read_text())
    assert meta["skipped_count"] == 2
    assert {Path(s["path"]).name for s in meta["skipped_clips"]} == {"broken.mp4", "missing.mp4"}
    page = (run / "index.html").read_text()
    assert "skipped clips" in page and "broken.mp4" in page and "missing.mp4" in page


def test_a_library_user_who_imported_ray_first_can_still_search(tmp_path):
    """Ray reads RAY_AUTH_MODE when it is imported: the search sets it (to silence Ray's warning) only when Ray is
    not imported yet, since setting it later made ray.init fail with an authentication error."""
    import subprocess
    import sys

    code = (
        "import ray, sys\nfrom explorer.search import run_search\n"
        "print(run_search(sys.argv[1], out_root=sys.argv[2], progress=False))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_AUTH_MODE"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(SPACES / "smoke.yaml"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("index.html")
