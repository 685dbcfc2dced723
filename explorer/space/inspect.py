"""The report of ``explorer inspect``: a space's size and parameters, and the costs of random samples of it."""

from __future__ import annotations

from typing import Any

from explorer.logs import optuna_warnings_only
from explorer.space.counting import space_size
from explorer.space.errors import SpaceError
from explorer.space.sampling import sample_arch
from explorer.space.schema import SearchSpace
from explorer.space.templates import param_templates


def text_histogram(values: list[float], bins: int = 8, width: int = 40, fmt: str = "{:.4f}") -> list[str]:
    """Lines ``[lo, hi)  count  ####`` of a histogram (numpy bins), bars scaled to the fullest bin."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(values, dtype=float), bins=bins)
    top = max(int(counts.max()), 1)
    return [
        f"  [{fmt.format(lo)}, {fmt.format(hi)}{']' if j == len(counts) - 1 else ')'}  {int(c):5d}  "
        f"{'#' * round(width * int(c) / top)}"
        for j, (lo, hi, c) in enumerate(zip(edges, edges[1:], counts))
    ]


@optuna_warnings_only()
def sample_costs(space: SearchSpace, samples: int, seed: int = 0, progress: Any = None) -> dict[str, Any]:
    """Params and fvcore GFLOPs of ``samples`` random architectures (no training): ``{"archs": [...],
    "gflops": [...], "params_m": [...], "invalid": {reason: count}}``; equal architectures are costed once, each
    by ``fast_costs`` (fvcore's count without its trace)."""
    import warnings

    import optuna

    from explorer.cost import fast_costs

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: dict[str, Any] = {"archs": [], "gflops": [], "params_m": [], "invalid": {}}
    cache: dict[str, tuple[float, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in range(samples):
            trial = study.ask()
            try:
                arch = sample_arch(space, trial)
                if arch.content_hash not in cache:
                    flops, params = fast_costs(arch)
                    cache[arch.content_hash] = (flops / 1e9, params / 1e6)
                gflops, params_m = cache[arch.content_hash]
                out["archs"].append(arch)
                out["gflops"].append(gflops)
                out["params_m"].append(params_m)
            except Exception as err:  # a combination the builder rejects is a finding, not a crash
                reason = f"{type(err).__name__}: {err}"
                out["invalid"][reason] = out["invalid"].get(reason, 0) + 1
            study.tell(trial, 0.0)
            if progress is not None:
                progress(n + 1, samples)
    return out


@optuna_warnings_only()
def check_buildable(space: SearchSpace, tries: int = 64, seed: int = 0) -> Any:
    """The first of up to ``tries`` random architectures of ``space`` that builds (returned), else a ``SpaceError``
    naming the reasons: a space whose literals can never build (``width: 30`` with ``groups: 4``) is a mistake in
    the file, said before a run starts, not a search of failed trials or "0 of N valid"."""
    import warnings

    import optuna

    from explorer.models import build

    tries = tries if param_templates(space) else 1  # a space of literals is one architecture
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    reasons: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(tries):
            trial = study.ask()
            try:
                arch = sample_arch(space, trial)
                build(arch)
                return arch
            except Exception as err:  # whatever the builder rejects is a reason to show
                reason = f"{type(err).__name__}: {err}"
                reasons[reason] = reasons.get(reason, 0) + 1
            study.tell(trial, 0.0)
    ranked = sorted(reasons.items(), key=lambda kv: -kv[1])
    shown = "; ".join(f"{reason} ({count}x)" for reason, count in ranked[:3])
    raise SpaceError(
        space.source,
        None,
        "",
        f"no architecture of this space builds ({tries} of {tries} random samples rejected): {shown}",
    )


def inspect_space(
    space: SearchSpace, samples: int = 300, seed: int = 0, show: int = 5, progress: Any = None
) -> list[str]:
    """The report of ``explorer inspect``: size, sampled parameters, a few architectures and the GFLOPs/params
    range of ``samples`` random ones as text histograms, with the invalid samples and their reasons."""
    size = _size_text(space)
    templates = param_templates(space)
    lines = [
        f"space        {space.name} ({space.source})",
        f"parameters   {len(templates)} sampled: {', '.join(templates)}",
        f"size         {size}",
    ]
    result = sample_costs(space, samples, seed, progress)
    archs = result["archs"]
    lines.append(
        f"samples      {len(archs)} of {samples} valid, {len({a.content_hash for a in archs})} distinct "
        f"(random sampler, seed {seed}); the first {min(show, len(archs))}:"
    )
    lines += [f"  {a.content_hash}  {a.summary()}" for a in archs[:show]]
    for key, label, fmt in (("gflops", "GFLOPs", "{:.4f}"), ("params_m", "params (M)", "{:.3f}")):
        values = result[key]
        if values:
            source = f"fvcore, input {_input_text(archs[0])}" if key == "gflops" else "trainable + frozen"
            lines.append(
                f"{label:12s} min {fmt.format(min(values))}  median {fmt.format(_median(values))}  "
                f"max {fmt.format(max(values))}  ({source})"
            )
            lines += text_histogram(values, fmt=fmt)
    limits = {"max_gflops": "gflops", "max_params_m": "params_m"}
    for name, key in limits.items():
        limit = getattr(space.constraints, name)
        if limit is not None and result[key]:
            over = sum(v > limit for v in result[key])
            lines.append(f"constraint   {name} {limit:g}: {over} of {len(result[key])} valid samples exceed it")
    invalid = sum(result["invalid"].values())
    lines.append(f"invalid      {invalid} of {samples}" + (":" if invalid else ""))
    lines += [f"  {count:4d}  {reason}" for reason, count in sorted(result["invalid"].items(), key=lambda kv: -kv[1])]
    return lines


def _size_text(space: SearchSpace) -> str:
    """Exact for a space of choices and int ranges (enumerated, up to 5,000 parameter sets), else the count of settings
    (an upper bound: two settings may build one architecture, and some may not build) or "continuous"."""
    from explorer.space.enumeration import NotEnumerable, count_architectures

    try:
        distinct, rejected, sets = count_architectures(space)
    except NotEnumerable:
        size = space_size(space)
        if size is None:
            return "continuous (a float range is sampled)"
        return f"at most {size:,} distinct architectures (counted, not enumerated)"
    except ValueError:
        return f"at most {space_size(space):,} distinct architectures (over 5,000 settings: counted, not enumerated)"
    notes = [f"{sets:,} parameter sets"] if sets != distinct + rejected or rejected else []
    if rejected:
        notes.append(f"{rejected:,} rejected by the spec")
    return f"{distinct:,} distinct architectures" + (f" ({', '.join(notes)})" if notes else "")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _input_text(arch: Any) -> str:
    i = arch.input
    return f"1x{i.in_chans}x{i.frames}x{i.resolution}x{i.resolution}"
