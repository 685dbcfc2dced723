"""The ``explorer`` command. Heavy libraries (torch, Ray, fvcore) are imported inside subcommands only, so
``explorer --help`` answers at once."""

from __future__ import annotations

import argparse

from explorer.cli.costs import cmd_cost, cmd_export, cmd_inspect, cmd_presets
from explorer.cli.runs import cmd_audit, cmd_report, cmd_search, cmd_study
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
