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
