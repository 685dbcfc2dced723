"""Cost of a model: exact params, fvcore FLOPs (1 multiply-accumulate = 1 FLOP), latency, throughput, peak memory.

FLOPs use fvcore's convention, the one of every video paper's GFLOPs column, with handles for the work-carrying ops
fvcore leaves at 0 (``F.scaled_dot_product_attention``). Element-wise ops (add, mul, GELU, softmax, ...) are uncounted
by that convention; ``flop_breakdown(elementwise=True)`` reports them as a separate figure (one FLOP per output
element). Latency is the median of repeated forward passes after warm-up, with the thread count pinned and the noise
(IQR, coefficient of variation) reported; a noisy measurement is repeated a bounded number of rounds. On ``cuda`` the
timing uses CUDA events around a synchronised stream, optionally under bf16/fp16 autocast and channels-last.

Breakdowns name the backbone's parts: ``stem``, ``stages.N`` (stage N with the downsampling layer in front of it),
``global_tokens`` (Mobile-Former's learned token set) and ``head`` (final norm, pooling, classifier).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import weakref
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from explorer.arch import Arch

# figures `objective_metrics` can compute (the names a search space's objectives and constraints use)
METRICS = ("params_m", "gflops", "latency_ms", "predicted_latency_ms", "throughput", "peak_mem_mb")
DEVICES = ("cpu", "cuda")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
NOISY_CV = 0.05  # a latency whose runs vary more than this (std / mean) is flagged and re-measured


@dataclass(frozen=True)
class Cost:
    params: int
    gflops: float
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    threads: int | None = None
    device: str = "cpu"

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def metrics(self) -> dict[str, float]:
        """The figures a search reports as objectives."""
        out = {"params_m": self.params_m, "gflops": self.gflops}
        if self.latency_ms is not None:
            out["latency_ms"] = self.latency_ms
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "params_m": self.params_m}


# ----------------------------------------------------------------------------------------------------- params


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def part_of(name: str) -> str:
    """The backbone part a parameter/module name belongs to: ``stem``, ``stages.N`` (``downs.N`` is the
    downsampling in front of stage N, so it counts there), ``global_tokens`` or ``head``."""
    if not name:
        return "model"
    parts = name.split(".")
    if parts[0] in ("stages", "downs") and len(parts) > 1:
        return f"stages.{parts[1]}"
    if parts[0] in ("norm", "head", "head_drop"):
        return "head"
    return parts[0]


def _ordered(counts: dict[str, int | float]) -> dict[str, int | float]:
    """stem, stages.0, stages.1, ..., then the rest (global_tokens, head) — the order of the forward pass."""
    def rank(key: str) -> tuple[int, int, str]:
        if key == "stem":
            return (0, 0, key)
        if key.startswith("stages."):
            return (1, int(key.split(".")[1]), key)
        return (2 if key != "head" else 3, 0, key)
    return {k: counts[k] for k in sorted(counts, key=rank)}


def params_by_part(model: nn.Module) -> dict[str, int]:
    """Exact parameter count per backbone part (``part_of``); the values sum to ``count_params(model)``."""
    out: dict[str, int] = defaultdict(int)
    for name, p in model.named_parameters():
        out[part_of(name)] += p.numel()
    return _ordered(dict(out))


# ------------------------------------------------------------------------------------------------------ FLOPs


def _sdpa_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore counts F.scaled_dot_product_attention as 0: Q·Kᵀ and A·V are B·h·Nq·Nk·(d_qk + d_v) MACs."""
    from fvcore.nn.jit_handles import get_shape

    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    v = get_shape(inputs[2])
    batch = 1
    for s in q[:-2]:
        batch *= s
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _output_numel(inputs: list[Any], outputs: list[Any]) -> int:
    """One FLOP per output element: the 'elementwise' figure for add/mul/activations/softmax/reductions."""
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(outputs[0])
    return math.prod(shape) if shape else 1


def _input_numel(inputs: list[Any], outputs: list[Any]) -> int:
    """One FLOP per input element, for reductions (mean, sum) whose output is smaller than the work."""
    from fvcore.nn.jit_handles import get_shape

    shape = get_shape(inputs[0])
    return math.prod(shape) if shape else 1


# element-wise ops our blocks emit (uncounted by the papers' convention, so kept out of `gflops`)
ELEMENTWISE_OPS: dict[str, Callable[[list[Any], list[Any]], int]] = {
    **{f"aten::{op}": _output_numel for op in (
        "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg", "exp", "log", "sqrt", "rsqrt",
        "pow", "gelu", "gelu_", "relu", "relu_", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "silu", "silu_",
        "hardswish", "hardswish_", "hardsigmoid", "tanh", "softmax", "log_softmax", "clamp", "clamp_", "clamp_min",
        "maximum", "minimum", "where", "abs", "addcmul", "lerp")},
    **{f"aten::{op}": _input_numel for op in ("mean", "sum", "amax", "max", "norm", "linalg_vector_norm")},
}


def _analysis(model: nn.Module, inputs: Any, elementwise: bool = False):
    import warnings

    # fvcore's jit handles module scripts torch now calls deprecated: a warning users can do nothing about
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, inputs)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flops)
    if elementwise:
        analysis.set_op_handle(**ELEMENTWISE_OPS)
    analysis.unsupported_ops_warnings(False)  # element-wise ops: uncounted by convention
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def count_flops(model: nn.Module, inputs: Any) -> int:
    """fvcore FLOPs of one forward pass (model put in eval mode for the count, then restored)."""
    with _eval_mode(model), torch.no_grad():
        return int(_analysis(model, inputs).total())


@dataclass(frozen=True)
class FlopReport:
    """fvcore FLOPs of one forward pass: ``total`` (MACs, the papers' convention), ``by_part`` (stem, stages.N,
    head; sums to total), ``by_operator`` (fvcore op names, e.g. ``conv``, ``linear``, ``scaled_dot_product_attention``)
    and, when asked, ``elementwise`` (one FLOP per element of add/mul/activation/softmax outputs, not in ``total``)."""

    total: int
    by_part: dict[str, int]
    by_operator: dict[str, int]
    elementwise: int | None = None

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    def top_operators(self, n: int = 5) -> list[tuple[str, int]]:
        return sorted(self.by_operator.items(), key=lambda kv: -kv[1])[:n]


def flop_breakdown(model: nn.Module, inputs: Any, elementwise: bool = False) -> FlopReport:
    """Total, per-part and per-operator fvcore FLOPs; with ``elementwise`` also the element-wise figure (a second
    trace with the element-wise handles added, so the headline count stays the papers' convention)."""
    with _eval_mode(model), torch.no_grad():
        analysis = _analysis(model, inputs)
        by_module = analysis.by_module()
        total = int(analysis.total())
        by_operator = {k: int(v) for k, v in analysis.by_operator().items() if v}
        ew = None
        if elementwise:
            ew = int(_analysis(model, inputs, elementwise=True).total()) - total
    by_part: dict[str, int] = defaultdict(int)
    for name, flops in by_module.items():
        # top-level children only: by_module also lists every ancestor, which would count flops twice
        if name and "." not in name or (name.count(".") == 1 and name.split(".")[0] in ("stages", "downs")):
            if name in ("stages", "downs"):
                continue
            by_part[part_of(name)] += int(flops)
    parts = {k: v for k, v in _ordered(dict(by_part)).items() if v or k in ("stem", "head")}
    return FlopReport(total, parts, by_operator, ew)


# ---------------------------------------------------------------------------------------------------- latency


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


def _summary(times: list[float]) -> tuple[float, float, float]:
    """Median, inter-quartile range and coefficient of variation of run times."""
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    mean = statistics.fmean(times)
    cv = statistics.stdev(times) / mean if len(times) > 1 and mean > 0 else 0.0
    return statistics.median(times), quartiles[2] - quartiles[0], cv


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time, "paired": time.perf_counter}
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
    from explorer.latency import default_table_path

    return default_table_path("cpu").with_name("reference-cpu.json")


def measure_reference_ms(threads: int = 1, rounds: int = 20, repeats: int = 10, pause_s: float = 0.1) -> float:
    """The reference's latency with the host at its fastest: the minimum over ``rounds`` of the round medians (CPU
    time with one thread). Interference only ever adds time, so the minimum is the repeatable figure (as ``timeit``
    advises)."""
    run = reference_call()
    with pinned_threads(threads):
        for _ in range(3):
            run()
        clock = "thread" if threads == 1 else "wall"  # CPU time: being preempted by other processes adds none
        medians = []
        for _ in range(rounds):  # spread over ~2 s: the host's slow spells last seconds
            medians.append(statistics.median(_time_cpu(run, repeats, clock)))
            time.sleep(pause_s)
        return min(medians)


def reference_ms(threads: int = 1, remeasure: bool = False) -> float:
    """The reference's latency on this machine at ``threads``: measured once (``measure_reference_ms``) and kept in
    ``reference_speed_path()`` for later processes, keyed by threads and torch version."""
    path = reference_speed_path()
    key = f"{REFERENCE_PRESET}/threads={threads}/torch={torch.__version__}"
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


def _time_paired(fn: Callable[[], Any], repeats: int) -> list[float]:
    threads = torch.get_num_threads()
    ref_ms = reference_ms(threads)
    # With one thread both halves of a pair are timed in the thread's CPU time, so that being preempted (a busy
    # machine runs more processes than cores) does not land on one half only; the ratio then cancels what is left,
    # the host's slow spells. With several threads only wall time sees their work.
    now = time.thread_time if threads == 1 else time.perf_counter
    ref = reference_call()
    ref()  # the reference's caches are warm before the first pair, as the model's are after its warm-up
    times = []
    for _ in range(repeats):
        t0 = now()
        ref()
        t1 = now()
        fn()
        t2 = now()
        times.append((t2 - t1) / max(t1 - t0, 1e-9) * ref_ms)
    return times


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


def time_callable(fn: Callable[[], Any], device: str = "cpu", warmup: int = 3, repeats: int = 10,
                  max_cv: float = NOISY_CV, max_rounds: int = 3, clock: str | None = None) -> tuple[list[float], int]:
    """Run times (ms) of ``fn`` after ``warmup`` calls. While their CV exceeds ``max_cv``, another round of
    ``repeats`` runs is added, up to ``max_rounds`` rounds in all; returns (times, rounds). ``clock`` (cpu only):
    ``paired`` (the default), ``wall`` or ``thread`` (see ``_time_cpu``)."""
    clock = resolve_clock(device, clock)
    timer = _time_cuda if device == "cuda" else _time_cpu
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    times = timer(fn, repeats, clock)
    rounds = 1
    while rounds < max_rounds and len(times) > 1 and _summary(times)[2] > max_cv:
        times += timer(fn, repeats, clock)
        rounds += 1
    return times, rounds


def _check_device(device: str) -> None:
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


def latency_stats(model: nn.Module, inputs: torch.Tensor, device: str = "cpu", threads: int | None = 1,
                  warmup: int = 3, repeats: int = 10, precision: str = "fp32", channels_last: bool = False,
                  max_cv: float = NOISY_CV, max_rounds: int = 3, clock: str | None = None) -> LatencyStats:
    """Forward latency of ``model`` on ``inputs`` (eval, inference mode). ``threads`` pins torch's intra-op
    threads (CPU; None leaves them). ``precision`` 'bf16'/'fp16' runs under autocast on cuda (bf16 also on cpu).
    ``clock="thread"`` (cpu, 1 thread) times the thread's CPU time instead of wall time, robust to a loaded
    machine; ``clock="paired"`` (cpu, the default there) times each run against the reference model (see
    ``_time_cpu``), robust to the host's slow spells, and reports milliseconds of this machine when quiet. The model
    is moved to ``device`` and stays there."""
    _check_device(device)
    clock = resolve_clock(device, clock)
    if precision != "fp32" and precision not in AMP_DTYPES:
        raise ValueError(f"precision: expected fp32, bf16 or fp16, got {precision!r}")
    model.to(device)
    if channels_last:
        to_channels_last(model)
    x = _prepare_input(inputs, device, channels_last)
    amp = (torch.autocast(device_type=device, dtype=AMP_DTYPES[precision]) if precision != "fp32"
           else nullcontext())
    threads_ctx = pinned_threads(threads) if threads else nullcontext()
    with _eval_mode(model), threads_ctx, torch.inference_mode(), amp:
        times, rounds = time_callable(lambda: model(x), device, warmup, repeats, max_cv, max_rounds, clock)
    median, iqr, cv = _summary(times)
    return LatencyStats(median, iqr, cv, len(times), rounds, cv > max_cv, device,
                        threads if device == "cpu" else None, x.shape[0], precision, channels_last,
                        clock if device == "cpu" else "cuda events")


def measure_latency(model: nn.Module, inputs: torch.Tensor, threads: int = 1, warmup: int = 3,
                    repeats: int = 10) -> tuple[float, float]:
    """Median and inter-quartile range (ms) of ``repeats`` forward passes after ``warmup`` on the CPU."""
    stats = latency_stats(model, inputs, "cpu", threads, warmup, repeats, max_rounds=1)
    return stats.median_ms, stats.iqr_ms


def example_input(arch: Arch, batch: int = 1) -> torch.Tensor:
    i = arch.input
    return torch.randn(batch, i.in_chans, i.frames, i.resolution, i.resolution)


def throughput(model: nn.Module, arch: Arch, device: str = "cpu", batch: int = 16, threads: int | None = 1,
               repeats: int = 5, precision: str = "fp32", channels_last: bool = False) -> float:
    """Clips per second of batched inference: ``batch`` / median latency of a batch-``batch`` forward pass."""
    stats = latency_stats(model, example_input(arch, batch), device, threads, warmup=1, repeats=repeats,
                          precision=precision, channels_last=channels_last)
    return batch / (stats.median_ms / 1e3)


# ----------------------------------------------------------------------------------------------------- memory


class _AllocationTracker(torch.utils._python_dispatch.TorchDispatchMode):
    """Live bytes of the tensors created by the ops run under it (storages that are no op's input, i.e. not views
    of weights or inputs), freed when Python drops their storage. The CPU has no allocator statistics, so this is
    the best-effort CPU figure: it misses an op's internal scratch buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._alive: set[int] = set()

    def _free(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._alive.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils._pytree import tree_flatten

        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                  if isinstance(a, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                continue
            storage = t.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
            if nbytes == 0 or key in inputs or key in self._alive:
                continue
            self._alive.add(key)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(storage, self._free, key, nbytes)
        return out


def _state_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def _step(model: nn.Module, x: torch.Tensor, train: bool) -> None:
    """One inference forward, or one training step's forward + backward (gradients, no optimiser state)."""
    if train:
        model.train()
        model(x).float().logsumexp(dim=-1).mean().backward()
        model.zero_grad(set_to_none=True)
    else:
        with _eval_mode(model), torch.inference_mode():
            model(x)


@dataclass(frozen=True)
class MemoryStats:
    """Peak memory (MB, 2^20 bytes) of one inference forward and one training step (forward + backward), with the
    method that produced it (``method``)."""

    inference_mb: float
    train_mb: float
    batch: int
    device: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_memory(model: nn.Module, arch: Arch, device: str = "cpu", batch: int = 1) -> MemoryStats:
    """Peak memory of inference and of a training step at ``batch``. CUDA: ``torch.cuda.max_memory_allocated``
    (everything the caching allocator handed out, weights included). CPU: weights + buffers + the peak of live
    tensors created during the pass (``_AllocationTracker``; best effort, op-internal scratch is not seen)."""
    _check_device(device)
    model.to(device)
    x = example_input(arch, batch).to(device)
    was_training = model.training
    figures = []
    try:
        for train in (False, True):
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                _step(model, x, train)
                torch.cuda.synchronize()
                figures.append(torch.cuda.max_memory_allocated() / 2**20)
            else:
                tracker = _AllocationTracker()
                with tracker:
                    _step(model, x, train)
                figures.append((_state_bytes(model) + tracker.peak) / 2**20)
    finally:
        model.train(was_training)
    method = ("torch.cuda.max_memory_allocated" if device == "cuda"
              else "cpu best effort: weights + buffers + peak live tensors (dispatch-level tracker)")
    return MemoryStats(figures[0], figures[1], batch, device, method)


# ------------------------------------------------------------------------------------------- search interface


def measure(arch: Arch, model: nn.Module | None = None, latency: bool = True, threads: int = 1,
            repeats: int = 10) -> Cost:
    """Params, GFLOPs and (optionally) batch-1 CPU latency of ``arch``."""
    from explorer.models import build

    model = model if model is not None else build(arch)
    x = example_input(arch)
    flops = count_flops(model, x)
    lat = iqr = None
    if latency:
        lat, iqr = measure_latency(model, x, threads=threads, repeats=repeats)
    return Cost(count_params(model), flops / 1e9, lat, iqr, threads if latency else None, "cpu")


def predict_latency_ms(arch: Arch, device: str = "cpu", table=None, model: nn.Module | None = None,
                       threads: int = 1) -> float:
    """Batch-1 latency predicted by the per-block lookup table of ``device`` (``explorer.latency``); keys missing
    from the table are measured on demand and added to it, so this never fails for a buildable arch."""
    from explorer.latency import predict

    return predict(arch, device=device, table=table, model=model, threads=threads).total_ms


def objective_metrics(arch: Arch, model: nn.Module | None = None, names: list[str] | tuple[str, ...] = METRICS,
                      device: str = "cpu", threads: int = 1, predictor=None, repeats: int = 10,
                      batch: int = 16) -> dict[str, float]:
    """Only the requested figures among ``METRICS``: ``params_m``, ``gflops`` (fvcore, batch 1), ``latency_ms``
    (measured median, batch 1, on ``device``), ``predicted_latency_ms`` (lookup table ``predictor``, a
    ``LatencyTable``; the device's default table when None), ``throughput`` (clips/s at ``batch``) and
    ``peak_mem_mb`` (peak of one inference forward at batch 1)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"objective metrics {unknown} are unknown; expected any of {', '.join(METRICS)}")
    _check_device(device)
    from explorer.models import build

    model = model if model is not None else build(arch)
    out: dict[str, float] = {}
    if "params_m" in names:
        out["params_m"] = count_params(model) / 1e6
    if "gflops" in names:
        out["gflops"] = count_flops(model, example_input(arch)) / 1e9
    if "predicted_latency_ms" in names:
        out["predicted_latency_ms"] = predict_latency_ms(arch, device, predictor, model, threads)
    if "latency_ms" in names:
        out["latency_ms"] = latency_stats(model, example_input(arch), device, threads, repeats=repeats).median_ms
    if "throughput" in names:
        out["throughput"] = throughput(model, arch, device, batch, threads)
    if "peak_mem_mb" in names:
        out["peak_mem_mb"] = peak_memory(model, arch, device).inference_mb
    return out


@dataclass
class CostReport:
    """Everything `explorer cost` shows: params (total and per part), FLOPs breakdowns, and the optional latency,
    throughput, memory and predicted-latency figures."""

    arch_hash: str
    params: int
    params_by_part: dict[str, int]
    flops: FlopReport
    latency: LatencyStats | None = None
    throughput: float | None = None
    throughput_batch: int | None = None
    memory: MemoryStats | None = None
    predicted_latency_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch_hash, "params": self.params, "params_m": self.params / 1e6,
            "params_by_part": self.params_by_part, "gflops": self.flops.gflops,
            "flops_by_part": self.flops.by_part, "flops_by_operator": self.flops.by_operator,
            "elementwise_gflops": None if self.flops.elementwise is None else self.flops.elementwise / 1e9,
            "latency": None if self.latency is None else self.latency.to_dict(),
            "throughput_clips_s": self.throughput, "throughput_batch": self.throughput_batch,
            "memory": None if self.memory is None else self.memory.to_dict(),
            "predicted_latency_ms": self.predicted_latency_ms, **self.extra,
        }


def cost_report(arch: Arch, model: nn.Module | None = None, latency: bool = True, device: str = "cpu",
                threads: int = 1, repeats: int = 10, precision: str = "fp32", channels_last: bool = False,
                elementwise: bool = True, throughput_batch: int | None = None, memory: bool = False,
                predict: bool = False, table=None, clock: str | None = None) -> CostReport:
    """The full cost of ``arch`` (see ``CostReport``); the optional parts only when asked."""
    from explorer.models import build

    _check_device(device)
    model = model if model is not None else build(arch)
    x = example_input(arch)
    flops = flop_breakdown(model, x, elementwise=elementwise)
    report = CostReport(arch.content_hash, count_params(model), params_by_part(model), flops)
    if predict:
        report.predicted_latency_ms = predict_latency_ms(arch, device, table, model, threads)
    if latency:
        report.latency = latency_stats(model, x, device, threads, repeats=repeats, precision=precision,
                                       channels_last=channels_last, clock=clock)
    if throughput_batch:
        report.throughput = throughput(model, arch, device, throughput_batch, threads, precision=precision,
                                       channels_last=channels_last)
        report.throughput_batch = throughput_batch
    if memory:
        report.memory = peak_memory(model, arch, device)
    return report
