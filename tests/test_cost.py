import torch
import torch.nn as nn
import torch.nn.functional as F

from explorer.cost import count_flops, measure, measure_latency
from explorer.models import preset


class Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_attention_never_counts_zero():
    q = torch.randn(2, 4, 16, 8)
    k = torch.randn(2, 4, 32, 8)
    v = torch.randn(2, 4, 32, 8)
    assert count_flops(Attention(), (q, k, v)) == 2 * 4 * 16 * 32 * (8 + 8)


def test_linear_and_conv_counts():
    assert count_flops(nn.Linear(8, 4, bias=False), torch.randn(3, 8)) == 3 * 8 * 4
    conv = nn.Conv3d(2, 4, (3, 3, 3), padding=1)
    assert count_flops(conv, torch.randn(1, 2, 4, 5, 5)) == 4 * 5 * 5 * 4 * 2 * 27


def test_measure_reports_latency_and_threads():
    cost = measure(preset("conv3d_tiny"), threads=1, repeats=3)
    assert cost.params == 48556
    assert cost.latency_ms > 0 and cost.latency_iqr_ms >= 0 and cost.threads == 1
    assert set(cost.metrics()) == {"params_m", "gflops", "latency_ms"}


def test_latency_restores_threads():
    before = torch.get_num_threads()
    measure_latency(nn.Linear(4, 4), torch.randn(1, 4), threads=1, warmup=1, repeats=2)
    assert torch.get_num_threads() == before


# ---- per-part params, latency noise, memory, objective metrics, cuda

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from explorer.cost import (  # noqa: E402
    METRICS,
    count_params,
    example_input,
    latency_stats,
    objective_metrics,
    params_by_part,
    peak_memory,
    time_callable,
)
from explorer.models import build  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_numbers.json").read_text())["models"]


@pytest.mark.parametrize(
    "name, ref", [("morphmlp_s_16f", "morphmlp_s_16f_k400"), ("posmlp_video_72d", "posmlp_video_72d_16f_ssv1")]
)
def test_params_per_part_match_the_released_models(name, ref):
    by_stage = REFERENCE[ref]["params_by_stage"]
    model = build(preset(name))
    parts = params_by_part(model)
    assert sum(parts.values()) == count_params(model) == REFERENCE[ref]["params"]
    expected = {
        "stem": by_stage["stem"],
        "stages.0": by_stage["stage1"],
        **{f"stages.{i - 1}": by_stage[f"down{i}"] + by_stage[f"stage{i}"] for i in (2, 3, 4)},
        "head": by_stage.get("norm_head") or by_stage["norm"] + by_stage["head"],
    }
    assert parts == expected


def test_params_per_part_include_global_tokens():
    model = build(preset("mobile_former_tiny"))
    parts = params_by_part(model)
    assert parts["global_tokens"] == model.global_tokens.embed.numel() == 6 * 64
    assert sum(parts.values()) == count_params(model)


def test_noisy_measurement_is_flagged_and_repeated():
    calls = iter([1.0, 1.0, 1.0, 5.0] * 10)

    def fn():  # a "forward pass" whose wall time alternates, giving a CV far above 5%
        import time

        time.sleep(next(calls) / 1e3)

    # the wall clock: sleeping costs no CPU time, so the default paired (CPU-time) clock would not see the pattern
    times, rounds = time_callable(fn, warmup=0, repeats=4, max_rounds=3, clock="wall")
    assert rounds == 3 and len(times) == 12  # repeated up to the bound, then reported as is
    stats = latency_stats(nn.Linear(64, 64), torch.randn(8, 64), repeats=20, max_cv=10.0)
    assert stats.rounds == 1 and not stats.noisy and stats.runs == 20 and stats.threads == 1


def test_thread_clock_and_bad_device_and_precision():
    stats = latency_stats(nn.Linear(64, 64), torch.randn(8, 64), repeats=3, clock="thread")
    assert stats.clock == "thread" and stats.median_ms > 0
    with pytest.raises(ValueError, match="device: expected one of cpu, cuda, got 'tpu'"):
        latency_stats(nn.Linear(4, 4), torch.randn(1, 4), device="tpu")
    with pytest.raises(ValueError, match="precision: expected fp32, bf16 or fp16"):
        latency_stats(nn.Linear(4, 4), torch.randn(1, 4), precision="int3")


def test_peak_memory_of_a_preset_is_above_its_weights():
    arch = preset("conv3d_tiny")
    model = build(arch)
    mem = peak_memory(model, arch, "cpu")
    weights_mb = sum(p.numel() * 4 for p in model.parameters()) / 2**20
    assert weights_mb < mem.inference_mb < mem.train_mb
    assert "best effort" in mem.method and model.training  # mode restored


def test_objective_metrics_computes_only_what_is_asked():
    arch = preset("conv3d_tiny")
    out = objective_metrics(arch, names=["params_m", "gflops"])
    assert out == {"params_m": 48556 / 1e6, "gflops": pytest.approx(measure(arch, latency=False).gflops)}
    out = objective_metrics(arch, names=["latency_ms", "throughput", "peak_mem_mb"], repeats=3, batch=4)
    assert set(out) == {"latency_ms", "throughput", "peak_mem_mb"} and all(v > 0 for v in out.values())
    with pytest.raises(ValueError, match="unknown; expected any of " + ", ".join(METRICS)):
        objective_metrics(arch, names=["speed"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_latency_memory_and_prediction(tmp_path):
    from explorer.cost.predictor import LatencyTable, predict

    arch = preset("focal_tiny")
    model = build(arch)
    for precision, cl in (("fp32", False), ("bf16", True), ("fp16", False)):
        stats = latency_stats(
            model, example_input(arch), device="cuda", precision=precision, channels_last=cl, repeats=5
        )
        assert stats.device == "cuda" and stats.median_ms > 0 and stats.clock == "cuda events"
    mem = peak_memory(model, arch, "cuda")
    assert 0 < mem.inference_mb < mem.train_mb and mem.method == "torch.cuda.max_memory_allocated"
    table = LatencyTable(device="cuda", path=tmp_path / "cuda.json")
    assert predict(arch, "cuda", table, repeats=3).total_ms > 0
    assert objective_metrics(arch, names=list(METRICS), device="cuda", predictor=table, repeats=3, batch=4)
