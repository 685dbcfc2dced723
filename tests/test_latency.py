"""Latency lookup table: units, keys, prediction by summation, on-demand measurement, file round trip."""

import json

import pytest
import torch

from explorer.latency import LatencyTable, calibrate, default_table_path, model_units, predict
from explorer.cost import example_input, objective_metrics, predict_latency_ms
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
