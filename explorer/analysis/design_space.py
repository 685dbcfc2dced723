"""Statistics over a run's design space, each architecture counted once: accuracy EDFs per choice (pycls), shares of
the Pareto front per choice, good ranges of numeric parameters, the parallel-coordinates table, and parameter
importance (Optuna's PED-ANOVA evaluator on the trials)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from explorer.analysis import (
    PARAM_PREFIX,
    STATUS_COMPLETE,
    Objective,
    ObjectiveLike,
    distinct_complete,
    front_mask,
    param_columns,
    parse_objectives,
)
from explorer.logs import optuna_warnings_only


def _complete(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The distinct COMPLETE trials with a value of ``metric`` (each architecture once)."""
    if metric not in df.columns:
        return df.iloc[:0]
    return df[distinct_complete(df) & df[metric].notna().to_numpy()]


def value_key(value: object) -> str:
    """A choice value as a label ('—' for a conditional parameter that was not sampled)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def is_numeric_param(series: pd.Series) -> bool:
    """A parameter whose sampled values are all numbers (bools excluded): it gets a good range."""
    values = series.dropna()
    return len(values) > 0 and pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def error_edfs(df: pd.DataFrame, metric: str = "accuracy", maximize: bool = True) -> pd.DataFrame:
    """Empirical distribution functions of the error of the COMPLETE trials per value of each `param.*` column.

    pycls EDF: F(e) = (1/n) Σ_i 1[e_i < e], here drawn as a step function through the sorted errors. With an
    accuracy-like (maximised) metric the error is 1 - accuracy for fractions (or 100 - accuracy above 1), else the
    metric itself. Long table: param, value, n, error (sorted within the group), edf (i/n, i = 1..n)."""
    data = _complete(df, metric)
    values = data[metric].to_numpy(dtype=float)
    scale = 100.0 if len(values) and np.nanmax(np.abs(values)) > 1.0 else 1.0
    error = scale - values if maximize else values
    parts = []
    for p in param_columns(data):
        keys = data[p].map(value_key).to_numpy()
        for key in sorted(set(keys), key=_sort_key):
            e = np.sort(error[keys == key])
            parts.append(
                pd.DataFrame(
                    {"param": p, "value": key, "n": len(e), "error": e, "edf": np.arange(1, len(e) + 1) / len(e)}
                )
            )
    if not parts:
        return pd.DataFrame(columns=["param", "value", "n", "error", "edf"])
    return pd.concat(parts, ignore_index=True)


def _sort_key(key: str) -> tuple:
    try:
        return (0, float(key), "")
    except ValueError:
        return (1, 0.0, key)


def front_shares(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> pd.DataFrame:
    """Per value of each `param.*` column: complete trials, Pareto trials (over all objectives), the value's share
    of the front (n_front / front size) and its hit rate (n_front / n). Columns: param, value, n, n_front, share,
    rate."""
    complete = distinct_complete(df)  # a replayed architecture counts once, on the front or off it
    mask = front_mask(df, objectives) & complete
    total_front = int(mask.sum())
    rows = []
    for p in param_columns(df):
        keys = df[p].map(value_key).to_numpy()
        for key in sorted(set(keys[complete]), key=_sort_key):
            sel = complete & (keys == key)
            n, n_front = int(sel.sum()), int((mask & sel).sum())
            rows.append(
                {
                    "param": p,
                    "value": key,
                    "n": n,
                    "n_front": n_front,
                    "share": n_front / total_front if total_front else 0.0,
                    "rate": n_front / n,
                }
            )
    return pd.DataFrame(rows, columns=["param", "value", "n", "n_front", "share", "rate"])


def good_ranges(
    df: pd.DataFrame,
    metric: str = "accuracy",
    maximize: bool = True,
    n_boot: int = 2000,
    sample_frac: float = 0.25,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrapped good range of every numeric `param.*` column (pycls, "Designing Network Design Spaces" §3):
    draw `sample_frac` of the COMPLETE (value, metric) pairs with replacement, keep the value of the best model,
    repeat `n_boot` times; the good range is the central `ci` interval of those values, `best` their median.

    Columns: param, lo, best, hi, n (trials used), n_values (distinct values), searched_lo, searched_hi."""
    data = _complete(df, metric)
    rng = np.random.default_rng(seed)
    rows = []
    for p in param_columns(data):
        sub = data[data[p].notna()]
        if not is_numeric_param(sub[p]) or len(sub) < 2:
            continue
        x, y = sub[p].to_numpy(dtype=float), sub[metric].to_numpy(dtype=float)
        k = max(1, int(round(sample_frac * len(x))))
        idx = rng.integers(0, len(x), size=(n_boot, k))
        pick = idx[np.arange(n_boot), (y[idx].argmax(axis=1) if maximize else y[idx].argmin(axis=1))]
        best_x = x[pick]
        lo, mid, hi = np.quantile(best_x, [(1 - ci) / 2, 0.5, (1 + ci) / 2], method="inverted_cdf")
        rows.append(
            {
                "param": p,
                "lo": float(lo),
                "best": float(mid),
                "hi": float(hi),
                "n": len(x),
                "n_values": int(len(np.unique(x))),
                "searched_lo": float(x.min()),
                "searched_hi": float(x.max()),
            }
        )
    return pd.DataFrame(rows, columns=["param", "lo", "best", "hi", "n", "n_values", "searched_lo", "searched_hi"])


def parallel_table(df: pd.DataFrame, objectives: Iterable[ObjectiveLike]) -> tuple[pd.DataFrame, dict[str, list]]:
    """The COMPLETE trials as numeric columns for parallel coordinates: each `param.*` column (categorical ones as
    codes 0..k-1, '—' for not sampled) then each objective. Returns (table with a `number` column, {column: the
    category labels of its codes} for the categorical ones)."""
    objs = parse_objectives(objectives)
    data = df[df["status"] == STATUS_COMPLETE]
    out = {"number": data["number"].to_numpy() if "number" in data.columns else np.arange(len(data))}
    labels: dict[str, list] = {}
    for p in param_columns(data):
        name = p.removeprefix(PARAM_PREFIX)
        if is_numeric_param(data[p]) and data[p].notna().all():
            out[name] = data[p].to_numpy(dtype=float)
        else:
            keys = data[p].map(value_key)
            cats = sorted(set(keys), key=_sort_key)
            labels[name] = cats
            out[name] = keys.map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
    for o in objs:
        if o.metric in data.columns:
            out[o.metric] = data[o.metric].to_numpy(dtype=float)
    return pd.DataFrame(out), labels


# ---------------------------------------------------------------------------------------------------------------
# Parameter importance (Optuna)
# ---------------------------------------------------------------------------------------------------------------

MIN_TRIALS_FOR_IMPORTANCE = 8


@dataclass(frozen=True)
class Importance:
    """Importances of the searched parameters for one objective, or why they could not be computed."""

    objective: str
    values: dict[str, float]  # param name -> importance (sums to 1), best first; empty when `reason` is set
    reason: str = ""
    source: str = ""  # "study.db" or "trials table"


def _study_from_table(df: pd.DataFrame, objs: Sequence[Objective]):
    """An in-memory Optuna study holding the COMPLETE trials of the table (params as categorical choices)."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    data = df[distinct_complete(df)].dropna(subset=[o.metric for o in objs])
    params = param_columns(data)
    choices = {p: sorted({value_key(v) for v in data[p]}, key=_sort_key) for p in params}
    with optuna_warnings_only():  # no "A new study created in memory" line per report
        study = optuna.create_study(directions=["maximize" if o.maximize else "minimize" for o in objs])
    trials = []
    for _, row in data.iterrows():
        ps = {p.removeprefix(PARAM_PREFIX): value_key(row[p]) for p in params}
        dists = {p.removeprefix(PARAM_PREFIX): CategoricalDistribution(choices[p]) for p in params}
        trials.append(
            optuna.trial.create_trial(params=ps, distributions=dists, values=[float(row[o.metric]) for o in objs])
        )
    study.add_trials(trials)
    return study


def _load_study(run_dir: Path):
    import optuna

    db = run_dir / "study.db"
    if not db.exists():
        return None
    storage = f"sqlite:///{db}"
    names = optuna.study.get_all_study_names(storage)
    if not names:
        return None
    name = run_dir.name if run_dir.name in names else names[0]
    return optuna.load_study(study_name=name, storage=storage)


def param_importances(
    df: pd.DataFrame, objectives: Iterable[ObjectiveLike], run_dir: str | Path | None = None
) -> list[Importance]:
    """PED-ANOVA importance (Watanabe et al. 2023, `optuna.importance.PedAnovaImportanceEvaluator`) of every
    searched parameter for each objective.

    Reads the Optuna study in `<run_dir>/study.db` when it holds the objective's values (the searched
    objectives); otherwise, and for metrics the study does not optimise, builds an in-memory study from the
    trials table. PED-ANOVA ranks parameters by how differently they are distributed among the top 10% trials,
    so it needs at least MIN_TRIALS_FOR_IMPORTANCE complete trials and a parameter with two values; when it can't
    be computed the Importance says why instead of failing the report. Results are cached in the run folder."""
    objs = parse_objectives(objectives)
    cache = _importance_cache(df, objs, run_dir)
    if cache is not None and cache[1] is not None:
        return cache[1]
    results = _param_importances(df, objs, run_dir)
    if cache is not None:
        try:
            cache[0].write_text(json.dumps({"key": cache[2], "results": [vars(r) for r in results]}))
        except OSError:
            pass  # a read-only run folder: no cache
    return results


_IMPORTANCE_CACHE = ".importance.json"


def _importance_cache(df: pd.DataFrame, objs: Sequence[Objective], run_dir: str | Path | None):
    """(cache path, cached results or None, key) for `<run_dir>/.importance.json`, or None without a run folder.

    The key digests the table's statuses, objective values and params, so any new or changed trial recomputes:
    rebuilding the Optuna study from a 1,000-row table costs seconds, far more than the rest of the report."""
    if run_dir is None:
        return None
    import hashlib

    cols = ["status", *[o.metric for o in objs if o.metric in df.columns], *param_columns(df)]
    digest = hashlib.sha256(pd.util.hash_pandas_object(df[cols].astype("str"), index=False).to_numpy().tobytes())
    digest.update(repr([str(o) for o in objs]).encode())
    db = Path(run_dir) / "study.db"
    digest.update(str(db.stat().st_mtime_ns if db.exists() else 0).encode())
    key = digest.hexdigest()
    path = Path(run_dir) / _IMPORTANCE_CACHE
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return path, [Importance(**r) for r in data["results"]], key
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return path, None, key


def _param_importances(df: pd.DataFrame, objs: list[Objective], run_dir: str | Path | None) -> list[Importance]:
    import warnings

    study, study_objs = None, []
    if run_dir is not None:
        try:
            study = _load_study(Path(run_dir))
        except Exception:  # noqa: BLE001 - an unreadable study.db: fall back to the table
            study = None
    if study is not None:
        study_objs = [o.metric for o in objs][: len(study.directions)]
    # study.db holds every replayed duplicate as its own trial: with any, the deduplicated table is used instead
    replay_free = int(distinct_complete(df).sum()) == int((df["status"] == STATUS_COMPLETE).sum())
    table_study = None
    results = []
    for i, o in enumerate(objs):
        data = _complete(df, o.metric)
        varied = [p for p in param_columns(data) if data[p].map(value_key).nunique() > 1]
        if len(data) < MIN_TRIALS_FOR_IMPORTANCE:
            results.append(
                Importance(
                    o.metric,
                    {},
                    f"only {len(data)} distinct complete trial(s); importance needs "
                    f"at least {MIN_TRIALS_FOR_IMPORTANCE}",
                )
            )
            continue
        if not varied:
            results.append(Importance(o.metric, {}, "every searched parameter took a single value"))
            continue
        try:
            from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

            use_db = (
                replay_free
                and study is not None
                and o.metric in study_objs
                and len([t for t in study.trials if t.values is not None]) >= MIN_TRIALS_FOR_IMPORTANCE
            )
            if use_db:
                source, target_study, idx = "study.db", study, study_objs.index(o.metric)
            else:
                if table_study is None:
                    table_study = _study_from_table(df, [x for x in objs if x.metric in df.columns])
                source, target_study = "trials table", table_study
                idx = [x.metric for x in objs if x.metric in df.columns].index(o.metric)
            sign = -1.0 if o.maximize else 1.0  # PED-ANOVA looks for LOW target values
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                imp = get_param_importances(
                    target_study,
                    evaluator=PedAnovaImportanceEvaluator(),
                    target=lambda t, j=idx, s=sign: s * t.values[j],
                )
            results.append(Importance(o.metric, {k: float(v) for k, v in imp.items()}, source=source))
        except Exception as err:  # noqa: BLE001 - explain in the report rather than fail it
            results.append(Importance(o.metric, {}, f"{type(err).__name__}: {err}"))
    return results
