"""Rank-agreement metrics of the proxy-fidelity benchmark (experiments/proxy_fidelity/analyze.py)."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "proxy_fidelity" / "analyze.py"
_spec = importlib.util.spec_from_file_location("fidelity_analyze", _PATH)
analyze = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(analyze)


def test_kendall_tau_b_with_and_without_ties() -> None:
    assert analyze.kendall_tau_b([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)  # 5 of 6 pairs agree
    assert analyze.kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    # tau-b: one tie in a -> 5 untied pairs in a, 6 in b; concordant 5 -> 5 / sqrt(5 * 6)
    assert analyze.kendall_tau_b([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / (5 * 6) ** 0.5)


def test_spearman_top_k_and_table() -> None:
    assert analyze.spearman([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(0.8)
    assert analyze.top_k_overlap([4, 3, 2, 1], [4, 1, 3, 2], k=2) == 0.5
    rows = [{"arch": a, "budget": b, "seed": s, "accuracy": acc, "tse": 1.0, "params": 1}
            for a, p, r in (("x", 0.1, 0.5), ("y", 0.2, 0.6), ("z", 0.3, 0.4))
            for b, acc in (("proxy", p), ("reference", r)) for s in (0, 1)]
    per_arch, stats = analyze.tables(rows)
    assert list(per_arch.index) == ["y", "x", "z"] and stats["archs"] == 3
    assert stats["tau"] == pytest.approx(-1 / 3) and stats["regret_rank"] == 3
    assert stats["reference_seed_tau"] == pytest.approx(1.0)
