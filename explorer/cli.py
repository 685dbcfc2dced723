"""The ``explorer`` command. Heavy libraries (torch, Ray, fvcore) are imported inside subcommands only, so
``explorer --help`` answers at once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """examples:
  explorer search search_spaces/tiny.yaml          # 8-trial demo search on synthetic T-rev clips
  explorer search SPACE.yaml --address HOST:PORT   # on an existing Ray cluster
  explorer report reports/tiny-20261123-101500     # rebuild a run's HTML report (no Ray needed)
  explorer cost posmlp_video_72d                   # params / GFLOPs / CPU latency of a preset
  explorer cost reports/RUN/archs/HASH.json --no-latency
  explorer export reports/RUN --pareto             # the Pareto-optimal architectures as YAML specs
  explorer presets                                 # list the named presets
"""


def _add_search(sub) -> None:
    s = sub.add_parser("search", help="run a search over a YAML space and write reports/<run>/",
                       description="Run a search: Ray Tune trials proposed by Optuna, each building, costing and "
                                   "proxy-training one architecture. Ends by printing the report's path.")
    s.add_argument("space", nargs="?", help="search-space YAML file (see search_spaces/); omit with --resume")
    s.add_argument("--resume", metavar="RUN", default=None,
                   help="continue the run folder RUN (e.g. after the driver was killed): finished trials are kept, "
                        "unfinished ones run again, the search goes on to its budget")
    s.add_argument("--out", default="reports", help="folder for run folders (default: reports)")
    s.add_argument("--address", default=None,
                   help="Ray cluster address HOST:PORT (default: $RAY_ADDRESS, else a local in-process Ray)")
    s.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs for a local Ray (default: concurrency x cpus_per_trial, at most the machine's)")
    s.add_argument("--concurrency", type=int, default=None, help="trials at once (default: the space's budget)")
    s.add_argument("--cpus-per-trial", type=int, default=None, help="CPUs (and torch threads) per trial")
    s.add_argument("--gpus-per-trial", type=float, default=None,
                   help="GPUs per trial; fractions share a GPU, e.g. 0.25 runs four trials on one")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="rebuild the HTML report of a run folder (no Ray needed)")
    r.add_argument("run", help="run folder, e.g. reports/tiny-20261123-101500")


def _add_cost(sub) -> None:
    c = sub.add_parser("cost", help="params, fvcore GFLOPs and CPU latency of an Arch file or a preset")
    c.add_argument("arch", help="a preset name (see `explorer presets`) or an Arch .json/.yaml file")
    c.add_argument("--threads", type=int, default=1, help="torch threads for latency (default 1)")
    c.add_argument("--repeats", type=int, default=10, help="timed forward passes (default 10)")
    c.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    c.add_argument("--json", action="store_true", help="print JSON")


def _add_export(sub) -> None:
    e = sub.add_parser("export", help="write a run's architectures (the Pareto-optimal ones with --pareto) as specs",
                       description="Write architectures of a run folder as Arch specs that explorer.models.build "
                                   "(and `explorer cost`) load, to train them at full scale.")
    e.add_argument("run", help="run folder, e.g. reports/tiny-20261123-101500")
    e.add_argument("--pareto", action="store_true",
                   help="only the trials on the Pareto front over the run's objectives (default: every complete trial)")
    e.add_argument("--format", choices=("yaml", "json"), default="yaml", help="file format (default yaml)")
    e.add_argument("--out", default=None, help="output folder (default: <run>/export)")


def _add_presets(sub) -> None:
    sub.add_parser("presets", help="list named architecture presets")


SUBCOMMANDS = [_add_search, _add_report, _add_cost, _add_export, _add_presets]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="explorer",
        description="Design-space explorer for efficient video backbones: sample architectures from a YAML "
                    "space, train small proxies with Ray Tune + Optuna, chart speed-accuracy Pareto fronts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:  # each subcommand declares its own arguments in its _add_<command>
        add(sub)
    return p


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_search(args: argparse.Namespace) -> int:
    import os

    from explorer.space import SpaceError, load_space

    if args.resume:
        if args.space:
            return _fail("give either a space file or --resume RUN (a run folder keeps its space)")
        if not (Path(args.resume) / "run.json").exists():
            return _fail(f"{args.resume}: not a run folder (no run.json)")
    elif not args.space:
        return _fail("a search-space YAML file is required (or --resume RUN)")
    else:
        try:
            load_space(args.space)  # validate before any heavy start-up
        except SpaceError as err:
            return _fail(str(err))
    from explorer.search import run_search

    address = args.address or os.environ.get("RAY_ADDRESS")
    report = run_search(args.space, out_root=args.out, address=address, num_cpus=args.num_cpus,
                        progress=not args.no_progress, run_dir=args.resume, resume=bool(args.resume),
                        budget={"concurrency": args.concurrency, "cpus_per_trial": args.cpus_per_trial,
                                "gpus_per_trial": args.gpus_per_trial})
    print(f"report: {report}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if not (run / "run.json").exists():
        return _fail(f"{run}: not a run folder (no run.json)")
    from explorer.report import write_report

    print(f"report: {write_report(run)}")
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


def cmd_cost(args: argparse.Namespace) -> int:
    from explorer.arch import ArchError

    try:
        arch = _load_arch(args.arch)
    except (ArchError, FileNotFoundError) as err:
        return _fail(str(err))
    from explorer.cost import measure

    cost = measure(arch, latency=not args.no_latency, threads=args.threads, repeats=args.repeats)
    if args.json:
        print(json.dumps({"arch": arch.content_hash, **cost.to_dict()}, indent=2))
        return 0
    i = arch.input
    print(f"arch      {arch.content_hash}  {arch.summary()}")
    print(f"input     1x{i.in_chans}x{i.frames}x{i.resolution}x{i.resolution}, {i.num_classes} classes")
    print(f"params    {cost.params:,} ({cost.params_m:.3f} M)")
    print(f"GFLOPs    {cost.gflops:.4f}  (fvcore: 1 multiply-accumulate = 1 FLOP)")
    if cost.latency_ms is not None:
        print(f"latency   {cost.latency_ms:.2f} ms median (IQR {cost.latency_iqr_ms:.2f} ms), batch 1, cpu, "
              f"{cost.threads} thread(s), {args.repeats} runs after warm-up")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if not (run / "run.json").exists():
        return _fail(f"{run}: not a run folder (no run.json)")
    from explorer.analysis import front_mask, load_run_meta, load_trials
    from explorer.arch import Arch

    df = load_trials(run)
    keep = (df["status"] == "COMPLETE").to_numpy(dtype=bool, copy=True)
    if args.pareto:
        keep = keep & front_mask(df, load_run_meta(run)["objectives"])
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


HANDLERS = {"search": cmd_search, "report": cmd_report, "cost": cmd_cost, "export": cmd_export,
            "presets": cmd_presets}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return HANDLERS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
