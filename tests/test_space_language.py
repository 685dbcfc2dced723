"""The search-space language: includes, shared values, stage count, global tokens, merging, seeds, seed points,
and one test per validation error class, each asserting the file and the exact line it names."""

import textwrap
from pathlib import Path

import optuna
import pytest

from explorer.space import (
    SpaceError,
    arch_from_params,
    load_space,
    param_templates,
    parse_space,
    sample_arch,
    space_size,
)

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "tests" / "spaces" / "include"

BASE = """\
name: t
task: {name: trev, preset: smoke}
shared:
  w: {choice: [8, 16]}
stages:
  - depth: {choice: [1, 2]}
    width: {shared: w}
    mixer:
      choice:
        conv3d: {kernel_t: {choice: [1, 3]}}
        posmlp: {groups: 4, window: 8}
  - depth: 1
    width: {shared: w}
    mixer: {attention: {heads: 2}}
    merge: {choice: {none: {}, tome: {r: {choice: [4, 8]}}}}
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def random_archs(space, n: int, seed: int = 0):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for _ in range(n):
        trial = study.ask()
        yield trial, sample_arch(space, trial)
        study.tell(trial, 0.0)


# ------------------------------------------------------------------------------------------- error classes


@pytest.mark.parametrize(
    "text, line, field, fragment",
    [
        # bad shared reference: did-you-mean and the defined names
        (
            BASE.replace("width: {shared: w}\n    mixer:\n", "width: {shared: ww}\n    mixer:\n"),
            7,
            "stages[0].width.shared",
            "unknown shared value 'ww' (did you mean 'w'?); shared values: w",
        ),
        # a bad value inside a shared definition is reported at the definition
        (
            BASE.replace("w: {choice: [8, 16]}", "w: {choice: [8, 0]}"),
            4,
            "shared.w",
            "expected positive integers, got 0",
        ),
        # num_stages beyond the written stage templates
        (
            BASE.replace("stages:\n", "num_stages: {choice: [1, 3]}\nstages:\n"),
            5,
            "num_stages",
            "3 stages asked for, but only 2 stage template(s) are written (expected 1..2)",
        ),
        # objective whose mode contradicts the metric
        (
            BASE + "objectives:\n  - {metric: accuracy, mode: max}\n  - {metric: gflops, mode: max}\n",
            18,
            "objectives[1].mode",
            "expected mode 'min', got 'max'",
        ),
        # unknown objective metric: the allowed ones are listed
        (
            BASE + "objectives:\n  - {metric: acuracy, mode: max}\n  - {metric: gflops, mode: min}\n",
            17,
            "objectives[0].metric",
            "expected one of 'accuracy', 'gflops', 'params_m', 'latency_cpu_ms', 'latency_cuda_ms', "
            "'predicted_latency_cpu_ms', 'predicted_latency_cuda_ms', 'throughput_cpu', 'throughput_cuda', "
            "'peak_mem_cpu_mb', 'peak_mem_cuda_mb', 'latency_ms', 'predicted_latency_ms', 'throughput' or "
            "'peak_mem_mb', got 'acuracy' (did you mean 'accuracy'?)",
        ),
        # duplicate objective
        (
            BASE + "objectives:\n  - {metric: gflops, mode: min}\n  - {metric: gflops, mode: min}\n",
            18,
            "objectives[1].metric",
            "'gflops' is already objective 0",
        ),
        # seed point naming a parameter the space does not sample
        (
            BASE + "seed_points:\n  - {s0.depth: 2, s0.widht: 8}\n",
            17,
            "seed_points[0].s0.widht",
            "not a sampled parameter of this space (did you mean 's0.depth'?)",
        ),
        # seed point value outside the choices
        (
            BASE + "seed_points:\n  - {s0.depth: 2}\n  - {shared.w: 12}\n",
            18,
            "seed_points[1].shared.w",
            "12 is not allowed: expected one of [8, 16]",
        ),
        # unknown merge method and unknown merge field
        (
            BASE.replace("tome: {r:", "tomme: {r:"),
            15,
            "stages[1].merge.choice.tomme",
            "unknown merge method 'tomme' (did you mean 'tome'?); expected one of: none, tome, sttm",
        ),
        (
            BASE.replace("tome: {r:", "tome: {rr:"),
            15,
            "stages[1].merge.choice.tome.rr",
            "unknown merge field (did you mean 'r'?)",
        ),
        # global tokens: unknown key, negative count
        (
            BASE.replace(
                "    mixer:\n      choice:", "    global_tokens: {num: 2, widht: 8}\n    mixer:\n      choice:"
            ),
            8,
            "stages[0].global_tokens.widht",
            "unknown key (did you mean 'width'?); expected one of: num, width",
        ),
        (
            BASE.replace(
                "    mixer:\n      choice:", "    global_tokens: {num: {int: [-1, 4]}}\n    mixer:\n      choice:"
            ),
            8,
            "stages[0].global_tokens.num",
            "expected integers >= 0, got -1",
        ),
        # the costaware sampler named for objectives it cannot work out before training
        (
            BASE + "objectives:\n  - {metric: accuracy, mode: max}\n  - {metric: throughput, mode: max}\n"
            "sampler: {name: costaware}\n",
            19,
            "sampler.name",
            "the objectives here are accuracy, throughput_cpu",
        ),
        # a population for a sampler that has none
        (BASE + "sampler: {name: tpe, population: 8}\n", 16, "sampler.population", "only the nsga2 sampler"),
        # unknown sampler / scheduler names, wrong budget type
        (BASE + "scheduler: {name: hyperband}\n", 16, "scheduler.name", "expected one of 'fifo' or 'asha'"),
        (BASE + "budget: {gpus_per_trial: half}\n", 16, "budget.gpus_per_trial", "valid number"),
        (BASE + "budget: {init: kaiming}\n", 16, "budget.init", "expected one of 'width_scaled' or 'release'"),
        (BASE + "budget: {warmup: 1.5}\n", 16, "budget.warmup", "less than or equal to 1"),
        (BASE + "constraints: {max_latency_ms: -2}\n", 16, "constraints.max_latency_ms", "greater than 0"),
        # an int range with a bad step, a float range with a step
        (
            BASE.replace("depth: {choice: [1, 2]}", "depth: {int: [1, 4], step: 0}"),
            6,
            "stages[0].depth.step",
            "expected a positive integer step",
        ),
        # repeated choice
        (
            BASE.replace("kernel_t: {choice: [1, 3]}", "kernel_t: {choice: [3, 3]}"),
            10,
            "stages[0].mixer.choice.conv3d.kernel_t.choice",
            "repeated value in [3, 3]",
        ),
    ],
)
def test_language_errors_name_file_line_field(tmp_path, text, line, field, fragment):
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)
    assert fragment in err.message, str(err)


def test_error_inside_an_included_file_names_that_file_and_line():
    with pytest.raises(SpaceError) as info:
        load_space(INCLUDE / "bad_child.yaml")
    err = info.value
    assert (err.file, err.line, err.field) == (str(INCLUDE / "bad_base.yaml"), 7, "stages[0].mixer.conv3d.kernel_t")
    assert "must be odd for 'same' padding" in err.message


def test_include_cycle_is_an_error():
    with pytest.raises(SpaceError) as info:
        load_space(INCLUDE / "cycle_a.yaml")
    err = info.value
    assert (err.file, err.line, err.field) == (str(INCLUDE / "cycle_b.yaml"), 2, "include")
    assert err.message.startswith("include cycle: ") and err.message.count("cycle_a.yaml") == 2


def test_missing_include_names_the_including_line(tmp_path):
    path = write(tmp_path, "# a comment\nname: x\ninclude: nowhere.yaml\n")
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 3, "include")
    assert f"cannot read included file {tmp_path / 'nowhere.yaml'}" in info.value.message


def test_index_override_out_of_range_names_the_overriding_line(tmp_path):
    write(tmp_path, (INCLUDE / "base.yaml").read_text(), "base.yaml")
    path = write(tmp_path, "include: base.yaml\nname: x\nstages:\n  5: {depth: 2}\n")
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 4, "stages[5]")
    assert "index 5 overrides no item: the included list has 2 item(s) (0..1)" in info.value.message


def test_error_in_an_overridden_key_names_the_including_file(tmp_path):
    write(tmp_path, (INCLUDE / "base.yaml").read_text(), "base.yaml")
    path = write(tmp_path, "include: base.yaml\nname: x\nstages:\n  1:\n    mixer: {conv3d: {kernel_tt: 3}}\n")
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 5, "stages[1].mixer.conv3d.kernel_tt")


# ------------------------------------------------------------------------------------------- the language


def test_include_deep_merges_and_overrides_by_index():
    space = load_space(INCLUDE / "child.yaml")
    assert space.name == "child"
    assert (space.budget.trials, space.budget.epochs) == (6, 1)  # one key overridden, the other kept
    assert space.metric_names == ["accuracy", "params_m"]  # a list is replaced wholesale
    assert space.stages[0].width == {"choice": [8, 16]}  # item 0 kept
    assert space.stages[1].width == {"choice": [16, 32]}  # item 1 merged key by key ...
    assert space.stages[1].mixer == {"conv3d": {"kernel_t": 1}}  # ... keeping its other keys
    assert space.sampler.seed == 5
    assert parse_space(space.model_dump(mode="json")) == space.model_copy(update={"source": "<dict>"})


def test_top_level_seed_seeds_sampler_and_task_unless_they_set_their_own(tmp_path):
    space = load_space(write(tmp_path, BASE + "seed: 7\n"))
    assert (space.sampler.seed, space.task.seed) == (7, 7)
    space = load_space(write(tmp_path, BASE.replace("preset: smoke}", "preset: smoke, seed: 2}") + "seed: 7\n"))
    assert (space.sampler.seed, space.task.seed) == (7, 2)


def test_shared_value_is_sampled_once_and_merge_only_for_set_mixers(tmp_path):
    space = load_space(write(tmp_path, BASE))
    assert list(param_templates(space)) == [
        "s0.depth",
        "s0.mixer",
        "s0.conv3d.kernel_t",
        "s1.merge",
        "s1.merge.tome.r",
        "shared.w",
    ]
    methods = set()
    for trial, arch in random_archs(space, 30):
        assert arch.stages[0].width == arch.stages[1].width == trial.params["shared.w"]
        assert not any(k.endswith(".width") for k in trial.params)
        merge = arch.stages[1].merge
        methods.add(merge.method if merge else "none")
        assert ("s1.merge.tome.r" in trial.params) == (merge is not None)
        assert arch_from_params(space, trial.params) == arch
    assert methods == {"none", "tome"}
    # depth 2 x (conv3d kt 1|3 + posmlp) x width 2 x merge (none + tome r 4|8)
    assert space_size(space) == 2 * 3 * 2 * 3


def test_num_stages_uses_the_first_k_templates_and_samples_only_them(tmp_path):
    text = BASE.replace("stages:\n", "num_stages: {choice: [1, 2]}\nstages:\n")
    space = load_space(write(tmp_path, text))
    counts = set()
    for trial, arch in random_archs(space, 30):
        counts.add(len(arch.stages))
        assert trial.params["num_stages"] == len(arch.stages)
        assert ("s1.merge" in trial.params) == (len(arch.stages) == 2)
    assert counts == {1, 2}
    assert space_size(space) == 2 * 3 * 2 + 2 * 3 * 2 * 3  # one stage (12) + two stages (36)


def test_global_tokens_zero_means_none_and_no_width_is_sampled(tmp_path):
    text = """\
    name: mf
    task: {name: trev, preset: smoke}
    shared: {m: {int: [0, 2]}, tw: {choice: [16, 32]}}
    stages:
      - depth: 1
        width: 16
        mixer: mobile_former
        global_tokens: {num: {shared: m}, width: {shared: tw}}
      - depth: 1
        width: 32
        mixer: mobile_former
        global_tokens: {num: {shared: m}, width: {shared: tw}}
    """
    space = load_space(write(tmp_path, text))
    seen = set()
    for trial, arch in random_archs(space, 40, seed=1):
        tokens = [s.global_tokens for s in arch.stages]
        m = trial.params["shared.m"]
        if m == 0:
            assert tokens == [None, None] and "shared.tw" not in trial.params
        else:
            assert [(t.num, t.width) for t in tokens] == [(m, trial.params["shared.tw"])] * 2
        seen.add(m)
    assert seen == {0, 1, 2}
    # m = 0: one setting (no width); m = 1, 2: two widths each
    assert space_size(space) == 1 + 2 * 2


def test_space_size_matches_the_distinct_archs_random_sampling_finds(tmp_path):
    space = load_space(write(tmp_path, BASE.replace("stages:\n", "num_stages: {choice: [1, 2]}\nstages:\n")))
    hashes = {arch.content_hash for _, arch in random_archs(space, 400, seed=2)}
    assert len(hashes) == space_size(space) == 48


def test_continuous_space_has_no_size(tmp_path):
    space = load_space(write(tmp_path, BASE.replace("depth: 1\n", "depth: 1\n    mlp_ratio: {float: [1.0, 4.0]}\n")))
    assert space_size(space) is None
    assert param_templates(space)["s1.mlp_ratio"] == {"float": [1.0, 4.0]}


def test_seed_points_validated_and_kept(tmp_path):
    space = load_space(write(tmp_path, BASE + "seed_points:\n  - {s0.depth: 2, s0.mixer: posmlp, shared.w: 16}\n"))
    assert space.seed_points == [{"s0.depth": 2, "s0.mixer": "posmlp", "shared.w": 16}]
    arch = arch_from_params(space, {**space.seed_points[0], "s1.merge": "none"})
    assert arch.summary() == "posmlp d2 w16 | attention d1 w16"


def test_shared_mixer_kind_with_per_stage_options(tmp_path):
    text = """\
    name: sm
    task: {name: trev, preset: smoke}
    shared: {mix: {choice: [conv3d, posmlp]}}
    stages:
      - {depth: 1, width: 8, mixer: {shared: mix, options: {conv3d: {kernel_t: {choice: [1, 3]}}}}}
      - {depth: 1, width: 16, mixer: {shared: mix}}
    """
    space = load_space(write(tmp_path, text))
    assert list(param_templates(space)) == ["s0.conv3d.kernel_t", "shared.mix"]
    for trial, arch in random_archs(space, 12):
        assert arch.stages[0].mixer.kind == arch.stages[1].mixer.kind == trial.params["shared.mix"]
    assert space_size(space) == 3


def test_tiny_demo_space_keeps_its_meaning():
    space = load_space(ROOT / "search_spaces" / "tiny.yaml")
    assert (space.budget.trials, space.sampler.name, space.metric_names) == (8, "costaware", ["accuracy", "gflops"])
    assert space_size(space) == (2 * 2 * 3) ** 2


def test_readme_worked_example_loads_counts_and_builds(tmp_path):
    import re

    from explorer.models import build

    text = (ROOT / "search_spaces" / "README.md").read_text()
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "proxy.yaml").write_text((ROOT / "search_spaces" / "base" / "proxy.yaml").read_text())
    path = tmp_path / "my.yaml"
    path.write_text(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    space = load_space(path)
    assert (space.budget.trials, space.budget.epochs, space.sampler.seed, space.task.seed) == (48, 24, 3, 3)
    assert space.scheduler.name == "asha" and space.constraints.max_latency_ms == 20
    # stage 0: depth 2 x width 2 x (posmlp + mobile_former k_t 1|3); x order 2 x tokens 2; stage 2: merge 1 + 2
    assert space_size(space) == 12 * 4 + 12 * 4 * 3
    arch = arch_from_params(
        space, {**space.seed_points[0], "shared.tokens": 6, "num_stages": 3, "s2.merge": "tome", "s2.merge.tome.r": 4}
    )
    assert arch.summary() == "posmlp d1 w16 | posmlp d1 w64 | attention d1 w64 +tome r4"
    assert [s.global_tokens.num if s.global_tokens else 0 for s in arch.stages] == [6, 6, 0]
    build(arch)
