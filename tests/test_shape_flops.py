"""The trace-free FLOP count (``explorer.cost.shape_flops``) equals fvcore's on every preset, on random architectures
of the unified space, and op by op on every operator fvcore counts."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from explorer.cost import (
    REAL_FORWARD_MAX_VOXELS,
    FlopReport,
    ShapeCountError,
    cost_report,
    count_flops,
    count_flops_fast,
    count_params,
    example_input,
    fast_costs,
    flop_breakdown,
    pinned_threads,
)
from explorer.cost.shape_flops import counting_device, counting_input, flop_breakdown_fast, meta_model
from explorer.models import build, preset, preset_names

UNIFIED = Path(__file__).resolve().parents[1] / "search_spaces" / "unified.yaml"


def _small(arch) -> bool:
    i = arch.input
    return i.frames * i.resolution**2 <= REAL_FORWARD_MAX_VOXELS


def _fvcore(arch) -> tuple[int, int]:
    with warnings.catch_warnings(), pinned_threads(1):
        warnings.simplefilter("ignore")
        model = build(arch)
        return count_flops(model, example_input(arch)), count_params(model)


def _random_archs(n: int, seed: int = 0) -> list:
    import optuna

    from explorer.space import load_space, sample_arch

    space = load_space(UNIFIED)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs, seen = [], set()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while len(archs) < n:
        trial = study.ask()
        try:
            arch = sample_arch(space, trial)
            build(arch)
        except Exception:  # a combination the builder rejects: inspect counts those, here we need valid ones
            arch = None
        study.tell(trial, 0.0)
        if arch is not None and arch.content_hash not in seen:
            seen.add(arch.content_hash)
            archs.append(arch)
    return archs


def _breakdowns(arch) -> tuple[FlopReport, FlopReport]:
    """fvcore's breakdown of the real model and the trace-free one of the model where ``fast_costs`` counts it."""
    with warnings.catch_warnings(), pinned_threads(1):
        warnings.simplefilter("ignore")
        expected = flop_breakdown(build(arch), example_input(arch))
        device = counting_device(arch)
        model = meta_model(arch) if device == "meta" else build(arch)
        return expected, flop_breakdown_fast(model, counting_input(arch, device))


@pytest.mark.parametrize("name", [n for n in preset_names() if _small(preset(n))])
def test_small_presets_cost_exactly_what_fvcore_counts_on_cpu_and_on_meta(name):
    arch = preset(name)
    expected = _fvcore(arch)
    assert fast_costs(arch) == fast_costs(arch, device="meta") == expected
    fvcore_parts, fast_parts = _breakdowns(arch)
    assert fast_parts == fvcore_parts  # total, per part, per operator


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in preset_names() if not _small(preset(n))])
def test_released_model_presets_cost_exactly_what_fvcore_counts(name):
    arch = preset(name)
    assert fast_costs(arch) == _fvcore(arch)  # the meta device: these are 224 px clips
    fvcore_parts, fast_parts = _breakdowns(arch)
    assert fast_parts == fvcore_parts


def test_cost_report_without_timing_counts_a_released_model_on_the_meta_device():
    # Video-FocalNet-T (8x224x224): 49,553,272 params and 63.14 GFLOPs, fvcore on the official code
    # (tests/data/reference_numbers.json); nothing is allocated, so this takes a fraction of a second
    report = cost_report(preset("video_focalnet_t"), latency=False, elementwise=False)
    assert report.params == 49_553_272 and report.flops.gflops == pytest.approx(63.14, rel=1e-4)
    assert sum(report.params_by_part.values()) == report.params
    assert sum(report.flops.by_part.values()) == report.flops.total


def test_forty_random_unified_architectures_cost_exactly_what_fvcore_counts():
    for arch in _random_archs(40, seed=1):
        assert fast_costs(arch) == _fvcore(arch), arch.summary()


@pytest.mark.slow
def test_a_thousand_random_unified_architectures_cost_exactly_what_fvcore_counts():
    archs = _random_archs(1000)
    wrong = [a.summary() for a in archs if fast_costs(a) != _fvcore(a)]
    assert not wrong, f"{len(wrong)} of 1000 differ, e.g. {wrong[:3]}"
    assert all(fast_costs(a, device="meta") == fast_costs(a) for a in archs[:50])


class EveryCountedOp(nn.Module):
    """Each operator fvcore counts, called the ways a block may call it."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = nn.Conv1d(4, 6, 3), nn.Conv2d(4, 6, 3, groups=2), nn.Conv3d(4, 6, 3)
        self.up = nn.ConvTranspose2d(4, 6, 2, stride=2)
        self.bn, self.gn, self.inorm = nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4, affine=True)
        self.ln, self.ln_plain = nn.LayerNorm(8), nn.LayerNorm(8, elementwise_affine=False)
        self.fc = nn.Linear(8, 5)
        self.w = nn.Parameter(torch.randn(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (2, 4, 8, 8)
        clip = x[:, :, None].expand(-1, -1, 4, -1, -1)
        s = self.conv1(x.flatten(2)).sum() + self.conv2(x).sum() + self.conv3(clip).sum()
        s = s + self.up(x).sum() + self.bn(x).sum() + self.gn(x).sum() + self.inorm(x).sum()
        t = x.flatten(0, 1)  # (8, 8, 8)
        s = s + self.ln(t).sum() + self.ln_plain(t).sum() + self.fc(t).sum() + F.linear(t, self.fc.weight).sum()
        s = s + (t @ self.w).sum() + torch.matmul(t, self.w).sum() + t.matmul(self.w).sum() + torch.bmm(t, t).sum()
        s = s + t.bmm(t).sum() + torch.mm(t[0], self.w).sum() + t[0].mm(self.w).sum()
        s = s + torch.addmm(self.w[0], t[0], self.w).sum()
        s = s + torch.einsum("bij,bjk->bik", t, t).sum() + torch.einsum("bij,bkj->bki", t, t).sum()
        s = s + torch.einsum("bi,bj->bij", [t[0], t[1]]).sum() + torch.einsum("nij,jk->nik", t, self.w).sum()
        s = s + F.adaptive_avg_pool2d(x, 2).sum()
        q = t.view(2, 4, 8, 8)
        return s + F.scaled_dot_product_attention(q, q, q).sum()


def test_every_operator_fvcore_counts_is_counted_as_fvcore_counts_it():
    model, x = EveryCountedOp().eval(), torch.randn(2, 4, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = count_flops(model, x)
    assert expected > 0 and count_flops_fast(model, x) == expected
    with torch.device("meta"):
        on_meta = EveryCountedOp()
    assert count_flops_fast(on_meta, torch.empty(2, 4, 8, 8, device="meta")) == expected


def test_an_op_counted_only_by_mode_is_refused_not_counted_as_zero():
    class Upsampling(nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2)

    with pytest.raises(ShapeCountError, match="interpolate"):
        count_flops_fast(Upsampling(), torch.randn(1, 2, 4, 4))


def test_a_forward_that_needs_values_is_refused_on_meta_and_counted_on_the_cpu():
    class ValueDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x) if x.sum().item() > -1e9 else x  # .item(): a value, which meta tensors do not have

    with torch.device("meta"):
        on_meta = ValueDependent()
    with pytest.raises(ShapeCountError, match="needs tensor values"):
        count_flops_fast(on_meta, torch.empty(2, 4, device="meta"))
    assert count_flops_fast(ValueDependent(), torch.randn(2, 4)) == 2 * 4 * 4
