"""Latency lookup table: units, keys, prediction by summation, on-demand measurement, file round trip."""

import json
import socket
import statistics
import time

import pytest
import torch

from explorer.cost import example_input, objective_metrics, predict_latency_ms
from explorer.cost.predictor import LatencyTable, calibrate, default_table_path, model_units, predict
from explorer.models import build, preset


def test_units_cover_stem_downs_blocks_and_head():
    arch = preset("focal_tiny")  # 2 stages of depth 1, one downsampling layer
    model = build(arch).eval()
    units = model_units(model, example_input(arch))
    roles = [u.key.split("|")[0] for u in units]
    assert roles == ["stem", "block", "down", "block", "head"]
    with torch.inference_mode():  # the captured inputs are inference tensors
        for u in units:
            u.run()  # every unit runs alone on the inputs captured in the model


def test_equal_blocks_share_a_key_and_drop_path_does_not_matter():
    arch = preset("vit_tiny_tome").replace(drop_path_rate=0.3)
    units = model_units(build(arch).eval(), example_input(arch))
    blocks = [u.key for u in units if u.key.startswith("block|")]
    assert len(blocks) == 4
    # ToMe shrinks the token set after every block: the shapes (and so the keys) differ block to block
    assert len(set(blocks)) == 4
    plain = preset("focal_tiny")
    a = [u.key for u in model_units(build(plain).eval(), example_input(plain))]
    b = [u.key for u in model_units(build(plain.replace(drop_path_rate=0.5)).eval(), example_input(plain))]
    assert a == b


def test_prediction_is_the_sum_of_entries_and_missing_keys_are_measured(tmp_path):
    arch = preset("conv3d_tiny")
    table = LatencyTable(device="cpu", path=tmp_path / "cpu.json")
    first = predict(arch, "cpu", table, repeats=3)
    assert first.measured == [k for k, _ in first.units]  # all missing the first time, all measured
    assert set(table.entries) == set(first.measured) and (tmp_path / "cpu.json").exists()
    # tamper with the entries: a calibrated arch's prediction is exactly their sum (× the fitted scale)
    for i, key in enumerate(table.entries):
        table.entries[key] = float(i + 1)
    table.meta["scale"] = 1.5
    again = predict(arch, "cpu", table)
    n = len(table.entries)
    assert again.measured == [] and again.raw_ms == n * (n + 1) / 2 and again.total_ms == 1.5 * again.raw_ms
    assert predict_latency_ms(arch, table=table) == 1.5 * n * (n + 1) / 2
    assert objective_metrics(arch, names=["predicted_latency_ms"], predictor=table) == {
        "predicted_latency_ms": 1.5 * n * (n + 1) / 2
    }
    table.save()
    loaded = LatencyTable.load(tmp_path / "cpu.json", "cpu")
    assert loaded.entries == table.entries and loaded.scale == 1.5


def test_an_empty_table_takes_the_default_clock_and_an_old_one_stays_wall(tmp_path):
    from explorer.cost.predictor import table_clock

    assert table_clock(LatencyTable(device="cpu")) == "paired"
    assert table_clock(LatencyTable(device="cuda")) == "wall"
    assert table_clock(LatencyTable(device="cpu", entries={"stem|x": 1.0})) == "wall"  # saved before clocks


def test_calibrate_fits_a_scale_and_saves(tmp_path):
    table = LatencyTable(device="cpu", path=tmp_path / "t.json")
    calibrate([preset("conv3d_tiny")], "cpu", table, repeats=3)
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["device"] == "cpu" and data["meta"]["scale"] > 0 and len(data["entries"]) == 5


def test_bad_table_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"device": "cpu"}')
    with pytest.raises(ValueError, match="bad.json: not a latency table"):
        LatencyTable.load(bad)
    other = tmp_path / "cuda.json"
    LatencyTable(device="cuda", path=other).save()
    with pytest.raises(ValueError, match="for device 'cuda', but 'cpu'"):
        LatencyTable.load(other, "cpu")


def test_default_path_follows_explorer_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    assert default_table_path("cuda") == tmp_path / "latency" / "cuda.json"


# ------------------------------------------------------------------------------------------- paired clock


class _ReferenceTimes(torch.nn.Module):
    """Runs the reference model k times per call: under the paired clock it must read ≈ k × the reference's ms."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from explorer.cost import reference_call

        run = reference_call()
        for _ in range(self.k):
            run()
        return x


def test_paired_clock_reads_in_reference_units(monkeypatch, tmp_path):
    from explorer.cost import latency_stats, reference_ms, reference_speed_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    ref = reference_ms(1)
    assert reference_speed_path() == tmp_path / "latency" / "reference-cpu.json" and ref > 0
    stats = latency_stats(_ReferenceTimes(2), torch.zeros(1), "cpu", 1, warmup=1, repeats=9, clock="paired")
    assert stats.clock == "paired"
    # a pair's ratio is ≈ 2 whatever the host's speed; wide bounds: the pair's two halves still see some noise
    assert 1.5 * ref < stats.median_ms < 2.6 * ref


def test_reference_speed_is_measured_once_and_a_damaged_file_is_remeasured(monkeypatch, tmp_path):
    from explorer.cost import reference_ms, reference_speed_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    first = reference_ms(1)
    data = json.loads(reference_speed_path().read_text())
    [key] = data
    # keyed by the reference's content, the host, threads and torch: nodes sharing a home directory keep their own
    assert key.startswith("posmlp_tiny#") and f"/host={socket.gethostname()}/threads=1/torch=" in key
    other_host = key.replace(f"/host={socket.gethostname()}/", "/host=another-node/")
    reference_speed_path().write_text(json.dumps({other_host: 123.0}))
    assert reference_ms(1) != 123.0  # another node's figure is not this one's
    data = json.loads(reference_speed_path().read_text())
    assert set(data) == {other_host, key}
    data[key] = 123.0  # a later process reads the kept figure instead of measuring again
    reference_speed_path().write_text(json.dumps(data))
    assert reference_ms(1) == 123.0
    reference_speed_path().write_text("{not json")
    again = reference_ms(1)
    assert again != 123.0 and 0.2 * first < again < 5 * first


def test_paired_clock_is_refused_on_cuda():
    from explorer.cost import time_callable

    with pytest.raises(ValueError, match="clock 'paired' is for the cpu; on cuda the timing uses CUDA events"):
        time_callable(lambda: None, "cuda", clock="paired")


def test_calibrating_with_another_clock_remeasures_and_records_the_reference(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    table = LatencyTable(device="cpu", path=tmp_path / "t.json")
    arch = preset("conv3d_tiny")
    calibrate([arch], "cpu", table, repeats=3, clock="wall")
    assert table.meta["clock"] == "wall"
    for key in table.entries:
        table.entries[key] = -1.0  # marks: entries kept from the wall-clock calibration would stay -1
    calibrate([arch], "cpu", table, repeats=3, clock="paired")
    assert len(table.entries) == 5 and all(ms > 0 for ms in table.entries.values())
    assert table.meta["clock"] == "paired" and table.meta["reference"] == "posmlp_tiny"
    [kept] = json.loads((tmp_path / "latency" / "reference-cpu.json").read_text()).values()
    assert table.meta["reference_ms"] == kept
    # a unit missing later is timed with the table's clock (paired), not wall
    other = preset("posmlp_tiny")
    pred = predict(other, "cpu", table, repeats=3)
    assert pred.measured and table.meta["clock"] == "paired"


def test_concurrent_savers_keep_each_others_entries(tmp_path):
    """Two trials load the same table, each measures other units and saves: neither loses the other's."""
    path = tmp_path / "cpu.json"
    LatencyTable(device="cpu", path=path, meta={"clock": "paired"}).save()
    first, second = LatencyTable.load(path, "cpu"), LatencyTable.load(path, "cpu")
    first.entries["stem|a"] = 1.0
    second.entries["block|b"] = 2.0
    first.save()
    second.save()
    assert LatencyTable.load(path, "cpu").entries == {"stem|a": 1.0, "block|b": 2.0}
    # a fresh recalibration replaces the file's entries instead of merging them back
    third = LatencyTable(device="cpu", path=path, entries={"head|c": 3.0}, meta={"clock": "paired"})
    third.save(merge=False)
    assert LatencyTable.load(path, "cpu").entries == {"head|c": 3.0}
    # entries timed with another clock are never merged in
    wall = LatencyTable(device="cpu", path=path, entries={"stem|w": 4.0}, meta={"clock": "wall"})
    wall.save()
    assert LatencyTable.load(path, "cpu").entries == {"stem|w": 4.0}


def _busy(seconds: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        pass


def test_min_clock_reports_the_fastest_round_once_a_second_round_confirms_it(monkeypatch):
    """Rounds alternate slow (4 ms a call) and fast (2 ms): the figure is the fast rounds', and it takes the fourth
    round, the second fast one, to confirm it (a lone fast round could be luck)."""
    import explorer.cost.timing as timing

    monkeypatch.setattr(timing, "MIN_PAUSE_S", 0.0)
    calls = {"n": 0}
    repeats = 4

    def fn() -> None:
        round_index = calls["n"] // repeats  # warm-up calls are not counted
        calls["n"] += 1
        _busy(0.004 if round_index % 2 == 0 else 0.002)

    with timing.pinned_threads(1):  # one thread: the clock reads the thread's CPU time
        times, rounds = timing.time_callable(fn, "cpu", warmup=0, repeats=repeats, clock="min")
    assert rounds == 4 and len(times) == repeats
    assert 1.9 < statistics.median(times) < 2.6


def test_paired_clock_falls_back_to_min_outside_its_validated_band(monkeypatch, tmp_path):
    """Inside the band (a model up to PAIRED_MAX_RATIO reference calls long, up to PAIRED_MAX_THREADS threads) the
    figure is paired; a longer model, or more threads, gets clock="min", and the stats say so."""
    import explorer.cost.timing as timing

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    monkeypatch.setattr(timing, "PAIRED_MAX_RATIO", 6.0)
    monkeypatch.setattr(timing, "MIN_PAUSE_S", 0.0)
    x = torch.zeros(1)
    latency_stats = timing.latency_stats
    assert latency_stats(_ReferenceTimes(2), x, "cpu", 1, warmup=1, repeats=3).clock == "paired"
    far = latency_stats(_ReferenceTimes(16), x, "cpu", 1, warmup=1, repeats=3)
    assert far.clock == "min" and far.median_ms > 6 * timing.reference_ms(1)
    assert latency_stats(_ReferenceTimes(2), x, "cpu", 2, warmup=1, repeats=3).clock == "min"
    # a clock asked for by name is kept, outside the band too
    assert latency_stats(_ReferenceTimes(16), x, "cpu", 1, warmup=1, repeats=3, clock="paired").clock == "paired"


@pytest.mark.parametrize("name", ["focal_tiny", "mobile_former_tiny", "vit_tiny_tome"])
def test_the_head_unit_runs_the_head_alone(name):
    """Each unit runs only its own part: the head unit must not run the stem or any stage again (it once timed the
    whole model, so the table's sum of units was twice the model)."""
    arch = preset(name)
    model = build(arch).eval()
    calls = []
    model.stem.register_forward_hook(lambda *_: calls.append("stem"))
    for stage in model.stages:
        stage.register_forward_hook(lambda *_: calls.append("stage"))
    units = model_units(model, example_input(arch))
    calls.clear()
    with torch.inference_mode():
        logits = units[-1].run()
    assert units[-1].key.startswith("head|") and calls == []
    assert logits.shape == (1, arch.input.num_classes)


def test_a_table_of_an_older_version_is_measured_again(tmp_path):
    path = tmp_path / "cpu.json"
    path.write_text(
        json.dumps(
            {"version": 1, "device": "cpu", "threads": 1, "meta": {"clock": "paired"}, "entries": {"head|x": 9.0}}
        )
    )
    table = LatencyTable.load(path)
    assert table.entries == {} and table.device == "cpu"
