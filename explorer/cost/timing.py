"""Latency measurement: pinned threads, the wall/thread/paired clocks and their reference model, LatencyStats.

Latency is the median of repeated forward passes after warm-up, with the thread count pinned and the noise (IQR,
coefficient of variation) reported; a noisy measurement is repeated a bounded number of rounds. On ``cuda`` the
timing uses CUDA events around a synchronised stream, optionally under bf16/fp16 autocast and channels-last.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from explorer.arch import Arch
from explorer.cost.flops import eval_mode
from explorer.cost.paths import default_table_path

DEVICES = ("cpu", "cuda")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NOISY_CV = 0.05  # a latency whose runs vary more than this (std / mean) is flagged and re-measured


@contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True)
class LatencyStats:
    """A latency measurement with its own noise: median and IQR of the runs (ms), their coefficient of variation
    (std / mean), how many rounds it took, and whether it is still ``noisy`` (CV above the threshold) at the end."""

    median_ms: float
    iqr_ms: float
    cv: float
    runs: int
    rounds: int
    noisy: bool
    device: str
    threads: int | None
    batch: int
    precision: str = "fp32"
    channels_last: bool = False
    clock: str = "wall"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(times: list[float]) -> tuple[float, float, float]:
    """Median, inter-quartile range and coefficient of variation of run times."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    mean = statistics.fmean(times)
    cv = statistics.stdev(times) / mean if len(times) > 1 and mean > 0 else 0.0
    return statistics.median(times), quartiles[2] - quartiles[0], cv


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time, "paired": time.perf_counter, "min": time.thread_time}
# clock="min": the fastest of several rounds spread over time (thread CPU time with one thread, wall time with
# more). The host's slow spells last about a second and only ever add time, so the fastest round is the machine's
# quiet figure; rounds are added until the two fastest agree within ``max_cv``.
MIN_ROUNDS = 3
MIN_MAX_ROUNDS = 8
MIN_PAUSE_S = 0.25
# The CPU clock used unless one is named: on the shared machines searches run on (and with concurrent trials) plain
# wall time varies 15-30 % between rounds; paired timing 3-5 % (experiments/cost_benchmark).
DEFAULT_CPU_CLOCK = "paired"

# The yardstick of clock="paired": a fixed small model of the tiny presets. Its speed tracks the host's slow spells
# (cache and memory-bandwidth contention from other tenants: +50 % for seconds at a time on the shared VMs we
# measured) the way the search space's models do, which a compute-bound conv kernel does not.
REFERENCE_PRESET = "posmlp_tiny"
_REFERENCE: dict[str, tuple[nn.Module, torch.Tensor]] = {}


def reference_call() -> Callable[[], Any]:
    """One batch-1 inference forward of the ``REFERENCE_PRESET`` model (built once per process, fixed seed)."""
    if REFERENCE_PRESET not in _REFERENCE:
        from explorer.models import build, preset

        arch = preset(REFERENCE_PRESET)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            _REFERENCE[REFERENCE_PRESET] = (build(arch).eval(), example_input(arch))
    model, x = _REFERENCE[REFERENCE_PRESET]

    def run() -> None:
        # always fp32 inference, as when its quiet latency was measured, even inside a caller's bf16 autocast
        with torch.inference_mode(), torch.autocast("cpu", enabled=False):
            model(x)

    return run


def reference_speed_path() -> Path:
    """Where the reference's quiet-machine latency is kept, next to the CPU latency table."""
    return default_table_path("cpu").with_name("reference-cpu.json")


def _cpu_clock() -> str:
    """The clock a CPU measurement reads at the current thread count: the thread's CPU time with one thread (being
    preempted by other processes adds none to it), wall time with more (the thread's own time misses the others')."""
    return "thread" if torch.get_num_threads() == 1 else "wall"


def quiet_ms(
    fn: Callable[[], Any], threads: int = 1, rounds: int = 20, repeats: int = 10, pause_s: float = 0.1
) -> float:
    """The latency of ``fn`` with the host at its fastest: the minimum over ``rounds`` of the round medians of
    ``repeats`` calls (the thread's CPU time with one thread, wall time with more), rounds ``pause_s`` apart.
    Interference only ever adds time, so the minimum is the repeatable figure (as ``timeit`` advises)."""
    with pinned_threads(threads):
        for _ in range(3):
            fn()
        clock = _cpu_clock()
        medians = []
        for _ in range(rounds):  # spread out: the host's slow spells last seconds
            medians.append(statistics.median(_time_cpu(fn, repeats, clock)))
            time.sleep(pause_s)
        return min(medians)


def measure_reference_ms(threads: int = 1, rounds: int = 20, repeats: int = 10, pause_s: float = 0.1) -> float:
    """The reference's quiet latency (``quiet_ms``; 20 rounds spread over ~2 s)."""
    return quiet_ms(reference_call(), threads, rounds, repeats, pause_s)


@functools.cache  # the reference is built once per process
def reference_digest() -> str:
    """A digest of the reference model as built here (its spec and every weight): the paired clock's yardstick
    changes when the model code, its initialisation or the preset does, and a kept speed of another yardstick
    would scale every figure wrongly."""
    reference_call()
    model, x = _REFERENCE[REFERENCE_PRESET]
    digest = hashlib.sha1(model.arch.content_hash.encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    digest.update(x.numpy().tobytes())
    return digest.hexdigest()[:12]


def reference_key(threads: int) -> str:
    """What a kept reference speed belongs to: the host (nodes of a cluster may share a home directory), the
    threads, the torch version and the reference model itself."""
    return (
        f"{REFERENCE_PRESET}#{reference_digest()}/host={socket.gethostname()}/threads={threads}"
        f"/torch={torch.__version__}"
    )


def reference_ms(threads: int = 1, remeasure: bool = False) -> float:
    """The reference's latency on this machine at ``threads``: measured once (``measure_reference_ms``) and kept in
    ``reference_speed_path()`` for later processes, under ``reference_key``."""
    path = reference_speed_path()
    key = reference_key(threads)
    try:
        known = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        known = {}  # a damaged file is measured again and rewritten
    if remeasure or key not in known:
        known[key] = round(measure_reference_ms(threads), 5)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(path)  # atomic: concurrent trials never read half a file
    return float(known[key])


def _time_cpu(fn: Callable[[], Any], repeats: int, clock: str = "wall") -> list[float]:
    """Wall time per call, or with ``clock="thread"`` the CPU time of the calling thread: with one torch thread
    every op runs on it, and that time does not grow when other processes preempt us on a shared machine.

    ``clock="paired"`` times every call right after a call of the reference model and returns (call / reference) ×
    the reference's quiet-machine latency (``reference_ms``): a slow spell of the host slows both calls of a pair
    alike, so the ratio stays put where wall time jumps (round-to-round CV 2.5-4 % against 15-39 % for wall time in
    `experiments/cost_benchmark`). The figure is in milliseconds of this machine when it is quiet."""
    if clock == "paired":
        return _time_paired(fn, repeats)
    now = CLOCKS[clock]
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append((now() - start) * 1e3)
    return times


PAIR_MAX_CALLS = 1000  # reference calls in one half of a pair (about 3 s at one thread)


def _time_paired(fn: Callable[[], Any], repeats: int) -> list[float]:
    threads = torch.get_num_threads()
    ref_ms = reference_ms(threads)
    # With one thread both halves of a pair are timed in the thread's CPU time, so that being preempted (a busy
    # machine runs more processes than cores) does not land on one half only; the ratio then cancels what is left,
    # the host's slow spells. With several threads only wall time sees their work.
    now = CLOCKS[_cpu_clock()]
    ref = reference_call()
    calls = 1
    times = []
    for i in range(repeats + 1):
        ref()  # untimed: after a larger model the reference's weights are out of cache, its quiet figure is warm
        t0 = now()
        for _ in range(calls):
            ref()
        t1 = now()
        fn()
        t2 = now()
        ratio = (t2 - t1) / max((t1 - t0) / calls, 1e-9)
        if i:  # the first pair only sizes the reference half
            times.append(ratio * ref_ms)
        # The reference half lasts as long as the model's call: the host's speed drifts within a second, and a 3 ms
        # reference call samples one instant of it where a 1 s model call averages over many; with unequal halves
        # a 1 s model read 30-40 % fast (experiments/cost_benchmark/latency_ladder.py).
        calls = min(max(round(ratio), 1), PAIR_MAX_CALLS)
    return times


# Where the paired clock is validated (experiments/cost_benchmark/latency_ladder.py, quiet machine): one torch
# thread, and models up to 256 reference calls long (the reference run k times read k x its figure within 2.3 %
# for k = 1-256). Outside that band ``latency_stats`` times with clock="min" and says so in ``LatencyStats.clock``.
# With 2 threads the synthetic steps passed too (within 4.1 %), but real models of 0.2-2 s read 0.70-1.20 of their
# quiet figure, mostly fast: their ops use both cores where the tiny reference's barely do, so the host's
# contention on the second core changes their ratio.
PAIRED_MAX_THREADS = 1
PAIRED_MAX_RATIO = 256.0


def paired_or_fallback(fn: Callable[[], Any]) -> str:
    """``"paired"`` when ``fn`` (warm) lies in the paired clock's validated band at the current thread count, else
    ``"min"``: one timed call against the reference's quiet figure decides."""
    threads = torch.get_num_threads()
    if threads > PAIRED_MAX_THREADS:
        return "min"
    now = CLOCKS[_cpu_clock()]
    fn()
    start = now()
    fn()
    ratio = (now() - start) * 1e3 / reference_ms(threads)
    return "paired" if ratio <= PAIRED_MAX_RATIO else "min"


def _time_fastest_round(fn: Callable[[], Any], repeats: int, max_cv: float) -> tuple[list[float], int]:
    """The runs of the fastest of at least ``MIN_ROUNDS`` rounds of ``repeats`` calls, ``MIN_PAUSE_S`` apart;
    rounds are added (up to ``MIN_MAX_ROUNDS``) while the two fastest round medians differ by more than ``max_cv``
    (one fast round alone could be luck). Returns (that round's times, rounds)."""
    clock = _cpu_clock()
    runs: list[list[float]] = []
    while True:
        runs.append(_time_cpu(fn, repeats, clock))
        medians = sorted(statistics.median(r) for r in runs)
        if len(runs) >= MIN_ROUNDS and (medians[1] <= medians[0] * (1 + max_cv) or len(runs) >= MIN_MAX_ROUNDS):
            return min(runs, key=statistics.median), len(runs)
        time.sleep(MIN_PAUSE_S)


def resolve_clock(device: str, clock: str | None) -> str:
    """The clock a measurement on ``device`` uses: ``clock``, or the device's default (paired on cpu, CUDA events
    on cuda, recorded as wall). A clock the device cannot use is a ValueError naming both."""
    clock = clock or (DEFAULT_CPU_CLOCK if device == "cpu" else "wall")
    if clock not in CLOCKS:
        raise ValueError(f"clock: expected one of {', '.join(CLOCKS)}, got {clock!r}")
    if device == "cuda" and clock != "wall":
        raise ValueError(f"clock {clock!r} is for the cpu; on cuda the timing uses CUDA events")
    return clock


def _time_cuda(fn: Callable[[], Any], repeats: int, clock: str = "wall") -> list[float]:
    """CUDA events around each call; the stream is synchronised before the first and after every call, so a run's
    time is the GPU time of that forward pass alone."""
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def time_callable(
    fn: Callable[[], Any],
    device: str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
    max_cv: float = NOISY_CV,
    max_rounds: int = 3,
    clock: str | None = None,
) -> tuple[list[float], int]:
    """Run times (ms) of ``fn`` after ``warmup`` calls. While their CV exceeds ``max_cv``, another round of
    ``repeats`` runs is added, up to ``max_rounds`` rounds in all; returns (times, rounds). ``clock`` (cpu only):
    ``paired`` (the default), ``wall`` or ``thread`` (see ``_time_cpu``)."""
    clock = resolve_clock(device, clock)
    timer = _time_cuda if device == "cuda" else _time_cpu
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    if clock == "min":
        return _time_fastest_round(fn, repeats, max_cv)
    times = timer(fn, repeats, clock)
    rounds = 1
    while rounds < max_rounds and len(times) > 1 and summary(times)[2] > max_cv:
        times += timer(fn, repeats, clock)
        rounds += 1
    return times, rounds


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': no CUDA device is available to this torch build/process")


def to_channels_last(model: nn.Module) -> nn.Module:
    """Conv weights to channels-last (5-D: channels_last_3d, 4-D: channels_last); ``Module.to(memory_format=)``
    would fail on a model mixing Conv2d and Conv3d."""
    for p in model.parameters():
        if p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
        elif p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
    return model


def _prepare_input(x: torch.Tensor, device: str, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last_3d) if channels_last and x.dim() == 5 else x


def latency_stats(
    model: nn.Module,
    inputs: torch.Tensor,
    device: str = "cpu",
    threads: int | None = 1,
    warmup: int = 3,
    repeats: int = 10,
    precision: str = "fp32",
    channels_last: bool = False,
    max_cv: float = NOISY_CV,
    max_rounds: int = 3,
    clock: str | None = None,
) -> LatencyStats:
    """Forward latency of ``model`` on ``inputs`` (eval, inference mode). ``threads`` pins torch's intra-op
    threads (CPU; None leaves them). ``precision`` 'bf16'/'fp16' runs under autocast on cuda (bf16 also on cpu).
    ``clock="thread"`` (cpu, 1 thread) times the thread's CPU time instead of wall time, robust to a loaded
    machine; ``clock="paired"`` (cpu, the default there) times each run against the reference model (see
    ``_time_cpu``), robust to the host's slow spells, and reports milliseconds of this machine when quiet. By
    default (``clock=None``) a model outside the paired clock's validated band is timed with ``clock="min"``
    instead (``paired_or_fallback``); ``LatencyStats.clock`` names the clock used. The model is moved to ``device``
    and stays there."""
    check_device(device)
    default_clock = clock is None
    clock = resolve_clock(device, clock)
    if precision != "fp32" and precision not in AMP_DTYPES:
        raise ValueError(f"precision: expected fp32, bf16 or fp16, got {precision!r}")
    model.to(device)
    if channels_last:
        to_channels_last(model)
    x = _prepare_input(inputs, device, channels_last)
    amp = torch.autocast(device_type=device, dtype=AMP_DTYPES[precision]) if precision != "fp32" else nullcontext()
    threads_ctx = pinned_threads(threads) if threads else nullcontext()
    with eval_mode(model), threads_ctx, torch.inference_mode(), amp:
        if default_clock and clock == "paired":  # a clock asked for by name is kept
            clock = paired_or_fallback(lambda: model(x))
        times, rounds = time_callable(lambda: model(x), device, warmup, repeats, max_cv, max_rounds, clock)
    median, iqr, cv = summary(times)
    return LatencyStats(
        median,
        iqr,
        cv,
        len(times),
        rounds,
        cv > max_cv,
        device,
        threads if device == "cpu" else None,
        x.shape[0],
        precision,
        channels_last,
        clock if device == "cpu" else "cuda events",
    )


def measure_latency(
    model: nn.Module, inputs: torch.Tensor, threads: int = 1, warmup: int = 3, repeats: int = 10
) -> tuple[float, float]:
    """Median and inter-quartile range (ms) of ``repeats`` forward passes after ``warmup`` on the CPU."""
    stats = latency_stats(model, inputs, "cpu", threads, warmup, repeats, max_rounds=1)
    return stats.median_ms, stats.iqr_ms


def example_input(arch: Arch, batch: int = 1) -> torch.Tensor:
    i = arch.input
    return torch.randn(batch, i.in_chans, i.frames, i.resolution, i.resolution)


def throughput(
    model: nn.Module,
    arch: Arch,
    device: str = "cpu",
    batch: int = 16,
    threads: int | None = 1,
    repeats: int = 5,
    precision: str = "fp32",
    channels_last: bool = False,
) -> float:
    """Clips per second of batched inference: ``batch`` / median latency of a batch-``batch`` forward pass."""
    stats = latency_stats(
        model,
        example_input(arch, batch),
        device,
        threads,
        warmup=1,
        repeats=repeats,
        precision=precision,
        channels_last=channels_last,
    )
    return batch / (stats.median_ms / 1e3)
