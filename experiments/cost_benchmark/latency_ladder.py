"""Latency size ladder: the paired clock against the quiet-machine figure, from the tiny presets to 63 GFLOPs.

    .venv/bin/python experiments/cost_benchmark/latency_ladder.py --threads 1 2 --out ladder.csv

Run it with nothing else running. Even then this VM's speed drifts: the same 3 ms call takes 2.0-4.2 ms of
thread CPU time from one second to the next (the host's other tenants). So every model is measured in ``--rounds``
interleaved rounds (3 for models over 0.5 s), each round timing the reference model (``posmlp_tiny``, the paired
clock's yardstick), the model itself, and the model under each pairing, one after another:

- ``quiet``: the model's repeatable figure, the minimum over the rounds of its round medians (thread CPU time with
  one thread, wall time with more): interference only adds time, but on this host the minimum of a few rounds
  still moves by 10-15 % between runs;
- ``paired``: the paired clock itself (``time_callable(clock="paired")``, 5 pairs, without the tool's fallback),
  the median over the rounds;
- ``one-call pairs``: the baseline measured in the same rounds, the paired clock as it was before this benchmark
  (one reference call per pair, whatever the model's length);
- ``min clock``: the tool's ``clock="min"`` figure, measured once after the rounds (the fastest of 3-8 spaced
  rounds of 5 runs, 3 for models over 0.5 s);
- ``ref window / cached``: the reference's minimum in the same rounds against ``reference_ms``, the quiet figure
  the paired clock multiplies by (measured afresh at the start of the run, as the tool does on first use).

The first steps are synthetic, ``reference xK``: the reference model run K times in one call, whose true figure is
exactly K x the reference's, so they check the clock across timescales against a known answer. The larger real
steps are released models with fewer frames (same blocks, smaller clip).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import sys
import time

import torch

# (preset, frames or None for the preset's own clip)
LADDER: tuple[tuple[str, int | None], ...] = (
    ("posmlp_tiny", None),
    ("focal_tiny", None),
    ("vit_tiny_tome", None),
    ("mobile_former_96m", None),
    ("mobile_former_508m", None),
    ("posmlp_video_72d", 2),
    ("video_focalnet_t", 2),
    ("posmlp_video_72d", 4),
    ("video_focalnet_t", 4),
    ("posmlp_video_72d", 8),
    ("video_focalnet_t", 8),
    ("posmlp_video_72d", 16),
)


REPEATS_OF_REFERENCE = (1, 8, 64, 256)  # the synthetic steps: the reference model run k times in one call


class RepeatedReference(torch.nn.Module):
    """The paired clock's reference model run ``k`` times per call: its true latency is exactly k × the reference's,
    whatever the host does, so it checks the clock across timescales without any other difference (the real
    models' steps also change the mix of operators)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from explorer.cost.timing import reference_call

        run = reference_call()
        for _ in range(self.k):
            run()
        return x


def ladder_arch(name: str, frames: int | None):
    from explorer.models import preset

    arch = preset(name)
    return arch if frames is None else arch.replace(input=dataclasses.replace(arch.input, frames=frames))


def one_call_pairs(fn, repeats: int) -> float:
    """The paired clock as it was before 2026-12-02 (the baseline): each pair one reference call, then one call of
    the model, whatever its length; median of (model / reference) x the reference's quiet figure."""
    from explorer.cost.timing import reference_call, reference_ms

    threads = torch.get_num_threads()
    now = time.thread_time if threads == 1 else time.perf_counter
    ref, ratios = reference_call(), []
    ref()
    for _ in range(repeats):
        t0 = now()
        ref()
        t1 = now()
        fn()
        ratios.append((now() - t1) / max(t1 - t0, 1e-9))
    return statistics.median(ratios) * reference_ms(threads)


def interleaved(model, x, threads: int, rounds: int, calls: int) -> dict[str, float]:
    """``rounds`` rounds of (reference, model, paired measurement of the model); see the module's docstring."""
    from explorer.cost.timing import _time_cpu, latency_stats, pinned_threads, reference_call, time_callable

    clock = "thread" if threads == 1 else "wall"
    ref = reference_call()
    ref_medians, model_medians, paired, baseline = [], [], [], []
    with pinned_threads(threads), torch.inference_mode():
        model(x)
        for _ in range(rounds):
            ref_medians.append(statistics.median(_time_cpu(ref, 10, clock)))
            model_medians.append(statistics.median(_time_cpu(lambda: model(x), calls, clock)))
            # the paired clock itself, without the tool's fallback to clock="min" outside its validated band
            paired.append(
                statistics.median(time_callable(lambda: model(x), "cpu", 1, 5, max_rounds=1, clock="paired")[0])
            )
            baseline.append(one_call_pairs(lambda: model(x), 5))
        fastest = latency_stats(model, x, "cpu", threads, warmup=1, repeats=3 if calls == 3 else 5, clock="min")
    return {
        "min_clock_ms": fastest.median_ms,
        "min_rounds": fastest.rounds,
        "quiet_ms": min(model_medians),
        "median_ms": statistics.median(model_medians),
        "paired_ms": statistics.median(paired),
        "one_call_pairs_ms": statistics.median(baseline),
        "ref_window_ms": min(ref_medians),
    }


def step_model(name: str, size: int | None) -> tuple[torch.nn.Module, torch.Tensor, int]:
    """The model, input and fvcore FLOPs of one step: ``reference xK`` (``size`` = K) or a preset at ``size``
    frames (None: its own clip)."""
    from explorer.cost import fast_costs
    from explorer.cost.timing import example_input
    from explorer.models import build, preset

    if name.startswith("reference"):
        return RepeatedReference(size), torch.zeros(1), size * fast_costs(preset("posmlp_tiny"))[0]
    arch = ladder_arch(name, size)
    torch.manual_seed(0)
    return build(arch).eval(), example_input(arch), fast_costs(arch)[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds per model (3 for models over 0.5 s)")
    p.add_argument("--only", nargs="*", help="preset names to keep (default: the whole ladder)")
    p.add_argument("--out", help="CSV of the rows")
    args = p.parse_args(argv)

    from explorer.cost.timing import pinned_threads, reference_ms

    rows = []
    print(
        f"{'model':<20}{'frames':>7}{'GFLOPs':>8}{'thr':>4}{'quiet ms':>10}{'median':>10}{'paired':>10}"
        f"{'paired/quiet':>13}{'ref window/cached':>19}{'min clock':>10}{'min/quiet':>10}{'1-call/q':>10}",
        flush=True,
    )
    for threads in args.threads:
        cached = reference_ms(threads, remeasure=True)
        steps = [(f"reference x{k}", k) for k in REPEATS_OF_REFERENCE] + list(LADDER)
        for name, size in steps:
            if args.only and name.split()[0] not in args.only:
                continue
            model, x, flops = step_model(name, size)
            with pinned_threads(threads), torch.inference_mode():
                one = time.perf_counter()
                model(x)
                one = time.perf_counter() - one
            big = one > 0.5
            got = interleaved(model, x, threads, 3 if big else args.rounds, 3 if big else 10)
            synthetic = name.startswith("reference")
            row = {
                "model": name,
                "frames": size if not synthetic else None,
                "gflops": round(flops / 1e9, 3),
                "threads": threads,
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in got.items()},
                "reference_ms": round(cached, 4),
                "ratio": round(got["paired_ms"] / got["quiet_ms"], 4),
                "baseline_ratio": round(got["one_call_pairs_ms"] / got["quiet_ms"], 4),
                "min_ratio": round(got["min_clock_ms"] / got["quiet_ms"], 4),
                "ref_drift": round(got["ref_window_ms"] / cached, 4),
                # the synthetic steps' true figure: k x the reference's quiet figure, the clock's own yardstick
                "paired_vs_k_reference": round(got["paired_ms"] / (size * cached), 4) if synthetic else None,
                "baseline_vs_k_reference": round(got["one_call_pairs_ms"] / (size * cached), 4) if synthetic else None,
            }
            rows.append(row)
            print(
                f"{name:<20}{str(size or ''):>7}{row['gflops']:>8.3f}{threads:>4}{got['quiet_ms']:>10.2f}"
                f"{got['median_ms']:>10.2f}{got['paired_ms']:>10.2f}{row['ratio']:>13.3f}{row['ref_drift']:>19.3f}"
                f"{got['min_clock_ms']:>10.2f}{row['min_ratio']:>10.3f}"
                f"{row['baseline_ratio']:>10.3f}"
                + (
                    f"  / (k x reference): paired {row['paired_vs_k_reference']:.3f}, one-call pairs "
                    f"{row['baseline_vs_k_reference']:.3f}"
                    if synthetic
                    else ""
                ),
                flush=True,
            )
    if args.out:
        with open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
