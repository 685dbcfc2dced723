"""Search spaces written in YAML: schema (pydantic), errors that name file:line and field, define-by-run sampling.

A space file names the proxy task, the objectives, the budget, the sampler (and scheduler), constraints checked
before training, and a template of the architecture whose values may be choices (the full language, with a worked
example, is documented in ``search_spaces/README.md``)::

    include: base.yaml                   # deep-merged under this file's keys (lists: wholesale, or {index: ...})
    seed: 0                              # seeds the sampler and the task unless they set their own
    shared: {w: {choice: [32, 64]}}      # sampled once as "shared.w", used as {shared: w} in any value position
    num_stages: {choice: [1, 2]}         # the first k stage templates are used
    stages:
      - depth: {choice: [1, 2]}          # also {int: [lo, hi], step: s} and {float: [lo, hi], log: true}
        width: {shared: w}
        mixer:                           # a mixer's options exist only when that mixer is chosen
          choice:
            conv3d: {kernel_t: {choice: [1, 3]}}
            posmlp: {groups: 4, window: 8}
        global_tokens: {num: {int: [0, 12]}, width: {choice: [32, 64]}}   # Mobile-Former tokens; num 0 = none
        merge: {choice: {none: {}, tome: {r: {int: [4, 16]}}}}            # token merging (set-layout stages)

Sampling is define-by-run (``sample_arch(space, optuna_trial)``); the sampled parameters are named
``num_stages``, ``shared.<name>``, ``stem.<field>``, ``s<i>.<field>``, ``s<i>.mixer``, ``s<i>.<mixer>.<option>``,
``s<i>.down.<field>``, ``s<i>.global_tokens.num|width``, ``s<i>.merge`` and ``s<i>.merge.<method>.<field>``;
``arch_from_params`` replays them into the same Arch. ``param_templates`` lists them, ``space_size`` counts the
distinct settings (None: a continuous range is in use).

Modules: ``schema`` (the pydantic models), ``errors`` (SpaceError and file:line origins), ``loader`` (YAML, includes,
validation), ``templates`` (template forms and checks, ``param_templates``), ``sampling``, ``counting``
(``space_size``, grid) and ``inspect`` (the ``explorer inspect`` report).
"""

from explorer.metrics import METRIC_MODES, PREDICTABLE_COSTS
from explorer.space.counting import space_size, task_input
from explorer.space.errors import Loc, SpaceError
from explorer.space.inspect import check_buildable, inspect_space, sample_costs, text_histogram
from explorer.space.loader import load_space, parse_space
from explorer.space.sampling import arch_from_params, sample_arch, suggest
from explorer.space.schema import (
    MERGE_FIELDS,
    MERGE_KINDS,
    BudgetSpec,
    ConstraintSpec,
    ObjectiveSpec,
    SamplerSpec,
    Scalar,
    SchedulerSpec,
    SearchSpace,
    StageTemplate,
    costaware_objection,
)
from explorer.space.templates import param_templates

__all__ = [
    "MERGE_FIELDS",
    "MERGE_KINDS",
    "METRIC_MODES",
    "PREDICTABLE_COSTS",
    "BudgetSpec",
    "ConstraintSpec",
    "Loc",
    "ObjectiveSpec",
    "SamplerSpec",
    "Scalar",
    "SchedulerSpec",
    "SearchSpace",
    "SpaceError",
    "StageTemplate",
    "arch_from_params",
    "check_buildable",
    "costaware_objection",
    "inspect_space",
    "load_space",
    "param_templates",
    "parse_space",
    "sample_arch",
    "sample_costs",
    "space_size",
    "suggest",
    "task_input",
    "text_histogram",
]
