"""One metrics registry: the space schema, the loader and the report read the same names, directions and labels,
and a metric measured on a device carries the device in its name."""

import typing

import pytest

from explorer.analysis import parse_objectives
from explorer.metrics import (
    DEVICE_BASES,
    METRIC_MODES,
    METRICS,
    OBJECTIVE_METRICS,
    PREDICTABLE_COSTS,
    device_metric,
    split_device,
)
from explorer.report.html import label
from explorer.space.schema import ObjectiveSpec


def test_the_schema_accepts_exactly_the_registered_objectives():
    allowed = typing.get_args(ObjectiveSpec.model_fields["metric"].annotation)
    assert set(allowed) == set(OBJECTIVE_METRICS) | set(DEVICE_BASES)
    assert METRIC_MODES["accuracy"] == "max" and METRIC_MODES["latency_cuda_ms"] == "min"
    assert METRIC_MODES["throughput_cpu"] == "max"
    # a measured latency is predictable through its stand-in, the predictor's figure for the same device
    assert PREDICTABLE_COSTS == (
        "gflops",
        "params_m",
        "latency_cpu_ms",
        "latency_cuda_ms",
        "predicted_latency_cpu_ms",
        "predicted_latency_cuda_ms",
    )
    assert METRICS["latency_cuda_ms"].stand_in == "predicted_latency_cuda_ms"
    assert not METRICS["latency_cpu_ms"].before_training and METRICS["predicted_latency_cpu_ms"].before_training


def test_device_metrics_carry_their_device_in_the_name():
    assert device_metric("latency_ms", "cuda") == "latency_cuda_ms"
    assert device_metric("predicted_latency_ms", "cpu") == "predicted_latency_cpu_ms"
    assert device_metric("throughput", "cuda") == "throughput_cuda"
    assert device_metric("peak_mem_mb", "cpu") == "peak_mem_cpu_mb"
    for name, metric in METRICS.items():
        base, device = split_device(name)
        assert device == metric.device
        assert (device_metric(base, device) if device else base) == name
    with pytest.raises(ValueError):
        device_metric("gflops", "cpu")


@pytest.mark.parametrize(
    "written, stored",
    [
        ({"metric": "latency_ms", "mode": "min"}, ("latency_cpu_ms", "cpu")),
        ({"metric": "latency_ms", "mode": "min", "device": "cuda"}, ("latency_cuda_ms", "cuda")),
        ({"metric": "latency_cuda_ms", "mode": "min"}, ("latency_cuda_ms", "cuda")),
        ({"metric": "throughput", "mode": "max", "device": "cuda"}, ("throughput_cuda", "cuda")),
        ({"metric": "accuracy", "mode": "max", "device": "cpu"}, ("accuracy", None)),  # older run.json files
    ],
)
def test_an_objective_is_stored_under_its_device_carrying_name(written, stored):
    spec = ObjectiveSpec.model_validate(written)
    assert (spec.metric, spec.device) == stored
    assert ObjectiveSpec.model_validate(spec.model_dump()) == spec  # what run.json records reads back the same
    (parsed,) = parse_objectives([written])  # and the report reads a run.json of either form alike
    assert (parsed.metric, parsed.device) == stored


def test_a_device_that_contradicts_the_name_is_refused():
    with pytest.raises(ValueError, match="latency_cpu_ms is measured on cpu, but the objective has device: cuda"):
        ObjectiveSpec.model_validate({"metric": "latency_cpu_ms", "mode": "min", "device": "cuda"})


def test_the_report_labels_come_from_the_registry():
    for name, metric in METRICS.items():
        assert label(name) == metric.label
    assert label("latency_cpu_ms") == "CPU latency (ms)" and label("latency_cuda_ms") == "CUDA latency (ms)"
    assert label("throughput_cuda") == "CUDA throughput (clips/s)" and label("top5") == "top5 (%)"
