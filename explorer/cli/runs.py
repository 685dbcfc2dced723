"""The commands that run or read searches, audits and studies: ``search``, ``audit``, ``study``, ``report``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from explorer.cli.common import fail, stopped, unwritable


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
            return fail("give either a space file or --resume RUN (a run folder keeps its space)")
        flags = [
            f"--{name.replace('_', '-')}"
            for name in ("concurrency", "cpus_per_trial", "gpus_per_trial")
            if getattr(args, name) is not None
        ] + (["--no-audit"] if args.no_audit else [])
        if flags:  # a resumed run keeps its budget: silently ignoring the flags would look as if they applied
            return fail(
                f"{', '.join(flags)} cannot change a resumed run (it keeps the budget in its run.json); "
                "start a new search to use them"
            )
        from explorer.analysis import RunFolderError
        from explorer.search.rundir import missing_study_reason, read_meta, stale_run_reason

        try:
            meta = read_meta(Path(args.resume))
        except RunFolderError as err:
            return fail(str(err))
        reason = stale_run_reason(Path(args.resume), meta)
        if reason:
            return fail(reason)
        if meta.get("state") == "finished" and (finished := _finished_outcome(Path(args.resume))):
            print(finished)  # its budget is spent: said at once instead of starting Ray for nothing
            print(f"report: {Path(args.resume).resolve() / 'index.html'}")
            return 0
        if reason := missing_study_reason(Path(args.resume)):
            return fail(reason)
    elif not args.space:
        return fail("a search-space YAML file is required (or --resume RUN)")
    elif reason := unwritable(Path(args.out)):  # first: it needs no import of torch
        return fail(reason)
    else:
        try:
            check_buildable(load_space(args.space))  # validate before any heavy start-up
        except SpaceError as err:
            return fail(str(err))
    from explorer.search import SetupError, run_search
    from explorer.search.jobs import Interrupted

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
        return fail(str(err))
    except Interrupted as err:  # Ctrl-C, in the search or in its audit
        return stopped(str(err))
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
    from explorer.search.jobs import Interrupted

    for name, least in (("front", 0), ("random", 0), ("seeds", 1), ("reference_epochs", 1)):
        value = getattr(args, name)
        if value is not None and value < least:
            return fail(f"--{name.replace('_', '-')} {value}: expected {least} or more")
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
        return fail(str(err))
    except Interrupted as err:
        return stopped(str(err))
    line = _audit_line(report.parent)
    print(line or "audit: nothing to audit (no complete trials)")
    print(f"report: {report}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    import os

    from explorer.analysis import RunFolderError
    from explorer.space import SpaceError

    if bool(args.study) == bool(args.resume):
        return fail("give a study file or --resume RUN")
    if args.study:
        if reason := unwritable(Path(args.out)):
            return fail(reason)
        from explorer.space.study import load_study

        try:
            load_study(args.study)  # every error before Ray starts
        except SpaceError as err:
            return fail(str(err))
    from explorer.search import SetupError
    from explorer.search.driver import run_study
    from explorer.search.jobs import Interrupted

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
        return fail(str(err))
    except Interrupted as err:
        return stopped(str(err))
    print(f"study: {page}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.run]
    if len(runs) == 1 and args.out:
        return fail("--out is for comparisons of several runs; one run's report is <run>/index.html")
    from explorer.analysis import RunFolderError
    from explorer.report import write_comparison, write_report

    try:
        if len(runs) == 1:
            print(f"report: {write_report(runs[0], self_contained=args.self_contained)}")
        else:
            print(f"comparison: {write_comparison(runs, args.out, self_contained=args.self_contained)}")
    except (RunFolderError, ValueError) as err:  # an unreadable run, or runs that cannot share a page
        return fail(str(err))
    return 0
