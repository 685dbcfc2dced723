"""Corrupt run folders: every command that reads one says in one line which file is wrong, and keeps what is
intact (a truncated trials.parquet falls back to trials.csv, saying so)."""

import json

import pytest

from explorer.analysis import RunFolderError, load_run_meta, load_trials
from explorer.cli import main
from tests.test_report import make_run


def _one_error_line(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "x", "objectives": [',
        "\xff\xfe not utf-8",
        "[1, 2]",
        '{"objectives": [{"metric": "accuracy", "mode": "up"}]}',
        "",
    ],
)
def test_a_broken_run_json_is_one_line_for_report_export_and_resume(tmp_path, capsys, content):
    run = tmp_path / "run"
    make_run(run, n=6)
    (run / "run.json").write_bytes(content.encode("latin-1"))
    for argv in (["report", str(run)], ["export", str(run)], ["search", "--resume", str(run)]):
        assert main(argv) == 2, argv
        line = _one_error_line(capsys)
        assert f"{run / 'run.json'}: " in line, line
    assert not (run / "index.html").exists() and not (run / "export").exists()


def test_a_truncated_parquet_falls_back_to_the_csv_and_says_so(tmp_path, capsys, caplog):
    run = tmp_path / "run"
    df = make_run(run, n=6)
    parquet = run / "trials.parquet"
    parquet.write_bytes(parquet.read_bytes()[:200])
    loaded = load_trials(run)
    assert list(loaded["trial_id"]) == list(df["trial_id"])  # the same table, from trials.csv
    assert f"{parquet}: unreadable" in caplog.text and "read trials.csv instead" in caplog.text
    assert main(["report", str(run)]) == 0
    assert (run / "index.html").exists()
    (run / "trials.csv").write_text('number,trial_id\n0,"unterminated\n')  # neither table reads now
    with pytest.raises(RunFolderError):
        load_trials(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {run / 'trials.csv'}: unreadable (ParserError") and "Traceback" not in err


def test_a_run_folder_without_tables_or_meta_is_named(tmp_path, capsys):
    run = tmp_path / "run"
    make_run(run, n=6)
    (run / "trials.parquet").unlink()
    (run / "trials.csv").unlink()
    assert main(["report", str(run)]) == 2
    assert _one_error_line(capsys) == f"error: {run}: no trials.parquet or trials.csv"
    (run / "run.json").unlink()
    with pytest.raises(RunFolderError, match="not a run folder"):
        load_run_meta(run)
    for argv in (["report", str(run)], ["export", str(run)], ["search", "--resume", str(run)]):
        assert main(argv) == 2
        assert _one_error_line(capsys) == f"error: {run}: not a run folder (no run.json)"
    (run / "meta").mkdir()
    (run / "run.json").write_text(json.dumps({"objectives": []}))
    assert main(["report", str(run)]) == 2
    assert "not a run.json of explorer" in _one_error_line(capsys)


def test_trial_numbers_are_stable_across_table_rewrites(tmp_path):
    """The table on disk fixes a trial's number: a resumed run (Tune lists trials in another order) keeps them, a
    trial new to the table keeps its place in Tune's list unless that number is taken, and a lost finished row
    stays with its number."""
    import pandas as pd

    from explorer.search.rundir import keep_lost_rows, write_table

    def table(pairs):
        return pd.DataFrame({"trial_id": [t for t, _ in pairs], "number": [n for _, n in pairs], "status": "COMPLETE"})

    write_table(table([("b", 1)]), tmp_path)  # the live table before trial a reported
    merged = keep_lost_rows(table([("a", 0), ("b", 1)]), tmp_path, {"a", "b"})
    assert list(zip(merged["trial_id"], merged["number"])) == [("a", 0), ("b", 1)]
    write_table(merged.assign(status="COMPLETE"), tmp_path)
    resumed = keep_lost_rows(table([("c", 0), ("b", 1)]), tmp_path, {"b", "c"})  # a: lost from Tune's state
    assert list(zip(resumed["trial_id"], resumed["number"])) == [("a", 0), ("b", 1), ("c", 2)]
