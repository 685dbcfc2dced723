"""A controlled factor study: one design factor of a space compared value against value on the same base
architectures, every cell trained with the same recipe and several seeds.

A study file (validated like a space file: errors name the file, line and field)::

    name: focal-combination
    space: ../../search_spaces/focal.yaml   # relative to this file; its task, objectives and budget are used
    factor: {param: shared.combination, values: [parallel, serial, joint3d, spatial_only]}
    fixed: {}                               # parameters held at one value in every cell
    bases: 8                                # base architectures: the other parameters, drawn at random
    seeds: 2                                # training seeds per cell
    confidence: 0.9                         # of the bootstrap intervals behind every verdict
    budget: {epochs: 12}                    # overrides of the space's budget (checked like the space's)
    cost_match: {metric: gflops, adjust: s1.width, tolerance: 0.1}   # optional: compare at equal cost

Each base draws every parameter except the factor at random (seeded), and no two bases share a cell (a value on the
same architecture): a repeated cell would train again with the same seeds and count as independent evidence. Each
value of the factor is then set on the base, and parameters the value brings with it (a merge method's ratio) are
drawn for it once per base. ``draw_cells`` lists every (base, value, seed) cell with its Arch, so the runner only
trains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import Field, ValidationError

from explorer.logs import optuna_warnings_only
from explorer.space.errors import Located
from explorer.space.loader import load_space, read_located, validation_error
from explorer.space.sampling import sample_arch
from explorer.space.schema import SearchSpace, StrictModel

FactorValue = Union[bool, int, float, str]


class FactorSpec(StrictModel):
    param: str = Field(min_length=1)
    values: list[FactorValue] = Field(min_length=2, max_length=64)


class CostMatch(StrictModel):
    """Compare the values at equal cost: on every base, each value other than the first takes the choice of
    ``adjust`` (a width or depth parameter) whose ``metric`` comes closest to the first value's on that base; a cell
    further than ``tolerance`` (relative) from it is marked unmatched and left out of the verdicts."""

    metric: Literal["gflops", "params_m"] = "gflops"
    adjust: str = Field(min_length=1)
    tolerance: float = Field(0.1, gt=0, lt=1)
    # the values ``adjust`` may take in the match when the space's own grid is too coarse to match within the
    # tolerance (widths 32 or 64 are 3x apart in GFLOPs); only a stage's width or depth, and the bases still draw
    # from the space's grid
    choices: Optional[list[int]] = Field(None, min_length=2, max_length=64)


class StudySpec(StrictModel):
    name: str = Field(min_length=1)
    description: str = ""
    space: str = Field(min_length=1)
    factor: FactorSpec
    fixed: dict[str, FactorValue] = Field(default_factory=dict)
    bases: int = Field(8, ge=1, le=1_000)
    seeds: int = Field(2, ge=1, le=100)
    seed: int = 0
    confidence: float = Field(0.9, gt=0.5, lt=1)
    # the accuracy loss a numeric factor may cost and still count as free (for "the largest saving within it")
    tolerance: float = Field(0.01, ge=0, lt=1)
    budget: dict[str, Any] = Field(default_factory=dict)
    cost_match: Optional[CostMatch] = None


@dataclass(frozen=True)
class Cell:
    """One training of the study: base ``base`` with the factor at ``value``, training seed ``seed``.
    ``cost_ratio``: with a cost match, the cell's cost over the first value's on the same base (1.0 for that one)."""

    number: int
    base: int
    value: FactorValue
    seed: int
    params: dict[str, Any]
    arch_json: str
    cost_ratio: float | None = None
    matched: bool = True


MAX_DRAWS = 64  # tries to draw a base on which the factor (or a fixed parameter) is sampled at all


def load_study(path: str | Path) -> tuple[StudySpec, SearchSpace]:
    """Read and validate a study file and the space it names (with its budget overrides); every problem raises
    ``SpaceError`` naming the file, line and field, before anything is trained."""
    path = Path(path)
    data, located = read_located(path)
    if not isinstance(data, dict):
        raise located.error((), "expected a mapping of study settings at the top level")
    try:
        study = StudySpec.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, located, StudySpec) from None
    space_path = (path.parent / study.space).resolve()
    if not space_path.is_file():
        raise located.error(("space",), f"no space file at {space_path}")
    space = load_space(space_path)
    if study.budget:
        try:
            budget = type(space.budget).model_validate({**space.budget.model_dump(), **study.budget})
        except ValidationError as err:
            first = err.errors()[0]
            raise located.error(("budget", *first["loc"]), first["msg"]) from None
        space = space.model_copy(update={"budget": budget})
    draw_cells(study, space, located, match_costs=False)  # a factor or value the space lacks fails here, by line
    return study, space


@optuna_warnings_only()
def draw_cells(
    study: StudySpec, space: SearchSpace, located: Located | None = None, match_costs: bool = True
) -> list[Cell]:
    """Every cell of the study, in the order base, value, seed (deterministic for the study's seed).
    ``match_costs=False`` skips the cost match's model builds (validation: the adjusted parameter is only
    checked to exist)."""
    import optuna

    located = located or Located(study.name, {})
    sampler = optuna.samplers.RandomSampler(seed=study.seed)
    draws = optuna.create_study(sampler=sampler)
    cells: list[Cell] = []
    seen: set[tuple[str, str]] = set()  # (value, architecture) of every cell so far
    for base in range(study.bases):
        for _ in range(MAX_DRAWS):
            row = _base_cells(draws, space, study, located, base, len(cells), match_costs)
            keys = {(str(cell.value), cell.arch_json) for cell in row}
            if not keys & seen:
                break
        else:  # a base sharing a cell with an earlier one would train it again and count it twice
            raise located.error(
                ("bases",),
                f"{space.name} gave only {base} bases without a cell in common in {MAX_DRAWS} draws "
                f"(the other parameters together); ask for at most {base}",
            )
        seen |= keys
        cells.extend(row)
    return cells


def _base_cells(
    draws, space: SearchSpace, study: StudySpec, located: Located, base: int, first: int, match_costs: bool
) -> list[Cell]:
    """One base's cells, value by value and seed by seed, numbered from ``first``."""
    base_params = _draw_base(draws, space, study, located)
    reference_cost = None
    cells: list[Cell] = []
    for k, value in enumerate(study.factor.values):
        params, arch = _value_draw(draws, space, study, located, {**base_params, **study.fixed}, value)
        ratio, matched = None, True
        if study.cost_match is not None and not match_costs:
            _check_adjust(draws, space, study, located)
        elif study.cost_match is not None:
            if k == 0:
                reference_cost, ratio = _cost(arch, study.cost_match.metric), 1.0
            else:
                params, arch, ratio = _matched(draws, space, study, located, base_params, value, reference_cost)
            matched = abs(ratio - 1) <= study.cost_match.tolerance
        for seed in range(study.seeds):
            cells.append(
                Cell(
                    first + len(cells), base, value, space.task.seed + seed, params, arch.to_json(None), ratio, matched
                )
            )
    return cells


def _value_draw(
    draws, space: SearchSpace, study: StudySpec, located: Located, fixed: dict[str, Any], value: FactorValue
):
    cant = f"{value!r} is not a value {study.factor.param} can take in {space.name}"
    try:
        params, arch = _draw(draws, space, {**fixed, study.factor.param: value})
    except ValueError as err:  # out of the parameter's choices or range, or an invalid architecture
        raise located.error(("factor", "values"), f"{cant} ({err})") from None
    took = params.get(study.factor.param)
    if took != value:
        raise located.error(("factor", "values"), f"{cant} (it took {took!r})")
    return params, arch


def _cost(arch, metric: str) -> float:
    """GFLOPs (fvcore) or millions of parameters of an architecture, built on the CPU."""
    import torch

    from explorer.cost import count_flops, example_input
    from explorer.models import build

    torch.manual_seed(0)
    model = build(arch)
    if metric == "params_m":
        return sum(p.numel() for p in model.parameters()) / 1e6
    return count_flops(model, example_input(arch)) / 1e9


def _matched(
    draws,
    space: SearchSpace,
    study: StudySpec,
    located: Located,
    base_params: dict[str, Any],
    value: FactorValue,
    reference_cost: float,
):
    """The value on this base with the ``adjust`` choice whose cost is closest to the reference's."""
    match = study.cost_match
    params, arch = _value_draw(draws, space, study, located, {**base_params, **study.fixed}, value)
    choices = _check_adjust(draws, space, study, located)
    match_space, match_draws = space, draws
    if match.choices:  # Optuna keeps one grid per parameter in a study: the finer one is drawn in its own
        import optuna

        match_space, match_draws = _with_choices(space, match.adjust, match.choices), optuna.create_study()
    best = None
    for choice in choices:
        try:  # only the adjusted parameter moves
            p, a = _value_draw(match_draws, match_space, study, located, {**params, match.adjust: choice}, value)
            ratio = _cost(a, match.metric) / reference_cost
        except ValueError:  # SpaceError, or a block's InvalidCombination at build time
            continue  # a listed width the value's blocks cannot take (e.g. not divisible by its groups)
        if best is None or abs(ratio - 1) < abs(best[2] - 1):
            best = (p, a, ratio)
    if best is None:
        raise located.error(("cost_match", "choices"), f"no listed value of {match.adjust} builds with {value!r}")
    return best


def _check_adjust(draws, space: SearchSpace, study: StudySpec, located: Located) -> list[Any]:
    """The values the match tries: the study's own ``choices`` for a stage's width or depth, or the space's."""
    match = study.cost_match
    own = _choices(draws, match.adjust)
    if not own:
        raise located.error(
            ("cost_match", "adjust"),
            f"{match.adjust} is not a sampled parameter of {space.name} with a finite set of values",
        )
    if match.choices is None:
        return own
    stage = _STAGE_FIELD.fullmatch(match.adjust)
    if stage is None or int(stage[1]) >= len(space.stages):
        raise located.error(
            ("cost_match", "choices"), f"choices can only replace a stage's width or depth, not {match.adjust}"
        )
    return list(match.choices)


_STAGE_FIELD = re.compile(r"s(\d+)\.(width|depth)")


def _with_choices(space: SearchSpace, adjust: str, choices: list[int]) -> SearchSpace:
    """The space with one stage's width or depth drawn from ``choices`` instead of its own template."""
    stage = _STAGE_FIELD.fullmatch(adjust)
    i, field = int(stage[1]), stage[2]
    stages = list(space.stages)
    stages[i] = stages[i].model_copy(update={field: {"choice": list(choices)}})
    return space.model_copy(update={"stages": stages})


def _choices(draws, name: str) -> list[Any]:
    """The values a sampled parameter can take, from the draws so far (a categorical or a stepped int)."""
    import optuna

    for trial in reversed(draws.trials):
        dist = trial.distributions.get(name)
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            return list(dist.choices)
        if isinstance(dist, optuna.distributions.IntDistribution):
            return list(range(dist.low, dist.high + 1, dist.step))
    return []


def _draw(draws, space: SearchSpace, fixed: dict[str, Any]):
    draws.enqueue_trial(fixed, skip_if_exists=False)
    trial = draws.ask()
    arch = sample_arch(space, trial)
    draws.tell(trial, 0.0)
    return dict(trial.params), arch


def _draw_base(draws, space: SearchSpace, study: StudySpec, located: Located) -> dict[str, Any]:
    """Random parameters on which the factor and every fixed parameter are sampled (a conditional factor needs its
    parent choice: a merge ratio exists only where that merge method is chosen)."""
    wanted = [study.factor.param, *study.fixed]
    for _ in range(MAX_DRAWS):
        params, _ = _draw(draws, space, dict(study.fixed))
        missing = [p for p in wanted if p not in params]
        if not missing:
            return {k: v for k, v in params.items() if k != study.factor.param}
    where = ("factor", "param") if study.factor.param in missing else ("fixed", missing[0])
    raise located.error(
        where,
        f"{missing[0]} is not a parameter of {space.name} in {MAX_DRAWS} random draws "
        f"(a conditional one needs its parent under fixed:, e.g. s0.merge: tome)",
    )
