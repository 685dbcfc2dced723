"""Fidelity benchmark v2 (experiments/proxy_fidelity/): its anchors are ready-space architectures covering every
seed family's design options, and its analysis computes the agreement it reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

FOLDER = Path(__file__).resolve().parents[1] / "experiments" / "proxy_fidelity"


def _load(name: str):
    sys.path.insert(0, str(FOLDER))
    try:
        spec = importlib.util.spec_from_file_location(name, FOLDER / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the scripts import each other by these names
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(FOLDER))


anchors = _load("anchors")
analyze = _load("analyze")


def test_anchors_cover_every_family_and_the_options_the_issue_names() -> None:
    names = {a.name for a in anchors.ANCHORS}
    assert len(names) == len(anchors.ANCHORS) >= 24
    assert {a.family for a in anchors.ANCHORS} >= {
        "posmlp",
        "morphmlp",
        "focal",
        "mobile_former",
        "attention",
        "conv3d",
        "frame2d",
    }
    assert {f"posmlp_{a}" for a in ("parallel", "spatial_temporal", "temporal_spatial", "joint")} <= names
    assert {"morphmlp_c4_rw", "morphmlp_c4_norw", "morphmlp_c8_rw", "morphmlp_c8_norw"} <= names
    assert {f"focal_{c}" for c in ("parallel", "serial", "joint3d", "spatial_only")} <= names
    assert {"mobile_former_t0", "mobile_former_t3", "mobile_former_t6"} <= names
    assert {"vit_joint", "vit_divided", "vit_tome_r16", "vit_sttm_0.5", "vit_sttm_0.25"} <= names


@pytest.mark.parametrize("anchor", anchors.ANCHORS, ids=lambda a: a.name)
def test_each_anchor_is_built_as_its_ready_space_builds_it(anchor) -> None:
    space, arch = anchors.build_anchor(anchor)
    # the benchmark trains each anchor with its ready space's recipe, at fixed epochs; the spaces' own are one of them
    assert space.budget.epochs == analyze.budget_epochs("e24")
    assert space.budget.lr == pytest.approx(1e-3) and space.budget.batch_size == 16
    spec = arch.to_dict()
    mixers = {s["mixer"]["kind"] for s in spec["stages"]}
    option = {
        "posmlp": "posmlp",
        "morphmlp": "morphmlp",
        "focal": "focal",
        "mobile_former": "mobile_former",
        "attention": "attention",
        "conv3d": "conv3d",
        "frame2d": "conv3d",
    }[anchor.family]
    assert mixers == {option}
    if anchor.name == "vit_divided":
        assert spec["stages"][0]["mixer"]["options"]["space_time"] == "divided"
    if anchor.family == "frame2d":
        assert all(s["mixer"]["options"]["kernel_t"] == 1 for s in spec["stages"])
    if anchor.name.startswith("mobile_former_t"):
        assert (spec["stages"][0].get("global_tokens") or {}).get("num", 0) == int(anchor.name.split("_t")[1][:1])


def _rows() -> pd.DataFrame:
    # 5 anchors; proxy seeds 0/1 and the reference seed 0; the proxy swaps the best two
    proxy = {"a": (0.9, 0.8), "b": (0.8, 0.9), "c": (0.5, 0.4), "d": (0.3, 0.35), "e": (0.1, 0.2)}
    reference = {"a": 0.7, "b": 0.95, "c": 0.6, "d": 0.4, "e": 0.2}
    rows = [
        {
            "arch": k,
            "family": "f" + k,
            "params": 1,
            "budget": "proxy",
            "seed": s,
            "epochs": 12,
            "accuracy": v[s],
            "test_accuracy": v[0],  # on the test clips both seeds rank alike
            "seconds": 10.0,
        }
        for k, v in proxy.items()
        for s in (0, 1)
    ]
    rows += [
        {
            "arch": k,
            "family": "f" + k,
            "params": 1,
            "budget": "reference",
            "seed": 0,
            "epochs": 60,
            "accuracy": v,
            "seconds": 50.0,
        }
        for k, v in reference.items()
    ]
    return pd.DataFrame(rows)


def test_analysis_of_the_benchmark() -> None:
    df = _rows()
    table = analyze.per_anchor(df)
    assert list(table.index) == ["b", "a", "c", "d", "e"]  # by the reference
    agree = analyze.agreement(table, "proxy")
    # proxy means a 0.85 = b 0.85 (tied), c, d, e in order: one tied pair of 10 -> tau-b = 9 / sqrt(9 * 10)
    assert agree["tau"] == pytest.approx(9 / (9 * 10) ** 0.5)
    assert agree["anchors"] == 5 and agree["regret_rank"] in (1, 2)
    tau, pairs, size = analyze.seed_tau(df, "proxy")
    assert (pairs, size) == (1, 5) and tau == pytest.approx(0.8)  # a/b swap between the seeds
    curve = analyze.tradeoff(df, table)
    assert list(curve["budget"]) == ["proxy", "reference"] and curve.loc[0, "mean_train_s"] == 10.0
    assert curve.loc[0, "seed_tau"] == pytest.approx(0.8) and curve.loc[0, "seed_tau_test"] == 1.0
    assert curve.loc[0, "pick_rank"] == agree["regret_rank"] and curve.loc[0, "top5"] == agree["top5"]
