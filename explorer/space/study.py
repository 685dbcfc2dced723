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

Each base draws every parameter except the factor at random (seeded); each value of the factor is then set on it,
and parameters the value brings with it (a merge method's ratio) are drawn for it once per base. ``draw_cells`` lists
every (base, value, seed) cell with its Arch, so the runner only trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

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


@dataclass(frozen=True)
class Cell:
    """One training of the study: base ``base`` with the factor at ``value``, training seed ``seed``."""
    number: int
    base: int
    value: FactorValue
    seed: int
    params: dict[str, Any]
    arch_json: str


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
    draw_cells(study, space, located)  # a factor or value the space does not have fails here, with its line
    return study, space


@optuna_warnings_only()
def draw_cells(study: StudySpec, space: SearchSpace, located: Located | None = None) -> list[Cell]:
    """Every cell of the study, in the order base, value, seed (deterministic for the study's seed)."""
    import optuna

    located = located or Located(study.name, {})
    sampler = optuna.samplers.RandomSampler(seed=study.seed)
    draws = optuna.create_study(sampler=sampler)
    cells: list[Cell] = []
    for base in range(study.bases):
        base_params = _draw_base(draws, space, study, located)
        for value in study.factor.values:
            cant = f"{value!r} is not a value {study.factor.param} can take in {space.name}"
            try:
                params, arch = _draw(draws, space, {**base_params, **study.fixed, study.factor.param: value})
            except ValueError as err:  # out of the parameter's choices or range, or an invalid architecture
                raise located.error(("factor", "values"), f"{cant} ({err})") from None
            took = params.get(study.factor.param)
            if took != value:
                raise located.error(("factor", "values"), f"{cant} (it took {took!r})")
            for seed in range(study.seeds):
                cells.append(Cell(len(cells), base, value, space.task.seed + seed, params, arch.to_json(None)))
    return cells


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
    raise located.error(where, f"{missing[0]} is not a parameter of {space.name} in {MAX_DRAWS} random draws "
                               f"(a conditional one needs its parent under fixed:, e.g. s0.merge: tome)")
