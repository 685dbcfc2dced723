"""The search driver: Ray, the Tuner (searcher, scheduler, trainable, callbacks) and the run folder around it."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from explorer.analysis import STUDY_ROLE
from explorer.logs import optuna_warnings_only
from explorer.search.audit import run_audit_jobs
from explorer.search.callbacks import live_table_callback, progress_callback
from explorer.search.jobs import Interrupted, run_jobs
from explorer.search.leftovers import forget, record_local_ray, stop_leftovers
from explorer.search.rundir import (
    keep_lost_rows,
    load_run_space,
    new_run_dir,
    read_meta,
    stale_run_reason,
    trials_table,
    tune_state_saved,
    update_meta,
    write_meta,
    write_resolved_space,
    write_table,
)
from explorer.search.samplers import define_by_run, space_sampler
from explorer.search.trial import VAL_FRACTION, run_trial, trial_resources
from explorer.space import SearchSpace, load_space
from explorer.space.schema import AuditSpec

# a 2-core laptop or CI box: Ray must not pre-start workers or phone home (see docs/environment.md)
_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_enable_worker_prestart": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    # Tune's experiment state every second (default: adaptive, >= 10 s): a SIGKILLed driver resumes from it
    "TUNE_GLOBAL_CHECKPOINT_S": "1",
    # Tune's own Ctrl-C handler returns from fit() as if the run were done: the search would audit, call itself
    # finished and refuse --resume; without it Ctrl-C raises KeyboardInterrupt, which stops the run like a kill
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}
_OBJECT_STORE_BYTES = 200 * 2**20
_log = logging.getLogger(__name__)


def _num_trials(space: SearchSpace) -> int:
    """The budget, or fewer for a grid smaller than it: the exact number of parameter sets of the space."""
    if space.sampler.name != "grid":
        return space.budget.trials
    from explorer.space.enumeration import enumerate_params

    try:
        return len(enumerate_params(space, limit=space.budget.trials))
    except ValueError:  # more parameter sets than the budget
        return space.budget.trials


def _init_ray(address: str | None, num_cpus: int) -> bool:
    """Start (or join) Ray; returns True if this call started it, so the caller shuts it down."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    else:
        stopped = stop_leftovers()
        if stopped:
            _log.warning(
                "stopped %d Ray process(es) that a killed search had left running (pids %s)",
                len(stopped),
                ", ".join(map(str, stopped)),
            )
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            object_store_memory=_OBJECT_STORE_BYTES,
            log_to_driver=False,
            logging_level="WARNING",
        )
    return True


class SetupError(ValueError):
    """A search cannot start: a trial asks for more CPUs or GPUs than any node offers (Ray would keep it pending
    forever), or the task has no readable training clips. Raised before Ray starts (for a cluster: right after)."""


def resource_problem(space: SearchSpace, nodes: list[dict[str, float]], where: str) -> str | None:
    """Why no node of ``nodes`` (Ray resource dicts: ``{"CPU": 4, "GPU": 1}``) can run one trial, or None."""
    budget = space.budget
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if budget.cpus_per_trial > cpus:
        return (
            f"budget.cpus_per_trial is {budget.cpus_per_trial}, but {where} has {cpus:g} CPUs for trials: no trial "
            f"could start (lower it, or give --num-cpus)"
        )
    if budget.gpus_per_trial > gpus:
        have = "no GPU" if gpus == 0 else f"{gpus:g} GPUs"
        return f"budget.gpus_per_trial is {budget.gpus_per_trial:g}, but {where} has {have}: no trial could start"
    return None


def _local_cpus(space: SearchSpace, num_cpus: int | None) -> int:
    return num_cpus or max(1, min(os.cpu_count() or 1, space.budget.concurrency * space.budget.cpus_per_trial))


def check_local_resources(space: SearchSpace, num_cpus: int | None) -> None:
    """``SetupError`` when the local Ray a search would start cannot run one trial (checked before anything is
    written or started)."""
    gpus = 0
    if space.budget.gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
    problem = resource_problem(space, [{"CPU": _local_cpus(space, num_cpus), "GPU": gpus}], "this machine")
    if problem:
        raise SetupError(problem)


def _check_cluster_resources(space: SearchSpace, address: str) -> None:
    import ray

    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    problem = resource_problem(space, nodes, f"the largest node of the cluster at {address}")
    if problem:
        raise SetupError(problem)


def _scheduler(space: SearchSpace):
    """ASHA early stopping on accuracy (every objective is still reported at every epoch), or None (FIFO)."""
    spec = getattr(space, "scheduler", None)
    if spec is None or spec.name != "asha" or space.budget.epochs < 2:
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        metric="accuracy",
        mode="max",
        time_attr="training_iteration",
        max_t=space.budget.epochs,
        grace_period=min(spec.grace_period, space.budget.epochs),
        reduction_factor=spec.reduction_factor,
    )


def _searcher(space: SearchSpace, run_dir: Path):
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    from explorer.search.searcher import RecordingOptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    points = [dict(p) for p in (getattr(space, "seed_points", None) or [])]
    searcher = RecordingOptunaSearch(
        space=functools.partial(define_by_run, space),
        metric=space.metric_names,
        mode=space.modes,
        sampler=space_sampler(space),
        study_name=run_dir.name,
        storage=storage,
        points_to_evaluate=points or None,
        epochs=space.budget.epochs,
    )
    return ConcurrencyLimiter(searcher, max_concurrent=space.budget.concurrency)


def _trainable(space: SearchSpace, run_dir: Path):
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(run_trial, space_data=space.model_dump(mode="json"), cache_dir=str(run_dir / "cache")),
        trial_resources(space),
    )


def _callbacks(space: SearchSpace, run_dir: Path, progress: bool, live: bool, trials: int) -> list:
    callbacks = [progress_callback(trials)] if progress else []
    if live:
        callbacks.append(live_table_callback(space, run_dir))
    return callbacks


def with_budget(space: SearchSpace, **overrides: Any) -> SearchSpace:
    """The space with some budget fields replaced (command-line flags beat the YAML); None leaves a field alone."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    if not changes:
        return space
    budget = type(space.budget).model_validate({**space.budget.model_dump(), **changes})  # checked like the YAML
    return space.model_copy(update={"budget": budget})


MAX_SKIPPED_LISTED = 1000  # run.json lists this many skipped clips (and counts them all)


def task_facts(space: SearchSpace) -> tuple[list[dict[str, str]], dict[str, int]]:
    """Load the task once on the driver: the clips it had to skip (path, reason) and the clips per split.

    A dataset's unreadable clips were only warned about inside the Ray workers, where nobody saw them; loaded here
    they are recorded in run.json and shown by the report and at the end of the search, beside the number of
    training, validation and test clips the proxy had (the report's header names them). The load also fills the
    data cache the local trials then read, instead of each decoding or generating the clips at the same time."""
    import warnings

    from explorer.data import load_task, with_validation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the skipped clips are returned, and said once by the caller
        data = load_task(space.task)
    split = with_validation(data, VAL_FRACTION, seed=space.task.seed)
    sizes = {"train": len(split.train_y), "val": len(split.val_y), "test": len(split.test_y)}
    return [{"path": s.path, "reason": s.reason} for s in getattr(data, "skipped", None) or []], sizes


@optuna_warnings_only()
def run_search(
    space_path: str | Path | None = None,
    out_root: str | Path = "reports",
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    run_dir: str | Path | None = None,
    resume: bool = False,
    live: bool = True,
    budget: dict[str, Any] | None = None,
) -> Path:
    """Run a whole search and return the report's path (``<run_dir>/index.html``).

    ``resume=True`` continues the run in ``run_dir`` (killed at any moment, SIGKILL included): Tune restores its
    experiment state (finished trials stay finished, unfinished ones start again), the Optuna study continues in
    ``study.db``, and a restarted trial whose architecture had already finished replays it from the run's cache."""
    if resume:
        if run_dir is None:
            raise ValueError("resume needs the run folder")
        run_dir = Path(run_dir).resolve()
        meta = read_meta(run_dir)
        reason = stale_run_reason(run_dir, meta)
        if reason:
            raise ValueError(reason)
        space = load_run_space(run_dir, meta)
        if not address:
            check_local_resources(space, num_cpus)
        space_path = meta.get("space_file", str(run_dir / "space.yaml"))
    else:
        space = with_budget(load_space(space_path), **(budget or {}))
        if not address:
            check_local_resources(space, num_cpus)
    try:  # before a new run folder exists: a dataset without readable clips fails here
        skipped, sizes = task_facts(space)
    except ValueError as err:
        raise SetupError(str(err)) from None
    if not resume:
        run_dir = (Path(run_dir) if run_dir else new_run_dir(space, out_root)).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(space_path, run_dir / "space.yaml")
        write_resolved_space(run_dir, space)
    clips = {"skipped_clips": skipped[:MAX_SKIPPED_LISTED], "skipped_count": len(skipped), "clips": sizes}
    write_meta(run_dir, space, str(space_path), wall_time_s=None, state="running", **clips)
    _ray_environment(address)

    from explorer.report import write_report

    started = time.perf_counter()
    concurrency = space.budget.concurrency

    def search_then_audit() -> float:
        results = _search_tuner(space, run_dir, resume, progress, live).fit()
        table = trials_table(space, results, run_dir)
        write_table(keep_lost_rows(table, run_dir, set(table["trial_id"].astype(str))), run_dir)
        seconds = round(time.perf_counter() - started, 2)
        if space.budget.audit.enabled:
            write_meta(
                run_dir,
                space,
                str(space_path),
                wall_time_s=seconds,
                concurrency=concurrency,
                address=address or "local",
                state="auditing",
                **clips,
            )
            audit_started = time.perf_counter()
            run_audit_jobs(space, run_dir, space.budget.audit, progress)
            update_meta(run_dir, audit=_audit_record(space.budget.audit, time.perf_counter() - audit_started))
        return seconds

    search_s = _on_ray(space, address, num_cpus, search_then_audit, f"explorer search --resume {run_dir}")
    write_meta(
        run_dir,
        space,
        str(space_path),
        wall_time_s=search_s,
        concurrency=concurrency,
        address=address or "local",
        state="finished",
        **clips,
    )
    return write_report(run_dir)


def _search_tuner(space: SearchSpace, run_dir: Path, resume: bool, progress: bool, live: bool):
    """The search's Tuner: restored from the run folder on a resume that Tune saved state for, else a new one."""
    from ray import tune

    trainable = _trainable(space, run_dir)
    if resume and tune_state_saved(run_dir / "tune"):
        # finished trials stay; unfinished and errored (a dead worker) ones run again
        return tune.Tuner.restore(
            str(run_dir / "tune"),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=True,
        )
    trials = _num_trials(space)  # a fresh run, or a resume killed before Tune saved any state; a grid: enumerated once
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=_searcher(space, run_dir), scheduler=_scheduler(space), num_samples=trials, reuse_actors=True
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(run_dir),
            verbose=0,
            callbacks=_callbacks(space, run_dir, progress, live, trials),
            # retries are for workers or nodes that died: our own failures are reported, not raised
            failure_config=tune.FailureConfig(max_failures=getattr(space.budget, "retries", 2), fail_fast=False),
        ),
    )


def _ray_environment(address: str | None) -> None:
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)
    if not address and "ray" not in sys.modules:
        # the local Ray's default (token auth on), said explicitly so Ray does not warn about it; Ray reads the mode
        # when it is imported, so once something has imported it, setting it here would break ray.init instead
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def _on_ray(space: SearchSpace, address: str | None, num_cpus: int | None, work: Callable[[], Any], go_on: str) -> Any:
    """``work()`` on the cluster at ``address`` (checked to have a node that can run one trial) or on a local Ray
    started for it and shut down after. Ctrl-C raises ``Interrupted`` saying ``go_on``: the command that resumes."""
    we_started_ray = _init_ray(address, _local_cpus(space, num_cpus))
    # what this driver started, so that the next search can stop it if this one is killed
    record = record_local_ray() if we_started_ray and not address else None
    try:
        if address:
            _check_cluster_resources(space, address)
        return work()
    except KeyboardInterrupt:
        raise Interrupted(f"what finished is kept; `{go_on}` goes on from there") from None
    finally:
        if we_started_ray:
            import ray

            ray.shutdown()
            forget(record)


def _audit_record(spec: AuditSpec, seconds: float) -> dict[str, Any]:
    return {**spec.model_dump(), "wall_time_s": round(seconds, 2)}


def audit_spec(space: SearchSpace, **overrides: Any) -> AuditSpec:
    """The run's audit settings with command-line overrides (None leaves a field alone), switched on."""
    from pydantic import ValidationError

    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return AuditSpec.model_validate({**space.budget.audit.model_dump(), **changes, "enabled": True})
    except ValidationError as err:  # a flag beyond the schema's bounds: said like a YAML error, in one line
        first = err.errors()[0]
        raise SetupError(f"audit {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@optuna_warnings_only()
def run_audit(
    run_dir: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    **overrides: Any,
) -> Path:
    """Audit an existing run folder (``explorer audit RUN``): retrain its front's best and a few random trials with
    other seeds (``overrides``: front, random, seeds, reference_epochs); returns the rewritten report's path.
    Run again after an interruption, it resumes: finished retrainings stay, the others run."""
    run_dir = Path(run_dir).resolve()
    meta = read_meta(run_dir)
    reason = stale_run_reason(run_dir, meta)
    if reason:
        raise SetupError(reason)
    if meta.get("state") == "running":
        raise SetupError(
            f"{run_dir}: its search has not finished (resume it with `explorer search --resume "
            f"{run_dir}`, which audits it at the end when its space asks for an audit)"
        )
    space = load_run_space(run_dir, meta)
    spec = audit_spec(space, **overrides)
    if not address:
        check_local_resources(space, num_cpus)
    _ray_environment(address)
    from explorer.report import write_report

    started = time.perf_counter()

    def audit() -> int:
        return run_audit_jobs(space, run_dir, spec, progress)

    _on_ray(space, address, num_cpus, audit, f"explorer audit {run_dir}")
    update_meta(run_dir, audit=_audit_record(spec, time.perf_counter() - started))
    return write_report(run_dir)


@optuna_warnings_only()
def run_study(
    study_path: str | Path | None = None,
    out_root: str | Path = "reports",
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    run_dir: str | Path | None = None,
    resume: bool = False,
) -> Path:
    """Run a factor study (``explorer study STUDY.yaml``): every (base, value, seed) cell trained as a Ray Tune
    trial with the space's recipe; returns the study page's path. ``resume=True`` continues the study in
    ``run_dir`` (killed at any moment): finished cells stay, the others run."""
    from explorer.search.study import STUDY_DIR, cell_job, pending_cells, write_cells
    from explorer.space.study import draw_cells, load_study

    if resume:
        run_dir = Path(run_dir).resolve()
        meta = read_meta(run_dir)
        if meta.get("kind") != "study":
            raise SetupError(f"{run_dir}: not a study run folder (resume a search with `explorer search --resume`)")
        space = load_run_space(run_dir, meta)
        study_file, space_file = meta["study_file"], meta["space_file"]
    else:
        study, space = load_study(study_path)
        study_file, space_file = str(study_path), str(space.source)
    if not address:
        check_local_resources(space, num_cpus)
    try:
        skipped, sizes = task_facts(space)
    except ValueError as err:
        raise SetupError(str(err)) from None
    if not resume:
        run_dir = (
            Path(run_dir) if run_dir else new_run_dir(space.model_copy(update={"name": study.name}), out_root)
        ).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(study_path, run_dir / "study.yaml")
        write_resolved_space(run_dir, space)
        write_cells(run_dir, [cell_job(c, space.budget.epochs) for c in draw_cells(study, space)])
        meta = {"study": study.model_dump()}
    clips = {"skipped_clips": skipped[:MAX_SKIPPED_LISTED], "skipped_count": len(skipped), "clips": sizes}
    extra = {"kind": "study", "study": meta["study"], "study_file": study_file, **clips}
    write_meta(run_dir, space, space_file, wall_time_s=None, state="running", **extra)
    _ray_environment(address)
    from explorer.report import write_report

    started = time.perf_counter()
    _on_ray(
        space,
        address,
        num_cpus,
        lambda: run_jobs(space, run_dir, lambda: pending_cells(run_dir), STUDY_ROLE, STUDY_DIR, progress),
        f"explorer study --resume {run_dir}",
    )
    write_meta(
        run_dir, space, space_file, wall_time_s=round(time.perf_counter() - started, 2), state="finished", **extra
    )
    return write_report(run_dir)
