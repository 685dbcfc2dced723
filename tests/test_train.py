import pytest
import torch
import torch.nn as nn

from explorer.data import load_task
from explorer.models import preset
from explorer.train import TrainConfig, train_arch, train_epochs


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return load_task("trev", "smoke", seed=0, cache_dir=tmp_path_factory.mktemp("cache"))


def test_reports_every_epoch_and_is_deterministic(smoke):
    cfg = TrainConfig(epochs=2, batch_size=32, seed=1)
    first = train_arch(preset("conv3d_tiny"), smoke, cfg)
    assert [r.epoch for r in first] == [1, 2]
    assert all(0.0 <= r.accuracy <= 1.0 for r in first)
    assert first[1].train_time_s > first[0].train_time_s > 0
    second = train_arch(preset("conv3d_tiny"), smoke, cfg)
    assert [r.accuracy for r in first] == [r.accuracy for r in second]
    assert [r.train_loss for r in first] == [r.train_loss for r in second]


def test_thread_count_follows_the_cpu_share(smoke):
    before = torch.get_num_threads()
    try:
        next(iter(train_epochs(_Tiny(), smoke, TrainConfig(epochs=1, threads=1))))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


class _Tiny(nn.Module):
    def __init__(self, poison: bool = False):
        super().__init__()
        self.fc = nn.Linear(3, 12)
        self.poison = poison

    def forward(self, x):
        out = self.fc(x.mean(dim=(2, 3, 4)))
        return out * float("nan") if self.poison else out


def test_nan_loss_raises_with_epoch_and_step(smoke):
    with pytest.raises(FloatingPointError, match="loss became nan at epoch 1, step 0"):
        list(train_epochs(_Tiny(poison=True), smoke, TrainConfig(epochs=1)))


def test_spec_task_mismatch_is_caught(smoke):
    from explorer.models import build

    model = build(preset("posmlp_video_72d"))
    with pytest.raises(ValueError, match="does not match the task's clips 3x8x32x32, 12 classes"):
        list(train_epochs(model, smoke, TrainConfig(epochs=1)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_bf16_autocast_matches_the_cpu_closely(smoke):
    cfg = TrainConfig(epochs=1, seed=0)
    cpu = train_arch(preset("conv3d_tiny"), smoke, cfg)
    gpu = train_arch(preset("conv3d_tiny"), smoke, TrainConfig(epochs=1, seed=0, device="cuda", amp=True))
    assert 0.0 <= gpu[0].accuracy <= 1.0
    # same seed, same batches: bf16 moves the loss a little, not a lot
    assert gpu[0].train_loss == pytest.approx(cpu[0].train_loss, rel=0.05)


@pytest.mark.parametrize(
    "name, exempt",
    [
        ("vit_tiny_sttm", {"stem.pos_embed"}),
        ("mobile_former_tiny", {"global_tokens.embed"}),
        ("posmlp_tiny", {f"stages.{i}.0.{axis}.unit.mix.table" for i in (0, 1) for axis in ("spatial", "temporal")}),
    ],
)
def test_no_weight_decay_names_every_learned_embedding(name, exempt):
    from explorer.models import build

    model = build(preset(name))
    assert model.no_weight_decay() == exempt
    assert exempt <= dict(model.named_parameters()).keys()


def test_filter_decay_exempts_norms_biases_and_embeddings():
    from explorer.models import build
    from explorer.train import make_optimizer

    model = build(preset("vit_tiny_sttm"))
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {
        g["weight_decay"]: {names[id(p)] for p in g["params"]}
        for g in make_optimizer(model, TrainConfig(filter_decay=True, weight_decay=0.05)).param_groups
    }
    expected = {n for n, p in model.named_parameters() if p.ndim <= 1} | {"stem.pos_embed"}
    assert groups[0.0] == expected
    assert groups[0.05] == set(names.values()) - expected
    assert all("weight" in n and "norm" not in n for n in groups[0.05])
    plain = make_optimizer(model, TrainConfig(weight_decay=0.05)).param_groups
    assert len(plain) == 1 and plain[0]["weight_decay"] == 0.05  # the default decays every parameter, as before


def test_gradient_clipping_and_warmup_steps_change_training_deterministically(smoke):
    arch = preset("conv3d_tiny")
    plain = train_arch(arch, smoke, TrainConfig(epochs=1, seed=0, threads=1))
    clipped = [
        train_arch(arch, smoke, TrainConfig(epochs=1, seed=0, threads=1, clip_grad=0.05, warmup_steps=2))
        for _ in range(2)
    ]
    assert clipped[0][0].train_loss == clipped[1][0].train_loss
    assert clipped[0][0].train_loss != plain[0].train_loss


def test_with_a_validation_split_accuracy_is_validation_and_test_is_beside_it(smoke):
    from explorer.data import with_validation
    from explorer.models import build
    from explorer.train import evaluate

    data = with_validation(smoke, 0.25, seed=0)
    model = build(preset("conv3d_tiny"))
    for result in train_epochs(model, data, TrainConfig(epochs=1, seed=0, threads=1)):
        assert result.accuracy == evaluate(model, data.val_x, data.val_y)
        assert result.test_accuracy == evaluate(model, data.test_x, data.test_y)
    plain = list(train_epochs(build(preset("conv3d_tiny")), smoke, TrainConfig(epochs=1, seed=0, threads=1)))
    assert plain[0].test_accuracy is None  # no validation split: accuracy is the test accuracy, as before


def test_width_scaled_init_sets_the_gain_and_keeps_zero_init_parts():
    from explorer.models import build
    from explorer.train import RELEASE_GAIN, width_scaled_init

    torch.manual_seed(0)
    model = build(preset("morphmlp_tiny"))  # MorphFC_t's W_t starts at zero by design
    zero = {n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not m.weight.abs().max() > 0}
    width_scaled_init(model)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert zero and all(not linears[n].weight.abs().max() > 0 for n in zero)
    wide = [m for n, m in linears.items() if n not in zero and m.weight.numel() >= 2048]
    assert wide and all(
        m.weight.std().item() * m.in_features**0.5 == pytest.approx(RELEASE_GAIN, rel=0.15) for m in wide
    )
    assert RELEASE_GAIN == pytest.approx(0.02 * 768**0.5)


def test_init_gain_makes_a_branch_start_equally_strong_at_every_width(smoke):
    """At width 32 the releases' σ = 0.02 leaves a residual MLP branch several times weaker (its output over its
    input, at init) than at width 768; with the width-scaled init its strength no longer depends on the width."""
    from explorer.blocks.layers import init_linear
    from explorer.train import width_scaled_init

    def relative_output(width: int, scaled: bool) -> float:
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        mlp.apply(init_linear)
        if scaled:
            width_scaled_init(mlp)
        x = torch.randn(4096, width)
        return (mlp(x).std() / x.std()).item()

    assert relative_output(32, scaled=False) < relative_output(768, scaled=False) / 3
    assert relative_output(32, scaled=True) == pytest.approx(relative_output(768, scaled=True), rel=0.2)
    with_gain = list(train_epochs(build_preset("conv3d_tiny"), smoke, TrainConfig(epochs=1, threads=1, init_gain=0.55)))
    without = list(train_epochs(build_preset("conv3d_tiny"), smoke, TrainConfig(epochs=1, threads=1)))
    assert with_gain[0].train_loss != without[0].train_loss


def build_preset(name: str):
    from explorer.models import build

    torch.manual_seed(0)
    return build(preset(name))


def test_a_search_trains_with_its_budget():
    """Every budget key reaches the TrainConfig of a trial (a key that is parsed but never passed on does nothing)."""
    from explorer.search.trial import train_config
    from explorer.space import parse_space
    from explorer.train import RELEASE_GAIN

    space = parse_space(
        {
            "name": "b",
            "task": {"name": "trev", "preset": "smoke", "seed": 4},
            "budget": {"epochs": 5, "batch_size": 24, "lr": 0.002, "warmup": 0.3, "cpus_per_trial": 2},
            "stages": [{"depth": 1, "width": 8, "mixer": {"conv3d": {}}}],
        }
    )
    cfg = train_config(space, threads=2)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.warmup_frac, cfg.seed, cfg.threads, cfg.device) == (
        5,
        24,
        0.002,
        0.3,
        4,
        2,
        "cpu",
    )
    assert cfg.init_gain == RELEASE_GAIN
    released = parse_space({**space.model_dump(mode="json"), "budget": {"init": "release"}})
    assert train_config(released, threads=1).init_gain is None
