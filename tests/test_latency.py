"""Latency lookup table: units, keys, prediction by summation, on-demand measurement, file round trip."""

import json

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
        "predicted_latency_ms": 1.5 * n * (n + 1) / 2}
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
    bad.write_text("{\"device\": \"cpu\"}")
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


class _TwiceTheReference(torch.nn.Module):
    """Runs the reference model twice per call: under the paired clock it must read ≈ 2 × the reference's ms."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from explorer.cost import reference_call

        run = reference_call()
        run()
        run()
        return x


def test_paired_clock_reads_in_reference_units(monkeypatch, tmp_path):
    from explorer.cost import latency_stats, reference_ms, reference_speed_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    ref = reference_ms(1)
    assert reference_speed_path() == tmp_path / "latency" / "reference-cpu.json" and ref > 0
    stats = latency_stats(_TwiceTheReference(), torch.zeros(1), "cpu", 1, warmup=1, repeats=9, clock="paired")
    assert stats.clock == "paired"
    # a pair's ratio is ≈ 2 whatever the host's speed; wide bounds: the pair's two halves still see some noise
    assert 1.5 * ref < stats.median_ms < 2.6 * ref


def test_reference_speed_is_measured_once_and_a_damaged_file_is_remeasured(monkeypatch, tmp_path):
    from explorer.cost import reference_ms, reference_speed_path

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    first = reference_ms(1)
    data = json.loads(reference_speed_path().read_text())
    [key] = data
    assert key.startswith("posmlp_tiny/threads=1/torch=")
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
