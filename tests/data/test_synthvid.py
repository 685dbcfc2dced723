"""Tests for the synthetic tasks (explorer/data/synthvid/), above all the reversal-pairs task T-rev."""

import dataclasses
import time

import numpy as np
import pytest
import torch

from explorer.data import PRESETS, ProxyData, load_task
from explorer.data import synthvid as sv
from explorer.data.synthvid import loader, sampling

# Nuisances off: the only randomness left is in the target tracks and the background.
CLEAN = dataclasses.replace(PRESETS["smoke"], distractors=0, noise_sigma=0.0, pan=0.0)
TINY = dataclasses.replace(PRESETS["demo"], n_train=60, n_test=30)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> ProxyData:
    return load_task("trev", "smoke", seed=0, cache_dir=tmp_path_factory.mktemp("cache"))


def test_smoke_shapes_dtypes_and_labels(smoke: ProxyData) -> None:
    assert smoke.name == "trev/smoke"
    assert smoke.train_x.shape == (384, 3, 8, 32, 32)
    assert smoke.test_x.shape == (192, 3, 8, 32, 32)
    assert smoke.train_x.dtype == smoke.test_x.dtype == torch.uint8
    assert smoke.train_y.shape == (384,) and smoke.test_y.shape == (192,)
    assert smoke.train_y.dtype == smoke.test_y.dtype == torch.int64
    for y in (smoke.train_y, smoke.test_y):
        assert int(y.min()) == 0 and int(y.max()) == 11
    assert smoke.num_classes == 12
    assert smoke.class_names[:2] == ["translate_x+", "translate_x-"]
    assert len(set(smoke.class_names)) == 12
    assert len(smoke.content_hash) == 16 and int(smoke.content_hash, 16) >= 0
    assert smoke.train_x.float().std() > 10  # not a blank canvas


def test_classes_are_balanced_and_shuffled(smoke: ProxyData) -> None:
    assert torch.bincount(smoke.train_y, minlength=12).tolist() == [32] * 12
    assert torch.bincount(smoke.test_y, minlength=12).tolist() == [16] * 12
    assert not torch.equal(smoke.train_y, smoke.train_y.sort().values)
    counts = sv.class_counts(50)
    assert counts.sum() == 50 and counts.max() - counts.min() == 1
    labels = sv.generate_arrays(dataclasses.replace(TINY, n_train=50), 0)["train_y"]
    assert np.bincount(labels, minlength=12).tolist() == counts.tolist()


def test_same_seed_is_bitwise_identical_and_seeds_differ() -> None:
    a, b = sv.generate_arrays(TINY, 0), sv.generate_arrays(TINY, 0)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    c = sv.generate_arrays(TINY, 1)
    assert not np.array_equal(a["train_x"], c["train_x"])
    # train and test come from different child seeds: no clip appears in both splits
    train = {clip.tobytes() for clip in a["train_x"]}
    assert not any(clip.tobytes() in train for clip in a["test_x"])


def test_cache_round_trip_reads_the_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_task("trev", "smoke", seed=1, cache_dir=tmp_path, n_train=48, n_test=24)
    path = tmp_path / f"synthvid-{first.content_hash}.npz"
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind

    def must_not_generate(*args: object, **kwargs: object) -> None:
        raise AssertionError("second load should come from the cache")

    monkeypatch.setattr(loader, "generate_arrays", must_not_generate)
    second = load_task("trev", "smoke", seed=1, cache_dir=tmp_path, n_train=48, n_test=24)
    assert second.content_hash == first.content_hash and second.config == first.config
    for key in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(first, key), getattr(second, key)), key


def test_default_cache_dir_comes_from_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    data = load_task("trev", "smoke", seed=2, n_train=24, n_test=12)
    assert (tmp_path / f"synthvid-{data.content_hash}.npz").is_file()


def test_corrupt_cache_file_is_regenerated(tmp_path) -> None:
    config = sv.make_config("trev", "smoke", n_train=24, n_test=12)
    path = tmp_path / f"synthvid-{sv.content_hash(config, 0)}.npz"
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        data = load_task("trev", "smoke", seed=0, cache_dir=tmp_path, n_train=24, n_test=12)
    assert data.train_x.shape[0] == 24
    assert load_task("trev", "smoke", seed=0, cache_dir=tmp_path, n_train=24, n_test=12).train_x.equal(data.train_x)


def test_hash_identifies_config_and_seed() -> None:
    base = sv.make_config("trev", "demo")
    assert sv.content_hash(sv.make_config("trev", "demo", noise_sigma=0), 0) == sv.content_hash(
        sv.make_config("trev", "demo", noise_sigma=0.0), 0
    )  # coerced to float
    assert sv.content_hash(base, 0) != sv.content_hash(base, 1)
    assert sv.content_hash(base, 0) != sv.content_hash(sv.make_config("trev", "demo", frames=16), 0)
    assert sv.content_hash(base, 0) != sv.content_hash(dataclasses.replace(base, version=base.version + 1), 0)


@pytest.mark.parametrize("primitive", range(len(sv.PRIMITIVES)))
def test_reversed_class_is_exactly_the_time_reversed_clip(primitive: int) -> None:
    """Class 2p+1 rendered from the same tracks as class 2p is the same video played backwards."""
    n = 6
    forward = sv.render_primitive_batch(primitive, np.zeros(n, int), CLEAN, np.random.default_rng(7))
    reverse = sv.render_primitive_batch(primitive, np.ones(n, int), CLEAN, np.random.default_rng(7))
    assert torch.equal(reverse, forward.flip(2))
    assert not torch.equal(reverse, forward)  # the primitive really moves something
    # a frame-order-agnostic statistic (per-clip sum/mean over time) cannot tell them apart
    assert torch.equal(forward.long().sum(dim=2), reverse.long().sum(dim=2))
    assert torch.equal(forward.float().mean(dim=2), reverse.float().mean(dim=2))


def test_render_scene_of_reversed_tracks_is_reversed_video() -> None:
    """Directly on explicit tracks, with a mix of reversed and untouched clips."""
    rng = np.random.default_rng(3)
    targets = sv.sample_targets(sv.PRIMITIVES.index("converge"), 4, CLEAN, rng)
    scene = sv.sample_background(4, CLEAN, rng)
    which = np.array([True, False, True, False])
    forward = sv.render_scene(dataclasses.replace(scene, layers=targets), CLEAN.resolution)
    mixed = sv.render_scene(
        dataclasses.replace(scene, layers=[t.time_reversed(which) for t in targets]), CLEAN.resolution
    )
    assert torch.equal(mixed[which], forward[which].flip(2))
    assert torch.equal(mixed[~which], forward[~which])


def test_nuisances_are_reversal_symmetric() -> None:
    config = PRESETS["demo"]
    rng = np.random.default_rng(0)
    crop = sv.sample_background(64, config, rng).crop  # (B, T, 2) top-left of each frame's window
    margin = int(np.ceil(config.pan * (config.frames - 1) / 2))
    # the pan path is centred on the middle frame, so reversed it is the opposite-direction pan
    # (an equally likely draw, the direction being uniform on the circle)
    assert np.array_equal(crop + crop[:, ::-1], np.full_like(crop, 2 * margin))
    assert (crop[:, 0] != crop[:, -1]).any()  # the camera does move
    below, above = sv.sample_distractors(64, dataclasses.replace(config, distractors=2), rng)
    for lo, hi in zip(below, above):
        assert np.array_equal(lo.opacity + hi.opacity, np.ones_like(lo.opacity))  # drawn exactly once


def test_unknown_names_raise_value_error_naming_allowed_values(tmp_path) -> None:
    with pytest.raises(ValueError, match="preset\n.*'smoke', 'demo', 'proxy' or 'hard'"):
        load_task("trev", "nope", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="name\n.*'trev', 'a', 'c' or 'tord'"):
        load_task("rev", "smoke", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="allowed presets: smoke, demo, proxy, hard"):
        sv.make_config("trev", "nope")
    with pytest.raises(ValueError, match="allowed: .*frames"):
        load_task("trev", "smoke", cache_dir=tmp_path, fps=30)
    with pytest.raises(ValueError, match="frames"):
        load_task("trev", "smoke", cache_dir=tmp_path, frames=1)
    assert list(tmp_path.iterdir()) == []


def test_demo_generation_time(capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    arrays = sv.generate_arrays(PRESETS["demo"], 0)
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\n[synthvid] demo preset (2000 + 500 clips, 8x32x32) generated in {seconds:.2f} s "
            f"(torch single-threaded while generating)"
        )
    assert arrays["train_x"].shape == (2000, 3, 8, 32, 32)
    assert seconds <= 30.0  # sanity bound only; target is <= 5 s


def test_tord_frame_multiset_is_class_free_with_demo_nuisances() -> None:
    """T-ord keeps camera and distractors still, so even with the demo preset's pan and distractor (noise off) every
    order has exactly the same frames: a moving nuisance would tag the time slots (a pan centred on the middle frame
    marks the middle slot) and let a frame-order-agnostic model beat chance."""
    config = dataclasses.replace(PRESETS["demo"], task="tord", noise_sigma=0.0, distractors=2)
    clips = [sv.render_order_batch(np.full(4, perm), config, np.random.default_rng(5)) for perm in range(6)]
    for c in range(4):
        frames = sorted(clips[0][c][:, t].numpy().tobytes() for t in range(config.frames))
        for p in range(1, 6):
            assert sorted(clips[p][c][:, t].numpy().tobytes() for t in range(config.frames)) == frames
            assert not torch.equal(clips[p][c], clips[0][c])


def test_tord_objects_are_one_sprite_hopping_two_frames() -> None:
    """With nuisances off, each hop changes the scene for exactly 2 frames at T = 8, and the three objects are copies
    of one sprite: the left, middle and right thirds of the rest frame hold the same pixels up to sub-pixel shifts."""
    clip = sv.render_order_batch(np.array([0]), dataclasses.replace(CLEAN, task="tord"), np.random.default_rng(2))[0]
    assert sv.tord_schedule(8).tolist() == [-1, 0, 0, 1, 1, 2, 2, -1]
    rest = clip[:, 0].float()
    assert torch.equal(clip[:, 0], clip[:, 7])  # rest before and after the three hops
    changed = [(clip[:, t].float() - rest).abs().sum() > 0 for t in range(8)]
    assert changed == [False] + [True] * 6 + [False]
    colours = [rest[:, :, i * 32 // 3 : (i + 1) * 32 // 3].reshape(3, -1) for i in range(3)]
    # each third holds one object: its most saturated pixel has the same colour in all three thirds
    vivid = [c[:, (c.max(0).values - c.min(0).values).argmax()] for c in colours]
    assert all(torch.allclose(v, vivid[0], atol=3) for v in vivid)


def test_appearance_sprites_are_large_outlined_and_near_upright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Task A (generator v2): sprites of radius 0.28-0.34 x 32 px (+-20 % wobble), tilted by at most 13.5 deg at T = 8
    (the square and the diamond, a 45 deg turn apart, stay different classes), with a dark rim under them."""
    config = dataclasses.replace(CLEAN, task="a")
    tracks = []
    real_track = sampling.make_track

    def spy(*args, **kwargs):
        tracks.append(real_track(*args, **kwargs))
        return tracks[-1]

    monkeypatch.setattr(sampling, "make_track", spy)  # patched where render_appearance_batch looks it up
    outlined = sv.render_appearance_batch(np.arange(10).repeat(4), config, np.random.default_rng(4))
    (target,) = tracks
    assert np.abs(np.rad2deg(target.angle)).max() <= 10.0 + 1.0 * 3.5 + 1e-4
    assert 0.28 * 32 * 0.8 - 1e-4 <= target.radius.min() and target.radius.max() <= 0.34 * 32 * 1.2 + 1e-4
    monkeypatch.setattr(sampling, "A_OUTLINE", 0.0)
    plain = sv.render_appearance_batch(np.arange(10).repeat(4), config, np.random.default_rng(4))

    def dark(clips: torch.Tensor) -> torch.Tensor:  # pixels darker than any vivid colour or background: the rim
        return (clips.amax(dim=1) < 64).flatten(1).sum(-1)

    assert (dark(outlined) > dark(plain) + 8).all()  # every clip has a rim of dark pixels


def test_split_into_a_package_keeps_hashes_and_determinism(smoke: ProxyData) -> None:
    """The trev/smoke seed-0 dataset keeps the content hash (and so the cache file name) it had before synthvid
    became a package, and a tiny generation of every task is deterministic."""
    assert smoke.content_hash == "60f701f38b31ad62"
    assert sv.content_hash(sv.make_config("trev", "smoke"), 0) == "60f701f38b31ad62"
    for task in sv.TASKS:
        config = sv.make_config(task, "smoke", n_train=16, n_test=8)
        a, b = sv.generate_arrays(config, 0), sv.generate_arrays(config, 0)
        assert a.keys() == b.keys() == {"train_x", "train_y", "test_x", "test_y"}
        for key in a:
            assert np.array_equal(a[key], b[key]), (task, key)
