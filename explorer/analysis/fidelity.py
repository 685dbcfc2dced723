"""The committed proxy-fidelity measurements, and which of them applies to a run.

``fidelity.json`` (beside this module) is written by ``experiments/proxy_fidelity/analyze.py --record``: per
measured proxy (task, training recipe, validation share) the rank agreement the benchmark found, the number of
anchors and seeds, and the README that explains it. A run's report quotes the entry whose proxy is exactly the
run's; any other proxy is said to be unmeasured, since fidelity changes with the budget.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MEASUREMENTS = Path(__file__).with_name("fidelity.json")
BENCHMARK_README = "experiments/proxy_fidelity/README.md"
_REPO = Path(__file__).resolve().parents[2]  # the checkout, for an editable install
# the recipe fields that make two proxies the same (explorer.space.schema.BudgetSpec)
RECIPE_KEYS = ("epochs", "batch_size", "lr", "warmup", "init")


def proxy_key(task: str, budget: dict[str, Any], validation_fraction: float | None) -> dict[str, Any]:
    """What identifies a proxy: the task label (``trev/demo``), its recipe and its validation share."""
    return {"task": task, **{k: budget.get(k) for k in RECIPE_KEYS}, "validation_fraction": validation_fraction}


def run_proxy_key(meta: dict[str, Any]) -> dict[str, Any]:
    return proxy_key(
        str(meta.get("task", "")), meta.get("budget") or {}, (meta.get("recipe") or {}).get("validation_fraction")
    )


def load_measurements(path: Path | None = None) -> list[dict[str, Any]]:
    path = path or MEASUREMENTS
    return json.loads(path.read_text()) if path.exists() else []


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(v: Any) -> Any:
        return round(float(v), 12) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return all(norm(a.get(k)) == norm(b.get(k)) for k in {*a, *b})


def measurement_for(meta: dict[str, Any], measurements: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The committed measurement of exactly this run's proxy, or None."""
    key = run_proxy_key(meta)
    found = [m for m in (load_measurements() if measurements is None else measurements) if _same(m["proxy"], key)]
    return found[-1] if found else None


def record_measurement(entry: dict[str, Any], path: Path | None = None) -> None:
    """Add or replace (same proxy) one measurement in the committed file."""
    path = path or MEASUREMENTS
    kept = [m for m in load_measurements(path) if not _same(m["proxy"], entry["proxy"])]
    path.write_text(json.dumps([*kept, entry], indent=1) + "\n")


def describe(entry: dict[str, Any] | None) -> str:
    """One line for the report's header."""
    if entry is None:
        return (
            "not measured for this proxy: the benchmark in experiments/proxy_fidelity/ measures how well a "
            "proxy budget ranks architectures like a 5× longer one"
        )
    parts = []
    if entry.get("kendall_tau_b") is not None:
        lo, hi = entry["tau_ci90"]
        anchors = entry.get("reference_anchors", entry["anchors"])
        seeds = entry.get("reference_seeds")
        parts.append(
            f"Kendall τ-b {entry['kendall_tau_b']:.2f} (90 % CI {lo:.2f}–{hi:.2f}) against a "
            f"{entry['reference_epochs']}-epoch reference over {anchors} anchors"
            + (f" ({seeds} reference seed{'s' if seeds != 1 else ''})" if seeds else "")
        )
    else:
        parts.append(f"agreement with a {entry.get('reference_epochs', '5×')}-epoch reference not measured yet")
    if entry.get("proxy_seed_tau") is not None:
        parts.append(
            f"seed-to-seed τ-b {entry['proxy_seed_tau']:.2f} over {entry['anchors']} anchors "
            f"({entry['proxy_seeds']} seeds)"
        )
    return "; ".join(parts) + f" ({entry['readme']}, {entry['measured']})"


def readme_path(entry: dict[str, Any] | None) -> Path | None:
    """The benchmark README a measurement (or, for None, the benchmark itself) refers to, when this installation
    runs from a checkout that has it (an editable install); None for an installed wheel."""
    path = _REPO / (entry or {}).get("readme", BENCHMARK_README)
    return path if path.is_file() else None
