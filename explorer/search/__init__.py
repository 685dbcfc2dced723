"""Ray Tune + OptunaSearch orchestration: one search = one self-contained run folder.

``reports/<run>/`` holds ``run.json`` (the space, objectives, timing), ``space.yaml`` (a copy), ``study.db`` (the
Optuna study in SQLite), ``tune/`` (Ray's experiment state), ``archs/<hash>.json``, the trials table
(``trials.parquet`` + ``trials.csv``) and ``index.html``. Ray runs locally in-process unless an address is given.

Importing the package needs no Ray or torch; the searcher (``explorer.search.searcher``) imports Ray and is not
re-exported here.
"""

from explorer.search.callbacks import live_table_callback, progress_callback
from explorer.search.driver import SetupError, run_search, with_budget
from explorer.search.rundir import (
    HISTORY_KEYS,
    METRIC_COLUMNS,
    keep_lost_rows,
    load_run_space,
    new_run_dir,
    read_meta,
    trial_row,
    trials_table,
    write_meta,
    write_table,
)
from explorer.search.samplers import (
    costaware_unsupported,
    define_by_run,
    make_sampler,
    nsga2_population,
    predicted_costs,
    resolve_sampler,
    space_sampler,
    tpe_startup,
)
from explorer.search.trial import (
    VAL_FRACTION,
    Infeasible,
    check_constraints,
    error_text,
    run_trial,
    status_of,
    trial_cost,
)

# the old name: run folders written before the split pickled explorer.search._define_by_run (and run_trial) into
# their Tune state, and --resume finds them by name
_define_by_run = define_by_run

__all__ = [
    "HISTORY_KEYS",
    "METRIC_COLUMNS",
    "VAL_FRACTION",
    "Infeasible",
    "check_constraints",
    "costaware_unsupported",
    "define_by_run",
    "error_text",
    "keep_lost_rows",
    "live_table_callback",
    "load_run_space",
    "make_sampler",
    "new_run_dir",
    "nsga2_population",
    "predicted_costs",
    "progress_callback",
    "read_meta",
    "SetupError",
    "resolve_sampler",
    "run_search",
    "run_trial",
    "space_sampler",
    "status_of",
    "tpe_startup",
    "trial_cost",
    "trial_row",
    "trials_table",
    "with_budget",
    "write_meta",
    "write_table",
]
