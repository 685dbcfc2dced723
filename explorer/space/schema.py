"""The pydantic schema of a space file: the settings (task, objectives, budget, sampler, scheduler, constraints)
and the architecture template the stages are sampled from."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from explorer.data.tasks import TaskConfig
from explorer.metrics import DEVICE_BASES, METRICS, PREDICTABLE_COSTS, device_metric

Scalar = (int, float, str, bool)

MERGE_FIELDS = ("r", "ratio", "layers", "temporal_ratio", "prop_attn", "size_weighted_pool")
MERGE_KINDS = ("none", "tome", "sttm")  # "none": no merging in that stage


class StrictModel(BaseModel):
    # inf and nan are refused in every float field: `lr: .inf` would only fail, trial after trial, once training ran
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ObjectiveSpec(StrictModel):
    """One objective. A metric measured on a device is named with it (``latency_cuda_ms``), or by its base name and
    ``device`` (``{metric: latency_ms, device: cuda}``, the device defaulting to the CPU); either way the objective
    is stored under the device-carrying name, which is its column in the trials table."""

    # explorer.metrics.OBJECTIVE_METRICS and DEVICE_BASES, spelt out for the schema (tests/test_metrics.py keeps
    # them equal)
    metric: Literal[
        "accuracy",
        "gflops",
        "params_m",
        "latency_cpu_ms",
        "latency_cuda_ms",
        "predicted_latency_cpu_ms",
        "predicted_latency_cuda_ms",
        "throughput_cpu",
        "throughput_cuda",
        "peak_mem_cpu_mb",
        "peak_mem_cuda_mb",
        "latency_ms",
        "predicted_latency_ms",
        "throughput",
        "peak_mem_mb",
    ]
    mode: Literal["max", "min"]
    device: Optional[Literal["cpu", "cuda"]] = None  # where latency/throughput/memory are measured

    @model_validator(mode="after")
    def _device_in_the_name(self) -> "ObjectiveSpec":
        if self.metric in DEVICE_BASES:
            self.metric = device_metric(self.metric, self.device or "cpu")
        measured_on = METRICS[self.metric].device
        # a device on a metric measured on none (accuracy, GFLOPs) is ignored: run.json files of older versions
        # wrote the default device for every objective
        if measured_on is not None and self.device not in (None, measured_on):
            raise ValueError(f"{self.metric} is measured on {measured_on}, but the objective has device: {self.device}")
        self.device = measured_on
        return self


class AuditSpec(StrictModel):
    """The front audit after a search: the ``front`` most accurate Pareto points and ``random`` other complete trials
    are trained again with ``seeds`` other seeds (and once at ``reference_epochs``, when set), through the same Ray
    Tune machinery; the report shows how the front's order held. ``audit: true`` is ``{enabled: true}``, and a
    mapping without ``enabled`` turns it on."""

    enabled: bool = False  # the ready spaces turn it on (search_spaces/base/proxy.yaml)
    front: int = Field(3, ge=0, le=1_000)
    random: int = Field(2, ge=0, le=1_000)
    seeds: int = Field(1, ge=1, le=100)
    reference_epochs: Optional[int] = Field(None, ge=1, le=1_000)


class BudgetSpec(StrictModel):
    # upper bounds far above any proxy search, so a typo (an extra 000) is refused instead of running for days;
    # CPUs and GPUs per trial are also checked against the machine or cluster when a search starts
    trials: int = Field(8, ge=1, le=100_000)
    # 12 epochs of batches of 16 at lr 1e-3 (~1,200 optimiser steps on T-rev demo): at 6 epochs and lr 3e-3 focal
    # modulation and the ViT stay at chance; this recipe gets the ViT and serial focal past the frame-order-blind
    # bound and keeps the other families where they were (experiments/proxy_recipe/README.md, rows 20-24)
    epochs: int = Field(12, ge=1, le=1_000)
    concurrency: int = Field(2, ge=1, le=4_096)
    cpus_per_trial: int = Field(1, ge=1, le=1_024)
    gpus_per_trial: float = Field(0.0, ge=0, le=64)  # fractions share a GPU between trials
    retries: int = Field(2, ge=0, le=100)  # re-runs of a trial whose worker died
    batch_size: int = Field(16, ge=1, le=65_536)
    lr: PositiveFloat = 1e-3
    # linear warm-up over this fraction of the optimiser steps, then cosine decay to zero
    warmup: float = Field(0.1, gt=0, le=1)
    # width_scaled: Linear weights redrawn at σ = 0.55/√fan_in, so a narrow proxy model's blocks start as strong as a
    # released model's (explorer.train.width_scaled_init); release: trained as built (σ = 0.02)
    init: Literal["width_scaled", "release"] = "width_scaled"
    audit: AuditSpec = Field(default_factory=AuditSpec)

    @field_validator("audit", mode="before")
    @classmethod
    def _audit_switch(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        # a mapping asks for an audit unless it says otherwise: `audit: {front: 5}` runs one
        return {"enabled": True, **value} if isinstance(value, dict) else value


def costaware_objection(metrics: list[str]) -> str | None:
    """Why the costaware sampler cannot serve these objectives (None: it can): it models accuracy and needs every
    other objective before training."""
    if "accuracy" not in metrics:
        return "it models accuracy, which is not an objective here"
    unknown = [m for m in metrics if m not in ("accuracy", *PREDICTABLE_COSTS)]
    return f"{', '.join(unknown)} cannot be worked out before training" if unknown else None


class SamplerSpec(StrictModel):
    name: Literal["costaware", "tpe", "nsga2", "random", "grid"] = "costaware"
    seed: int = 0
    population: Optional[PositiveInt] = None  # nsga2 only; None: sized from the budget


class SchedulerSpec(StrictModel):
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: PositiveInt = 1
    reduction_factor: int = Field(2, ge=2)


class ConstraintSpec(StrictModel):
    max_gflops: Optional[PositiveFloat] = None
    max_params_m: Optional[PositiveFloat] = None
    max_latency_ms: Optional[PositiveFloat] = None  # checked by the search with its latency predictor


class StageTemplate(StrictModel):
    depth: Any
    width: Any
    mixer: Any
    mlp_ratio: Any = 2.0
    down: dict[str, Any] = Field(default_factory=dict)
    global_tokens: Optional[dict[str, Any]] = None
    merge: Any = None


def _default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="accuracy", mode="max"), ObjectiveSpec(metric="gflops", mode="min")]


class SearchSpace(StrictModel):
    name: str
    description: str = ""
    seed: Optional[int] = None
    task: TaskConfig = Field(default_factory=TaskConfig)  # a synthvid task or a dataset on disk
    objectives: list[ObjectiveSpec] = Field(default_factory=_default_objectives, min_length=2)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    constraints: ConstraintSpec = Field(default_factory=ConstraintSpec)
    seed_points: list[dict[str, Any]] = Field(default_factory=list)
    shared: dict[str, Any] = Field(default_factory=dict)
    num_stages: Any = None
    stem: dict[str, Any] = Field(default_factory=dict)
    head: dict[str, Any] = Field(default_factory=dict)
    drop_path_rate: float = 0.0
    stages: list[StageTemplate] = Field(min_length=1)
    source: str = Field("<dict>", exclude=True)

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]
