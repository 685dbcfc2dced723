"""The commands about architectures and their cost: ``cost`` (and its calibration), ``export``, ``presets``,
``inspect``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.cli.common import fail
from explorer.metrics import DEFAULT_LATENCY


def load_arch(name: str):
    from explorer.arch import Arch, ArchError
    from explorer.models import preset, preset_names, validate_arch

    if name in preset_names():
        return preset(name)
    path = Path(name)
    if not path.exists():
        raise FileNotFoundError(f"{name}: neither a preset ({', '.join(preset_names())}) nor a file")
    try:
        return validate_arch(Arch.from_file(path))  # mixer names and options too, before any building
    except ArchError as err:
        raise ArchError(err.path, err.message, err.source or str(path)) from None


def sample_archs(space_path: str, count: int, seed: int) -> list:
    """``count`` buildable architectures sampled at random (Optuna RandomSampler) from a space file."""
    import optuna

    from explorer.arch import ArchError
    from explorer.logs import optuna_warnings_only
    from explorer.space import load_space, sample_arch

    space = load_space(space_path)
    archs = []
    with optuna_warnings_only():  # the benchmarks call this too: leave their Optuna verbosity as it was
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        for _ in range(count * 20):
            if len(archs) == count:
                break
            try:
                archs.append(sample_arch(space, study.ask()))
            except ArchError:
                continue  # an illegal combination: the search skips it too
    return archs


def cmd_cost_calibrate(args: argparse.Namespace) -> int:
    from explorer.space import SpaceError

    try:
        archs = sample_archs(args.space, args.archs, args.seed)
    except (SpaceError, FileNotFoundError) as err:
        return fail(str(err))
    from explorer.cost import check_device, resolve_clock
    from explorer.cost.predictor import LatencyTable, calibrate, default_table_path

    try:
        check_device(args.device)
        resolve_clock(args.device, args.clock)
    except ValueError as err:
        return fail(str(err))
    out = Path(args.out) if args.out else default_table_path(args.device)
    try:
        table = LatencyTable.load(out, args.device)
    except ValueError as err:
        return fail(str(err))
    table = calibrate(
        archs,
        args.device,
        table,
        threads=args.threads,
        repeats=max(args.repeats, 5),
        clock=args.clock,
        progress=lambda i, n, new: print(f"  arch {i}/{n}: {new} new unit(s)", file=sys.stderr),
    )
    print(
        f"latency table {table.path}: {len(table.entries)} units, scale {table.scale:.3f}, device "
        f"{table.device}, {table.threads} thread(s)"
    )
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    if args.arch == "calibrate":
        return cmd_cost_calibrate(args)
    from explorer.arch import ArchError

    try:
        arch = load_arch(args.arch)
    except (ArchError, FileNotFoundError) as err:
        return fail(str(err))
    from explorer.cost import check_device, cost_report, resolve_clock

    try:
        check_device(args.device)
        resolve_clock(args.device, args.clock)
        table = None
        if args.table:
            from explorer.cost.predictor import LatencyTable

            table = LatencyTable.load(args.table, args.device)
    except ValueError as err:
        return fail(str(err))
    rep = cost_report(
        arch,
        latency=not args.no_latency,
        device=args.device,
        threads=args.threads,
        repeats=args.repeats,
        precision=args.precision,
        channels_last=args.channels_last,
        elementwise=args.elementwise,
        throughput_batch=args.throughput,
        memory=args.memory,
        predict=args.predict,
        table=table,
        clock=args.clock,
    )
    lat = rep.latency
    if args.json:
        print(
            json.dumps(
                {
                    **rep.to_dict(),
                    "gflops": rep.flops.gflops,
                    "latency_ms": lat.median_ms if lat else None,
                    "latency_iqr_ms": lat.iqr_ms if lat else None,
                    "threads": lat.threads if lat else None,
                    "device": args.device,
                },
                indent=2,
            )
        )
        return 0
    i = arch.input
    print(f"arch      {arch.content_hash}  {arch.summary()}")
    print(f"input     1x{i.in_chans}x{i.frames}x{i.resolution}x{i.resolution}, {i.num_classes} classes")
    print(f"params    {rep.params:,} ({rep.params / 1e6:.3f} M)")
    print(f"GFLOPs    {rep.flops.gflops:.4f}  (fvcore: 1 multiply-accumulate = 1 FLOP)")
    if rep.flops.elementwise is not None:
        print(f"          + {rep.flops.elementwise / 1e9:.4f} element-wise GFLOPs (not in the figure above)")
    print(f"{'part':<14}{'params':>12}{'GFLOPs':>10}")
    for part in dict.fromkeys([*rep.params_by_part, *rep.flops.by_part]):
        print(f"{part:<14}{rep.params_by_part.get(part, 0):>12,}{rep.flops.by_part.get(part, 0) / 1e9:>10.4f}")
    top = ", ".join(f"{op} {flops / 1e9:.4f}" for op, flops in rep.flops.top_operators())
    print(f"operators {top}")
    if lat is not None:
        noise = f"CV {lat.cv:.1%}" + (" — NOISY, repeated; treat with care" if lat.noisy else "")
        print(
            f"latency   {lat.median_ms:.2f} ms median (IQR {lat.iqr_ms:.2f} ms, {noise}), batch 1, "
            f"{lat.device}, {args.threads} thread(s), {lat.runs} runs after warm-up"
        )
        if lat.device == "cpu":
            print(f"          {clock_sentence(lat, args.threads, asked=args.clock)}")
    if rep.predicted_latency_ms is not None:
        print(f"predicted {rep.predicted_latency_ms:.2f} ms (lookup table, {args.device})")
    if rep.throughput is not None:
        print(f"throughput {rep.throughput:.1f} clips/s at batch {rep.throughput_batch}")
    if rep.memory is not None:
        m = rep.memory
        print(f"memory    {m.inference_mb:.1f} MB inference, {m.train_mb:.1f} MB training step (batch 1; {m.method})")
    return 0


def clock_sentence(lat, threads: int, asked: str | None) -> str:
    """Which clock produced a CPU latency figure, and why when the default fell back."""
    from explorer.cost import REFERENCE_PRESET, reference_ms
    from explorer.cost.timing import PAIRED_MAX_RATIO, PAIRED_MAX_THREADS

    if lat.clock == "paired":
        return (
            f"paired clock: each run timed right after {REFERENCE_PRESET} runs as long, scaled to its "
            f"quiet-machine {reference_ms(threads):.2f} ms"
        )
    if lat.clock == "min":
        why = (
            ""
            if asked == "min"
            else (
                f" (the paired clock is validated at up to {PAIRED_MAX_THREADS} thread(s) and for runs up to "
                f"{PAIRED_MAX_RATIO:g} {REFERENCE_PRESET} runs long; this measurement is outside that)"
            )
        )
        return f"min clock: the fastest of {lat.rounds} rounds a moment apart{why}"
    return f"{lat.clock} clock"


def cmd_export(args: argparse.Namespace) -> int:
    run = Path(args.run)
    from explorer.analysis import RunFolderError, front_mask, load_run_meta, load_trials
    from explorer.arch import Arch

    try:
        meta = load_run_meta(run)
        df = load_trials(run)
    except RunFolderError as err:
        return fail(str(err))
    keep = (df["status"] == "COMPLETE").to_numpy(dtype=bool, copy=True)
    if args.pareto:
        keep = keep & front_mask(df, meta["objectives"])
    out = Path(args.out) if args.out else run / "export"
    out.mkdir(parents=True, exist_ok=True)
    metrics = [c for c in ("accuracy", "gflops", "params_m", DEFAULT_LATENCY) if c in df.columns]
    chosen = df[keep].drop_duplicates("arch_hash")  # a replayed duplicate is the same architecture
    for row in chosen.itertuples(index=False):
        arch = Arch.from_json(row.arch_json)
        path = out / f"{row.arch_hash}.{args.format}"
        path.write_text(arch.to_yaml() if args.format == "yaml" else arch.to_json())
        figures = ", ".join(f"{m} {getattr(row, m):.4g}" for m in metrics)
        print(f"{path}  trial {row.number}: {arch.summary()} ({figures})")
    print(f"exported {len(chosen)} architecture(s) to {out}")
    return 0


def cmd_presets(_: argparse.Namespace) -> int:
    from explorer.blocks import preset_doc
    from explorer.models import preset, preset_names

    for name in preset_names():
        print(f"{name:22s} {preset(name).summary()}")
        if preset_doc(name):
            print(f"{'':22s} {preset_doc(name)}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from explorer.space import SpaceError, check_buildable, inspect_space, load_space

    if args.samples < 1:
        return fail(f"--samples must be at least 1, got {args.samples}")
    try:
        space = load_space(args.space)
        check_buildable(space, seed=args.seed)
    except SpaceError as err:
        return fail(str(err))

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"\rcosting samples {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    for line in inspect_space(space, args.samples, args.seed, progress=None if args.no_progress else progress):
        print(line)
    return 0
