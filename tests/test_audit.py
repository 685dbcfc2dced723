"""The front audit: which trials it retrains, what it concludes, and real audits on a local Ray (one after a search,
one run by `explorer audit` on a finished run, one SIGKILLed and resumed)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from processes import stop_process_group

from explorer.analysis import load_trials, run_counts
from explorer.analysis.audit import (
    FRONT_REASON,
    RANDOM_REASON,
    audit_jobs,
    audit_selection,
    load_audit,
    summarize_audit,
)
from explorer.analysis.fidelity import describe, measurement_for, proxy_key, record_measurement
from explorer.analysis.ranking import bootstrap_interval, kendall_tau_b, regret, spearman, top_k_overlap

ROOT = Path(__file__).resolve().parents[1]
SPACES = ROOT / "tests" / "spaces"
OBJECTIVES = [{"metric": "accuracy", "mode": "max"}, {"metric": "gflops", "mode": "min"}]


# --- rank agreement, against brute-force definitions -------------------------------------------------------------


def _tau_b_brute(a, b) -> float:
    concordant = discordant = ties_a = ties_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        if da == 0 and db == 0:
            continue
        if da == 0:
            ties_a += 1
        elif db == 0:
            ties_b += 1
        elif da == db:
            concordant += 1
        else:
            discordant += 1
    n_a = concordant + discordant + ties_b  # pairs untied in a
    n_b = concordant + discordant + ties_a
    return (concordant - discordant) / np.sqrt(n_a * n_b)


def test_kendall_tau_b_matches_the_pair_count_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(3, 12))
        a, b = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, n).astype(float)  # many ties
        if len(set(a)) < 2 or len(set(b)) < 2:
            continue
        assert kendall_tau_b(a, b) == pytest.approx(_tau_b_brute(a, b))
    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)  # 5 of 6 pairs agree
    assert np.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))


def test_spearman_top_k_regret_and_bootstrap() -> None:
    assert spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert top_k_overlap([4, 3, 2, 1, 0], [4, 1, 3, 2, 0], k=2) == 0.5
    assert regret([0.9, 0.1, 0.5], [0.2, 0.8, 0.6]) == (3, pytest.approx(0.6))  # the proxy's pick is the worst
    noisy = np.arange(20) + np.r_[np.zeros(19), -30]  # the best last: 19 of 190 pairs swapped, τ = 0.8
    tau = kendall_tau_b(np.arange(20), noisy)
    lo, hi = bootstrap_interval(kendall_tau_b, np.arange(20), noisy)
    assert tau == pytest.approx(0.8) and lo < tau and hi == 1.0  # resamples without that item agree fully
    assert bootstrap_interval(kendall_tau_b, np.arange(10), np.arange(10)) == (1.0, 1.0)


# --- selection and summary ---------------------------------------------------------------------------------------


def _search_table() -> pd.DataFrame:
    # front over (max accuracy, min gflops): 0 (0.5, 1), 1 (0.7, 2), 2 (0.9, 4); 3, 4, 5 dominated; 6 a replay of 2
    rows = [
        (0, 0.5, 1.0, "a"),
        (1, 0.7, 2.0, "b"),
        (2, 0.9, 4.0, "c"),
        (3, 0.4, 3.0, "d"),
        (4, 0.6, 5.0, "e"),
        (5, 0.3, 6.0, "f"),
        (6, 0.9, 4.0, "c"),
    ]
    df = pd.DataFrame(
        [
            {
                "number": n,
                "trial_id": f"t{n}",
                "status": "COMPLETE",
                "accuracy": acc,
                "gflops": g,
                "arch_hash": h,
                "arch_summary": f"arch {h}",
                "arch_json": json.dumps({"arch": h}),
                "param.width": 16 * (n + 1),
            }
            for n, acc, g, h in rows
        ]
    )
    return pd.concat(
        [
            df,
            pd.DataFrame(
                [
                    {
                        "number": 7,
                        "trial_id": "t7",
                        "status": "FAILED",
                        "accuracy": np.nan,
                        "gflops": 1.0,
                        "arch_hash": "g",
                        "arch_summary": "arch g",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )


def test_selection_takes_the_most_accurate_front_points_then_random_others() -> None:
    picked = audit_selection(_search_table(), OBJECTIVES, front=2, random=2, seed=0)
    assert picked[:2] == [(2, FRONT_REASON), (1, FRONT_REASON)]  # front by accuracy; 6 (a replay of 2) never
    others = [n for n, reason in picked[2:]]
    assert all(r == RANDOM_REASON for _, r in picked[2:]) and len(others) == 2
    assert set(others) <= {0, 3, 4, 5}  # complete, not picked, distinct architectures (not 6, not the failed 7)
    assert picked == audit_selection(_search_table(), OBJECTIVES, front=2, random=2, seed=0)  # seeded
    assert len(audit_selection(_search_table(), OBJECTIVES, front=10, random=10)) == 6  # capped by what exists


def test_jobs_add_seeds_and_a_reference_run_with_the_trials_params() -> None:
    jobs = audit_jobs(
        _search_table(), OBJECTIVES, front=1, random=0, seeds=2, base_seed=5, epochs=3, reference_epochs=15
    )
    assert [(j.number, j.seed, j.epochs) for j in jobs] == [(2, 6, 3), (2, 7, 3), (2, 5, 15)]
    # the table's spec is what is trained (its param columns may have turned ints into floats: here width 48.0)
    assert jobs[0].arch_json == '{"arch": "c"}' and jobs[0].params == {"width": 48}
    assert jobs[0].trial_id == "audit-2-s6-e3"


def _audit_rows(values: dict[int, list[float]], reference: dict[int, float] | None = None) -> pd.DataFrame:
    rows = [
        {
            "number": n,
            "trial_id": f"audit-{n}-s{s}",
            "status": "COMPLETE",
            "accuracy": acc,
            "epochs": 3,
            "audit_of": n,
            "audit_reason": FRONT_REASON if n in (1, 2) else RANDOM_REASON,
            "seed": s,
        }
        for n, accs in values.items()
        for s, acc in enumerate(accs, start=1)
    ]
    rows += [
        {
            "number": n,
            "trial_id": f"audit-{n}-ref",
            "status": "COMPLETE",
            "accuracy": acc,
            "epochs": 15,
            "audit_of": n,
            "audit_reason": FRONT_REASON,
            "seed": 0,
        }
        for n, acc in (reference or {}).items()
    ]
    return pd.DataFrame(rows)


def test_summary_says_the_order_held_with_error_bar_ranges() -> None:
    search = _search_table()
    summary = summarize_audit(search, _audit_rows({2: [0.85, 0.88], 1: [0.72, 0.66], 3: [0.45, 0.41]}), epochs=3)
    assert summary.held is True and summary.swaps == []
    row = summary.points.set_index("number").loc[2]
    assert (row["lo"], row["hi"]) == (0.85, 0.9) and row["audit_mean"] == pytest.approx(0.865)
    assert summary.tau == pytest.approx(1.0)
    assert summary.mean_change == pytest.approx(np.mean([0.035, 0.01, 0.03]))
    assert summary.sentence.startswith("The front's order held under 2 other seeds (1, 2)")


def test_summary_names_the_swapped_pair_and_the_reference_tau() -> None:
    search = _search_table()
    summary = summarize_audit(
        search, _audit_rows({2: [0.60], 1: [0.75], 3: [0.40]}, {2: 0.8, 1: 0.85, 3: 0.5}), epochs=3
    )
    assert summary.held is False and summary.swaps == [(2, 1)]
    assert "did not hold" in summary.sentence and "trial 2 (90.0 % in the search, 60.0 % audited)" in summary.sentence
    assert summary.tau == pytest.approx(1 / 3)  # (2, 1) swapped; (2, 3) and (1, 3) kept
    assert summary.reference_tau == pytest.approx(1 / 3)
    assert summary.points.set_index("number").at[1, "reference"] == 0.85


def test_a_failed_retraining_is_left_out_of_the_summary() -> None:
    audit = _audit_rows({2: [0.85], 1: [0.6]})
    audit.loc[audit["audit_of"] == 1, ["status", "accuracy"]] = ["FAILED", np.nan]
    summary = summarize_audit(_search_table(), audit, epochs=3)
    assert list(summary.points["number"]) == [2] and summary.held is None
    assert "Too few audited front points (1)" in summary.sentence


def test_fidelity_measurement_is_quoted_only_for_the_same_proxy(tmp_path) -> None:
    path = tmp_path / "fidelity.json"
    budget = {"epochs": 12, "batch_size": 16, "lr": 1e-3, "warmup": 0.1, "init": "width_scaled"}
    entry = {
        "proxy": proxy_key("trev/demo", budget, 0.2),
        "kendall_tau_b": 0.81,
        "tau_ci90": [0.62, 0.93],
        "reference_epochs": 60,
        "anchors": 27,
        "proxy_seed_tau": 0.84,
        "proxy_seeds": 3,
        "readme": "experiments/proxy_fidelity/README.md",
        "measured": "2026-12-02",
    }
    record_measurement(entry, path)
    record_measurement({**entry, "kendall_tau_b": 0.8}, path)  # the same proxy: replaced, not added
    measurements = json.loads(path.read_text())
    assert len(measurements) == 1
    meta = {"task": "trev/demo", "budget": {**budget, "trials": 32}, "recipe": {"validation_fraction": 0.2}}
    found = measurement_for(meta, measurements)
    assert found is not None and "τ-b 0.80 (90 % CI 0.62–0.93)" in describe(found)
    for change in ({"budget": {**budget, "epochs": 6}}, {"task": "trev/proxy"}, {"recipe": {}}):
        assert measurement_for({**meta, **change}, measurements) is None
    assert describe(None).startswith("not measured for this proxy")


# --- real audits on Ray --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_search_with_audit_writes_marked_rows_that_do_not_count_as_trials(local_ray, tmp_path) -> None:
    from explorer.search import run_search

    report = run_search(SPACES / "audit.yaml", run_dir=tmp_path / "run", progress=False)
    run_dir = report.parent
    everything = load_trials(run_dir, role=None)
    search, audit = load_trials(run_dir), load_audit(run_dir)
    assert len(search) == 4 and run_counts(search)["total"] == 4  # the budget's trials, audit rows not counted
    assert len(everything) == len(search) + len(audit)
    # 2 front points + 1 random trial, each with seed 1 at 1 epoch and seed 0 at the 2-epoch reference
    assert len(audit) == 6 and (audit["role"] == "audit").all() and (search["role"] == "search").all()
    assert sorted(audit["audit_reason"].value_counts().to_dict().items()) == [("front", 4), ("random", 2)]
    assert sorted(zip(audit["seed"].astype(int), audit["epochs"].astype(int))) == [(0, 2)] * 3 + [(1, 1)] * 3
    assert (audit["status"] == "COMPLETE").all(), audit[["status", "error"]]
    by_number = search.set_index("number")
    for row in audit.itertuples():  # the audited trial's architecture and cost, trained again
        assert row.arch_hash == by_number.at[row.audit_of, "arch_hash"]
        assert row.gflops == by_number.at[row.audit_of, "gflops"]
    same_seed_budget = audit[audit["epochs"] == 1]
    assert not np.allclose(
        same_seed_budget["train_loss"], by_number.loc[same_seed_budget["audit_of"].astype(int), "train_loss"]
    )  # another seed
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "finished" and meta["audit"]["front"] == 2 and meta["audit"]["wall_time_s"] > 0
    page = report.read_text()
    assert "audited: range over seeds" in page and 'id="audit-verdict"' in page


def _audit_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "explorer.cli", "audit", *args, "--no-progress"]


@pytest.mark.slow
def test_a_run_killed_before_tunes_first_checkpoint_is_not_restored_from_its_tuner_pkl(local_ray, tmp_path) -> None:
    """Tune writes ``tuner.pkl`` as a run starts and the experiment state at its first checkpoint. A driver killed in
    between leaves a folder that ``Tuner.can_restore`` accepts, but restoring it starts a new experiment with no
    parameter space: one trial with config ``{}`` (what failed the SIGKILL test below once, under load, with
    ``KeyError: 'job'``). ``tune_state_saved`` says no there, so the jobs run as pending instead."""
    from ray import tune

    from explorer.search.rundir import tune_state_saved

    def trainable(config):
        tune.report({"job": config.get("job", "missing")})

    def tuner(name: str) -> tune.Tuner:
        space = {"job": tune.grid_search(["a", "b"])}
        return tune.Tuner(
            trainable, param_space=space, run_config=tune.RunConfig(name=name, storage_path=str(tmp_path))
        )

    tuner("killed")  # what a driver leaves when killed right after starting: tuner.pkl only
    assert tune.Tuner.can_restore(tmp_path / "killed") and not tune_state_saved(tmp_path / "killed")
    restored = tune.Tuner.restore(str(tmp_path / "killed"), trainable=trainable).fit()
    assert [r.metrics["job"] for r in restored] == ["missing"]  # the trap: a new experiment without the jobs

    finished = tuner("checkpointed").fit()
    assert sorted(r.metrics["job"] for r in finished) == ["a", "b"]
    assert tune_state_saved(tmp_path / "checkpointed")


def test_explorer_audit_on_a_finished_run_and_its_resume_after_sigkill(tmp_path) -> None:
    """A search without its audit (--no-audit), then `explorer audit RUN --seeds 3` SIGKILLed after two
    retrainings; run again, it keeps them and runs the rest."""
    env = {**os.environ, "EXPLORER_CACHE": str(tmp_path / "cache")}
    search = subprocess.run(
        [
            sys.executable,
            "-m",
            "explorer.cli",
            "search",
            str(SPACES / "audit.yaml"),
            "--out",
            str(tmp_path),
            "--no-progress",
            "--no-audit",
            "--concurrency",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert search.returncode == 0, search.stderr[-3000:]
    run_dir = Path(search.stdout.strip().splitlines()[-1].removeprefix("report: ")).parent
    assert len(load_audit(run_dir)) == 0 and "not run" in (run_dir / "index.html").read_text().lower()

    args = (str(run_dir), "--front", "1", "--random", "0", "--seeds", "3", "--reference-epochs", "2")
    log = open(tmp_path / "audit.log", "w")
    driver = subprocess.Popen(
        _audit_cmd(*args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(load_audit(run_dir)) < 2:
            assert driver.poll() is None, (tmp_path / "audit.log").read_text()[-2000:]
            time.sleep(0.3)
        before = load_audit(run_dir)
        assert 2 <= len(before) < 4, "the audit finished before it could be interrupted"
        time.sleep(2.5)  # in Tune's saved state too
        before = load_audit(run_dir)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        stop_process_group(driver)
        log.close()
    resumed = subprocess.run(_audit_cmd(*args), cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.splitlines()[0].startswith("audit: ")
    after = load_audit(run_dir)
    assert sorted(after["trial_id"]) == sorted(
        f"audit-{int(after['audit_of'].iloc[0])}-s{s}-e{e}" for s, e in ((1, 1), (2, 1), (3, 1), (0, 2))
    )
    kept = after.set_index("trial_id").loc[before["trial_id"]]
    # the retrainings finished before the kill were not run again
    assert kept["trial_time_s"].tolist() == pytest.approx(before["trial_time_s"].tolist())
    assert len(load_trials(run_dir)) == 4  # the search's rows are untouched


# --- bad input: one line, exit 2, nothing started ----------------------------------------------------------------


def test_audit_refuses_a_missing_folder_bad_counts_and_a_running_search(tmp_path, capsys) -> None:
    from test_report import make_run

    from explorer.cli import main

    assert main(["audit", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    make_run(run)
    for flag, value, least in (("--seeds", "0", 1), ("--front", "-1", 0), ("--reference-epochs", "0", 1)):
        assert main(["audit", str(run), flag, value]) == 2
        assert f"{flag} {value}: expected {least} or more" in capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "state": "running", "recipe": {}}))
    assert main(["audit", str(run)]) == 2
    err = capsys.readouterr().err
    assert "its search has not finished" in err and err.count("\n") == 1
    assert not (run / "audit").exists() and len(load_trials(run, role=None)) == len(load_trials(run))


def test_report_header_quotes_the_measurement_of_the_runs_proxy(tmp_path, monkeypatch) -> None:
    from test_report import make_run

    from explorer.analysis import fidelity
    from explorer.report import write_report

    run = tmp_path / "run"
    make_run(run)
    meta = json.loads((run / "run.json").read_text())
    budget = {"epochs": 12, "batch_size": 16, "lr": 1e-3, "warmup": 0.1, "init": "width_scaled"}
    meta.update(
        task="trev/demo",
        budget={**meta.get("budget", {}), **budget},
        recipe={"validation_fraction": 0.2},
        clips={"train": 1604, "val": 396, "test": 500},
    )
    (run / "run.json").write_text(json.dumps(meta))
    monkeypatch.setattr(fidelity, "MEASUREMENTS", tmp_path / "fidelity.json")
    page = write_report(run).read_text()
    assert "not measured for this proxy" in page and "1,604 training / 396 validation / 500 test clips" in page
    record_measurement(
        {
            "proxy": proxy_key("trev/demo", budget, 0.2),
            "kendall_tau_b": 0.71,
            "tau_ci90": [0.5, 0.85],
            "reference_epochs": 60,
            "anchors": 27,
            "reference_anchors": 20,
            "reference_seeds": 1,
            "proxy_seed_tau": 0.84,
            "proxy_seeds": 3,
            "readme": "experiments/proxy_fidelity/README.md",
            "measured": "2026-12-02",
        }
    )
    page = write_report(run).read_text()
    assert (
        "Kendall τ-b 0.71 (90 % CI 0.50–0.85) against a 60-epoch reference over 20 anchors (1 reference seed)" in page
        and "seed-to-seed τ-b 0.84 over 27 anchors (3 seeds)" in page
    )
