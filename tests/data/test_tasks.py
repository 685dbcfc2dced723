"""synthvid tasks A, C, T-ord, presets and the TaskConfig interface (no training here; see test_leakage.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from explorer.data import PRESETS, TaskConfig, load_task, task_class_names, task_shape
from explorer.data import synthvid as sv
from explorer.data.leakage import direction_accuracy, exceeds_bound, shuffle_frames, upper_limit
from explorer.data.synthvid import loader, sampling

CLEAN = dataclasses.replace(PRESETS["smoke"], distractors=0, noise_sigma=0.0, pan=0.0)


def _frame_multiset(clip: torch.Tensor) -> list[bytes]:
    """A clip's frames as a sorted list of byte strings: equal iff the clips have the same frames in any order."""
    return sorted(clip[:, t].numpy().tobytes() for t in range(clip.shape[1]))


@pytest.mark.parametrize("frames", [8, 16])
def test_tord_every_order_has_the_same_frame_multiset(frames: int) -> None:
    config = dataclasses.replace(CLEAN, task="tord", frames=frames)
    clips = [sv.render_order_batch(np.full(3, perm), config, np.random.default_rng(7)) for perm in range(6)]
    for c in range(3):
        reference = _frame_multiset(clips[0][c])
        assert all(_frame_multiset(clips[p][c]) == reference for p in range(1, 6))
        assert not torch.equal(clips[0][c], clips[1][c])  # ... while the videos differ (order carries the class)


def test_leaky_tord_breaks_the_multiset_guarantee() -> None:
    config = dataclasses.replace(CLEAN, task="tord", leak=1)
    first, second = (sv.render_order_batch(np.array([p]), config, np.random.default_rng(7)) for p in (0, 5))
    assert _frame_multiset(first[0]) != _frame_multiset(second[0])


def test_tord_schedule_equal_slots() -> None:
    assert sv.tord_schedule(8).tolist() == [-1, 0, 0, 1, 1, 2, 2, -1]  # 2-frame hops, back to back (v2)
    assert sv.tord_schedule(16).tolist() == [-1, 0, 0, -1, -1, -1, 1, 1, -1, -1, -1, 2, 2, -1, -1, -1]
    assert sv.tord_schedule(8, leak=True).tolist() == [0, -1, 1, 1, -1, 2, 2, 2]
    for frames in (6, 8, 9, 12, 16):
        counts = np.bincount(sv.tord_schedule(frames) + 1, minlength=4)[1:]
        assert len(set(counts)) == 1  # every event lasts equally long


def test_tord_class_is_the_hop_order() -> None:
    """With nuisances off, the frame where the left/middle/right object is highest follows the permutation."""
    config = dataclasses.replace(CLEAN, task="tord")
    for perm_id, perm in enumerate(sv.TORD_PERMS):
        clip = sv.render_order_batch(np.array([perm_id]), config, np.random.default_rng(3))[0].float()
        diff = (clip - clip[:, :1]).abs().sum(dim=0)  # (T, H, W) change against the rest frame
        slots = [t for t in range(config.frames) if diff[t].sum() > 0]
        third = config.resolution // 3
        movers = [
            int(torch.stack([diff[t][:, i * third : (i + 1) * third].sum() for i in range(3)]).argmax()) for t in slots
        ]  # which third of the width changed
        assert slots == [1, 2, 3, 4, 5, 6] and movers == [rank for rank in perm for _ in range(2)]


def test_appearance_label_is_the_sprite() -> None:
    config = dataclasses.replace(CLEAN, task="a")
    a = sv.render_appearance_batch(np.array([0, 1]), config, np.random.default_rng(0))
    b = sv.render_appearance_batch(np.array([0, 4]), config, np.random.default_rng(0))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])  # same draws, only the sprite changed
    assert a.shape == (2, 3, 8, 32, 32)


def test_compositional_split_holds_out_combinations(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, set] = {"train": set(), "test": set()}
    real = sv.render_compositional_batch
    split = {"now": "train"}

    def spy(motion, shapes, config, rng):
        seen[split["now"]].update((int(s), motion) for s in shapes)
        return real(motion, shapes, config, rng)

    monkeypatch.setattr(sampling, "render_compositional_batch", spy)
    config = dataclasses.replace(CLEAN, task="c", n_train=240, n_test=120)
    for name, n in (("train", 240), ("test", 120)):
        split["now"] = name
        _, labels = sv.generate_split(config, n, np.random.default_rng(1), name)
        assert np.bincount(labels).tolist() == [n // 6] * 6
    assert seen["test"] == set(sv.C_HELD_OUT) and len(seen["test"]) == 8
    assert seen["train"] == {(s, m) for s in range(4) for m in range(6)} - set(sv.C_HELD_OUT)
    for m in range(6):  # every motion is trained with >= 2 shapes and tested on a shape it never appeared with
        assert sum((s, m) in seen["train"] for s in range(4)) >= 2
        assert any((s, m) in seen["test"] for s in range(4))


@pytest.mark.parametrize(("task", "classes"), [("trev", 12), ("a", 10), ("c", 6), ("tord", 6)])
def test_every_task_loads_balanced_smoke_data(tmp_path, task: str, classes: int) -> None:
    data = load_task(task, "smoke", seed=0, cache_dir=tmp_path, n_train=classes * 4, n_test=classes * 2)
    assert data.num_classes == classes == len(data.class_names)
    assert tuple(data.train_x.shape) == (classes * 4, 3, 8, 32, 32) and data.train_x.dtype == torch.uint8
    assert np.bincount(data.train_y.numpy()).tolist() == [4] * classes
    assert task_shape({"name": task, "preset": "smoke"})["num_classes"] == classes


def test_task_shape_needs_no_data(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "generate_arrays", lambda *a, **k: pytest.fail("generated data"))
    assert task_shape("trev") == {"frames": 8, "resolution": 32, "in_chans": 3, "num_classes": 12}
    assert task_shape(TaskConfig(name="tord", preset="hard")) == {
        "frames": 16,
        "resolution": 48,
        "in_chans": 3,
        "num_classes": 6,
    }
    assert task_shape({"name": "a", "preset": "proxy"}) == {
        "frames": 8,
        "resolution": 32,
        "in_chans": 3,
        "num_classes": 10,
    }
    assert TaskConfig().name == "trev" and TaskConfig().preset == "demo"


def test_presets_and_class_names() -> None:
    assert list(PRESETS) == ["smoke", "demo", "proxy", "hard"]
    assert (PRESETS["demo"].n_train, PRESETS["demo"].frames, PRESETS["demo"].resolution) == (2000, 8, 32)
    assert task_class_names("tord") == ["LMR", "LRM", "MLR", "MRL", "RLM", "RML"]
    assert task_class_names("c") == ["translate_x+", "translate_x-", "translate_y+", "translate_y-", "scale+", "scale-"]
    with pytest.raises(ValueError, match="allowed tasks: trev, a, c, tord"):
        task_class_names("x")


def test_leakage_helpers_exact_values() -> None:
    logits = torch.tensor([[0.0, 1.0, 0, 0], [0, 0, 2.0, 1.0], [5.0, 0, 0, 0]])
    assert direction_accuracy(logits, torch.tensor([1, 2, 3])) == pytest.approx(2 / 3)
    assert upper_limit(0.5, 100) == pytest.approx(0.65)
    assert exceeds_bound(0.66, 0.5, 100) and not exceeds_bound(0.64, 0.5, 100)
    clips = torch.arange(2 * 1 * 6).reshape(2, 1, 6, 1, 1)
    shuffled = shuffle_frames(clips, seed=1)
    assert not torch.equal(shuffled, clips)
    assert torch.equal(shuffled.sort(dim=2).values, clips)  # same frames, new order, per clip


def test_validation_split_is_stratified_disjoint_and_seeded():
    import torch

    from explorer.data import load_task, with_validation

    data = load_task("trev", "smoke", seed=0)
    split = with_validation(data, 0.25, seed=3)
    assert len(split.train_x) + len(split.val_x) == len(data.train_x)
    assert torch.equal(split.test_x, data.test_x)
    for label in range(data.num_classes):
        n = int((data.train_y == label).sum())
        assert int((split.val_y == label).sum()) == round(0.25 * n)
    # every training clip lands in exactly one split
    flat = lambda x: {bytes(c.flatten().numpy()) for c in x}  # noqa: E731
    assert flat(split.train_x) | flat(split.val_x) == flat(data.train_x)
    assert not flat(split.train_x) & flat(split.val_x)
    again = with_validation(data, 0.25, seed=3)
    assert torch.equal(again.val_y, split.val_y) and torch.equal(again.val_x, split.val_x)
    assert not torch.equal(with_validation(data, 0.25, seed=4).val_x, split.val_x)
