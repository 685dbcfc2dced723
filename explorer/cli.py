"""The ``explorer`` command. Heavy libraries (torch, Ray, fvcore) are imported inside subcommands only, so
``explorer --help`` answers at once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from explorer.logs import show_messages

EPILOG = """examples:
  explorer search search_spaces/tiny.yaml          # 8-trial demo search on synthetic T-rev clips
  explorer search SPACE.yaml --address HOST:PORT   # on an existing Ray cluster
  explorer report reports/tiny-20261123-101500     # rebuild a run's HTML report (no Ray needed)
  explorer audit reports/RUN --seeds 2             # retrain the front's best with 2 more seeds: did it hold?
  explorer cost posmlp_video_72d                   # params / GFLOPs / CPU latency of a preset
  explorer cost reports/RUN/archs/HASH.json --no-latency
  explorer export reports/RUN --pareto             # the Pareto-optimal architectures as YAML specs
  explorer presets                                 # list the named presets
"""


def _add_search(sub) -> None:
    s = sub.add_parser(
        "search",
        help="run a search over a YAML space and write reports/<run>/",
        description="Run a search: Ray Tune trials proposed by Optuna, each building, costing and "
        "proxy-training one architecture. Ends by printing the report's path.",
    )
    s.add_argument("space", nargs="?", help="search-space YAML file (see search_spaces/); omit with --resume")
    s.add_argument(
        "--resume",
        metavar="RUN",
        default=None,
        help="continue the run folder RUN (e.g. after the driver was killed): finished trials are kept, "
        "unfinished ones run again, the search goes on to its budget",
    )
    s.add_argument("--out", default="reports", help="folder for run folders (default: reports)")
    s.add_argument(
        "--address",
        default=None,
        help="Ray cluster address HOST:PORT (default: $RAY_ADDRESS, else a local in-process Ray)",
    )
    s.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs for a local Ray (default: concurrency x cpus_per_trial, at most the machine's)",
    )
    s.add_argument("--concurrency", type=int, default=None, help="trials at once (default: the space's budget)")
    s.add_argument("--cpus-per-trial", type=int, default=None, help="CPUs (and torch threads) per trial")
    s.add_argument(
        "--gpus-per-trial",
        type=float,
        default=None,
        help="GPUs per trial; fractions share a GPU, e.g. 0.25 runs four trials on one",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument(
        "--no-audit",
        action="store_true",
        help="skip the front audit the space asks for (budget.audit; `explorer audit RUN` runs it later)",
    )


def _add_ray_flags(parser) -> None:
    """Where the trainings of a command run: a cluster, or the local Ray's CPUs; and the progress bar."""
    parser.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray, or $RAY_ADDRESS)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs for the local Ray")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_audit(sub) -> None:
    a = sub.add_parser(
        "audit",
        help="retrain a finished run's best front points and a few random trials with other seeds",
        description="The front audit: the most accurate Pareto points and a few random complete trials of RUN are "
        "trained again with other training seeds (same data, same recipe; with --reference-epochs also "
        "once at a longer budget) through Ray Tune. Their rows join the trials table (role audit, not "
        "counted as search trials) and the report shows seed-noise error bars on the audited points, "
        "the Kendall tau between search and audit accuracy, and whether the front's order held. "
        "Interrupted, run it again: finished retrainings are kept. Defaults: the run's budget.audit.",
    )
    a.add_argument("run", help="a finished run folder, e.g. reports/tiny-20261123-101500")
    a.add_argument(
        "--front",
        type=int,
        default=None,
        help="most accurate Pareto points to audit (default: the run's budget.audit.front, 3)",
    )
    a.add_argument(
        "--random",
        type=int,
        default=None,
        help="other complete trials drawn at random (default: the run's budget.audit.random, 2)",
    )
    a.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="other training seeds per audited trial (default: the run's budget.audit.seeds, 1)",
    )
    a.add_argument(
        "--reference-epochs",
        type=int,
        default=None,
        help="also train each audited trial once for this many epochs, with the search's seed (default: the "
        "run's budget.audit.reference_epochs, none)",
    )
    _add_ray_flags(a)


def _add_study(sub) -> None:
    s = sub.add_parser(
        "study",
        help="a controlled factor study: one design factor compared value against value on the same bases",
        description="Train every (base, value, seed) cell of a study file (e.g. experiments/seed_studies/*.yaml: "
        "a space, one factor and its values, the number of base architectures and seeds) as Ray Tune "
        "trials with the space's recipe, and write a page with a verdict per value against the first "
        "one: better, worse or indistinguishable, with a bootstrap interval over bases and seeds. See "
        "docs/studies.md.",
    )
    s.add_argument("study", nargs="?", help="study YAML file; omit with --resume")
    s.add_argument("--resume", metavar="RUN", default=None, help="continue a stopped study in its run folder")
    s.add_argument("--out", default="reports", help="folder for run folders (default: reports)")
    _add_ray_flags(s)


def _add_report(sub) -> None:
    r = sub.add_parser(
        "report",
        help="rebuild the HTML report of a run folder, or compare several (no Ray needed)",
        description="One run: writes <run>/index.html. Several runs: one page overlaying their "
        "fronts and EDFs, written to --out (default: compare-<a>-vs-<b>.html next to "
        "the first run).",
    )
    r.add_argument("run", nargs="+", help="run folder(s), e.g. reports/tiny-20261123-101500")
    r.add_argument("--out", default=None, help="comparison page path (several runs only)")
    r.add_argument(
        "--self-contained",
        action="store_true",
        help="inline plotly.js into the page (~4.8 MB) instead of sharing ../plotly.min.js",
    )


def _add_cost(sub) -> None:
    c = sub.add_parser(
        "cost",
        help="params, fvcore GFLOPs, latency, throughput, memory of an Arch (or: calibrate the predictor)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Cost of an Arch file or a preset: params and fvcore GFLOPs (1 multiply-accumulate = 1 FLOP) "
        "per stage and per operator, batch-1 latency (median, IQR, CV), and with flags throughput, "
        "peak memory and the lookup-table predicted latency.",
        epilog="calibration:\n  explorer cost calibrate --device cpu|cuda [--space search_spaces/unified.yaml] "
        "[--out FILE] [--archs N]\n  measures every block/stem/downsampling/head unit of N architectures "
        "sampled from the space\n  into the per-device latency table used by --predict (default file: "
        "$EXPLORER_CACHE/latency/<device>.json\n  or ~/.cache/video-explorer/latency/<device>.json); "
        "units missing later are measured on demand.",
    )
    c.add_argument("arch", help="a preset name (see `explorer presets`), an Arch .json/.yaml file, or `calibrate`")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device to time on (default cpu)")
    c.add_argument("--threads", type=int, default=1, help="torch threads for latency (default 1)")
    c.add_argument("--repeats", type=int, default=10, help="timed forward passes (default 10)")
    c.add_argument(
        "--clock",
        choices=("paired", "min", "wall", "thread"),
        default=None,
        help="cpu timing (also for calibrate). Default: paired, which times each run right after runs of "
        "a reference model (posmlp_tiny) as long as the run and reports ms of this machine when "
        "quiet, repeatable on a shared or busy machine; outside where it is validated (one "
        "thread, runs up to 256 reference runs long) the default is min, the fastest of spaced "
        "rounds, and the output says which clock was used. wall: plain wall clock; thread: the "
        "thread's CPU time",
    )
    c.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    c.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="autocast dtype (cuda)")
    c.add_argument("--channels-last", action="store_true", help="channels-last weights and input (cuda)")
    c.add_argument("--throughput", type=int, default=None, metavar="BATCH", help="also clips/s at this batch")
    c.add_argument("--memory", action="store_true", help="also peak memory: inference and one training step")
    c.add_argument("--predict", action="store_true", help="also the latency predicted by the lookup table")
    c.add_argument("--elementwise", action="store_true", help="also the element-wise FLOPs (add, mul, GELU, ...)")
    c.add_argument("--table", default=None, help="latency table file (default: the device's cached table)")
    c.add_argument("--space", default="search_spaces/unified.yaml", help="calibrate: space to sample from")
    c.add_argument("--archs", type=int, default=24, help="calibrate: architectures to sample (default 24)")
    c.add_argument("--seed", type=int, default=0, help="calibrate: random-sampler seed (default 0)")
    c.add_argument("--out", default=None, help="calibrate: table file to write (default: the device's cache)")
    c.add_argument("--json", action="store_true", help="print JSON")


def _add_export(sub) -> None:
    e = sub.add_parser(
        "export",
        help="write a run's architectures (the Pareto-optimal ones with --pareto) as specs",
        description="Write architectures of a run folder as Arch specs that explorer.models.build "
        "(and `explorer cost`) load, to train them at full scale.",
    )
    e.add_argument("run", help="run folder, e.g. reports/tiny-20261123-101500")
    e.add_argument(
        "--pareto",
        action="store_true",
        help="only the trials on the Pareto front over the run's objectives (default: every complete trial)",
    )
    e.add_argument("--format", choices=("yaml", "json"), default="yaml", help="file format (default yaml)")
    e.add_argument("--out", default=None, help="output folder (default: <run>/export)")


def _add_presets(sub) -> None:
    sub.add_parser("presets", help="list named architecture presets")


def _add_inspect(sub) -> None:
    i = sub.add_parser(
        "inspect",
        help="size of a search space, a few sampled architectures, GFLOPs/params ranges",
        description="Validate a search-space YAML and describe it without training anything: the "
        "number of distinct architectures (or 'continuous'), a few samples, and text "
        "histograms of the fvcore GFLOPs and params of N random samples, with the "
        "invalid ones and why.",
    )
    i.add_argument("space", help="search-space YAML file (see search_spaces/)")
    i.add_argument("--samples", type=int, default=300, help="random architectures to cost (default 300)")
    i.add_argument("--seed", type=int, default=0, help="seed of the random sampler (default 0)")
    i.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


SUBCOMMANDS = [_add_search, _add_audit, _add_study, _add_report, _add_cost, _add_export, _add_presets, _add_inspect]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="explorer",
        description="Design-space explorer for efficient video backbones: sample architectures from a YAML "
        "space, train small proxies with Ray Tune + Optuna, chart speed-accuracy Pareto fronts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:  # each subcommand declares its own arguments in its _add_<command>
        add(sub)
    return p


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _unwritable(folder: Path) -> str | None:
    """Why run folders cannot be written under ``folder`` (None when they can): checked before Ray starts, so a
    wrong ``--out`` fails in a second instead of after the first trials."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        return f"--out {folder}: not a folder"
    # probe the nearest folder that exists, creating nothing: a space file rejected next must leave no trace
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"--out {folder}: cannot write there ({existing} is not a folder)"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as err:
        return f"--out {folder}: cannot write there ({err.strerror or err})"
    return None


def _finished_outcome(run_dir: Path) -> str | None:
    """The one-line outcome of a finished run, or None when its trials table cannot be read (the resume then runs
    as usual and rebuilds it)."""
    from explorer.analysis import load_trials, search_outcome

    try:
        outcome = search_outcome(load_trials(run_dir))[0]
    except (OSError, ValueError):  # a missing or unreadable table (pyarrow and pandas raise these)
        return None
    return f"{run_dir.resolve()}: finished already, nothing to resume ({outcome})"


def cmd_search(args: argparse.Namespace) -> int:
    import os

    from explorer.space import SpaceError, check_buildable, load_space

    if args.resume:
        if args.space:
            return _fail("give either a space file or --resume RUN (a run folder keeps its space)")
        flags = [
            f"--{name.replace('_', '-')}"
            for name in ("concurrency", "cpus_per_trial", "gpus_per_trial")
            if getattr(args, name) is not None
        ] + (["--no-audit"] if args.no_audit else [])
        if flags:  # a resumed run keeps its budget: silently ignoring the flags would look as if they applied
            return _fail(
                f"{', '.join(flags)} cannot change a resumed run (it keeps the budget in its run.json); "
                "start a new search to use them"
            )
        from explorer.analysis import RunFolderError
        from explorer.search.rundir import missing_study_reason, read_meta, stale_run_reason

        try:
            meta = read_meta(Path(args.resume))
        except RunFolderError as err:
            return _fail(str(err))
        reason = stale_run_reason(Path(args.resume), meta)
        if reason:
            return _fail(reason)
        if meta.get("state") == "finished" and (finished := _finished_outcome(Path(args.resume))):
            print(finished)  # its budget is spent: said at once instead of starting Ray for nothing
            print(f"report: {Path(args.resume).resolve() / 'index.html'}")
            return 0
        if reason := missing_study_reason(Path(args.resume)):
            return _fail(reason)
    elif not args.space:
        return _fail("a search-space YAML file is required (or --resume RUN)")
    elif reason := _unwritable(Path(args.out)):  # first: it needs no import of torch
        return _fail(reason)
    else:
        try:
            check_buildable(load_space(args.space))  # validate before any heavy start-up
        except SpaceError as err:
            return _fail(str(err))
    from explorer.search import SetupError, run_search

    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        report = run_search(
            args.space,
            out_root=args.out,
            address=address,
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            run_dir=args.resume,
            resume=bool(args.resume),
            budget={
                "concurrency": args.concurrency,
                "cpus_per_trial": args.cpus_per_trial,
                "gpus_per_trial": args.gpus_per_trial,
                "audit": False if args.no_audit else None,
            },
        )
    except SetupError as err:
        return _fail(str(err))
    from explorer.analysis import load_run_meta, load_trials, search_outcome

    meta = load_run_meta(report.parent)
    skipped = meta.get("skipped_clips") or []
    if skipped:  # said at the end, where it is seen; the report and run.json list them too
        count = meta.get("skipped_count", len(skipped))
        print(
            f"warning: {count} clip(s) of the dataset could not be read and were left out (first: "
            f"{skipped[0]['path']}: {skipped[0]['reason']}); all are listed in {report.parent / 'run.json'}",
            file=sys.stderr,
        )
    outcome, finished = search_outcome(load_trials(report.parent))
    if not finished:  # the page still shows the failures; the last line says what happened
        print(f"report: {report}")
        print(f"error: {outcome}", file=sys.stderr)
        return 1
    print(outcome)
    if line := _audit_line(report.parent):
        print(line)
    print(f"report: {report}")
    return 0


def _audit_line(run_dir: Path) -> str | None:
    """The audit's sentence for the end of a command, or None when the run has no audit rows."""
    from explorer.analysis import load_run_meta, load_trials
    from explorer.analysis.audit import load_audit, summarize_audit

    audit = load_audit(run_dir)
    if not len(audit):
        return None
    epochs = load_run_meta(run_dir).get("budget", {}).get("epochs")
    return f"audit: {summarize_audit(load_trials(run_dir), audit, epochs=epochs).sentence}"


def cmd_audit(args: argparse.Namespace) -> int:
    import os

    from explorer.analysis import RunFolderError
    from explorer.search import SetupError
    from explorer.search.driver import run_audit

    for name, least in (("front", 0), ("random", 0), ("seeds", 1), ("reference_epochs", 1)):
        value = getattr(args, name)
        if value is not None and value < least:
            return _fail(f"--{name.replace('_', '-')} {value}: expected {least} or more")
    address = args.address or os.environ.get("RAY_ADDRESS")
    try:
        report = run_audit(
            args.run,
            address=address,
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            front=args.front,
            random=args.random,
            seeds=args.seeds,
            reference_epochs=args.reference_epochs,
        )
    except (RunFolderError, SetupError) as err:
        return _fail(str(err))
    line = _audit_line(report.parent)
    print(line or "audit: nothing to audit (no complete trials)")
    print(f"report: {report}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    import os

    from explorer.analysis import RunFolderError
    from explorer.space import SpaceError

    if bool(args.study) == bool(args.resume):
        return _fail("give a study file or --resume RUN")
    if args.study:
        if reason := _unwritable(Path(args.out)):
            return _fail(reason)
        from explorer.space.study import load_study

        try:
            load_study(args.study)  # every error before Ray starts
        except SpaceError as err:
            return _fail(str(err))
    from explorer.search import SetupError
    from explorer.search.driver import run_study

    try:
        page = run_study(
            args.study,
            out_root=args.out,
            address=args.address or os.environ.get("RAY_ADDRESS"),
            num_cpus=args.num_cpus,
            progress=not args.no_progress,
            run_dir=args.resume,
            resume=bool(args.resume),
        )
    except (RunFolderError, SetupError, SpaceError) as err:
        return _fail(str(err))
    print(f"study: {page}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.run]
    if len(runs) == 1 and args.out:
        return _fail("--out is for comparisons of several runs; one run's report is <run>/index.html")
    from explorer.analysis import RunFolderError
    from explorer.report import write_comparison, write_report

    try:
        if len(runs) == 1:
            print(f"report: {write_report(runs[0], self_contained=args.self_contained)}")
        else:
            print(f"comparison: {write_comparison(runs, args.out, self_contained=args.self_contained)}")
    except (RunFolderError, ValueError) as err:  # an unreadable run, or runs that cannot share a page
        return _fail(str(err))
    return 0


def _load_arch(name: str):
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


def _sample_archs(space_path: str, count: int, seed: int) -> list:
    """``count`` buildable architectures sampled at random (Optuna RandomSampler) from a space file."""
    import optuna

    from explorer.arch import ArchError
    from explorer.space import load_space, sample_arch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
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
        archs = _sample_archs(args.space, args.archs, args.seed)
    except (SpaceError, FileNotFoundError) as err:
        return _fail(str(err))
    from explorer.cost import check_device, resolve_clock
    from explorer.cost.predictor import LatencyTable, calibrate, default_table_path

    try:
        check_device(args.device)
        resolve_clock(args.device, args.clock)
    except ValueError as err:
        return _fail(str(err))
    out = Path(args.out) if args.out else default_table_path(args.device)
    try:
        table = LatencyTable.load(out, args.device)
    except ValueError as err:
        return _fail(str(err))
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
        arch = _load_arch(args.arch)
    except (ArchError, FileNotFoundError) as err:
        return _fail(str(err))
    from explorer.cost import check_device, cost_report, resolve_clock

    try:
        check_device(args.device)
        resolve_clock(args.device, args.clock)
        table = None
        if args.table:
            from explorer.cost.predictor import LatencyTable

            table = LatencyTable.load(args.table, args.device)
    except ValueError as err:
        return _fail(str(err))
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
        return _fail(str(err))
    keep = (df["status"] == "COMPLETE").to_numpy(dtype=bool, copy=True)
    if args.pareto:
        keep = keep & front_mask(df, meta["objectives"])
    out = Path(args.out) if args.out else run / "export"
    out.mkdir(parents=True, exist_ok=True)
    metrics = [c for c in ("accuracy", "gflops", "params_m", "latency_ms") if c in df.columns]
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
        return _fail(f"--samples must be at least 1, got {args.samples}")
    try:
        space = load_space(args.space)
        check_buildable(space, seed=args.seed)
    except SpaceError as err:
        return _fail(str(err))

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            print(f"\rcosting samples {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    for line in inspect_space(space, args.samples, args.seed, progress=None if args.no_progress else progress):
        print(line)
    return 0


HANDLERS = {
    "search": cmd_search,
    "audit": cmd_audit,
    "study": cmd_study,
    "report": cmd_report,
    "cost": cmd_cost,
    "export": cmd_export,
    "presets": cmd_presets,
    "inspect": cmd_inspect,
}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    show_messages()
    if args.command is None:
        parser.print_help()
        return 0
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
