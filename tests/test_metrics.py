"""One metrics registry: the space schema, the loader and the report read the same names, directions and labels."""

import typing

from explorer.metrics import METRIC_MODES, METRICS, OBJECTIVE_METRICS, PREDICTABLE_COSTS
from explorer.report.html import label
from explorer.space.schema import ObjectiveSpec


def test_the_schema_accepts_exactly_the_registered_objectives():
    allowed = typing.get_args(ObjectiveSpec.model_fields["metric"].annotation)
    assert set(allowed) == set(OBJECTIVE_METRICS)
    assert METRIC_MODES["accuracy"] == "max" and METRIC_MODES["latency_ms"] == "min"
    assert PREDICTABLE_COSTS == ("gflops", "params_m", "latency_ms", "predicted_latency_ms")


def test_the_report_labels_come_from_the_registry():
    for name, metric in METRICS.items():
        assert label(name) == metric.label
    assert label("latency_ms") == "latency (ms)" and label("top5") == "top5 (%)"
