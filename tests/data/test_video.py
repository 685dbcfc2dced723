"""Real-video loader (explorer/data/video.py, explorer/data/tasks.py) on MP4/WebM/AVI files encoded here with PyAV."""

import json
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from explorer.data import DatasetConfig, TaskConfig, load_task, task_shape
from explorer.data import video as vid

CLASSES = ("jumping", "walking")  # sorted: jumping = 0 (red clips), walking = 1 (blue clips)
COLOURS = {0: (200, 30, 30), 1: (30, 30, 200)}
FRAMES = 16


def _ramp(label: int, frames: int = FRAMES) -> np.ndarray:
    """(T, 32, 48, 3): the class colour, with frame i brightened by 8*i in green (so sampling is visible)."""
    clip = np.empty((frames, 32, 48, 3), dtype=np.uint8)
    clip[:] = COLOURS[label]
    clip[..., 1] = (20 + 8 * np.arange(frames))[:, None, None]
    return clip


def write_video(path: Path, clip: np.ndarray, codec: str = "libx264") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = clip.shape[2], clip.shape[1], "yuv420p"
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """UCF-style tree root/<class>/v_<class>_gNN.mp4: 3 clips per class, g01-g02 train, g03 test."""
    root = tmp_path_factory.mktemp("videos")
    for label, name in enumerate(CLASSES):
        for g in (1, 2, 3):
            write_video(root / name / f"v_{name}_g{g:02d}.mp4", _ramp(label))
    return root


def _labels_match_colour(data) -> None:
    """Every decoded clip has its class colour: red dominates for class 0, blue for class 1."""
    for x, y in ((data.train_x, data.train_y), (data.test_x, data.test_y)):
        red = x[:, 0].float().mean(dim=(1, 2, 3))
        blue = x[:, 2].float().mean(dim=(1, 2, 3))
        assert ((red > blue).long() == (1 - y)).all()


def test_sample_indices_uniform_and_dense() -> None:
    assert vid.sample_indices(16, 4, "uniform").tolist() == [2, 6, 10, 14]
    assert vid.sample_indices(20, 4, "dense", stride=2).tolist() == [6, 8, 10, 12]
    assert vid.sample_indices(3, 4, "dense", stride=2).tolist() == [0, 2, 2, 2]  # short video: clamped
    assert vid.sample_indices(5, 8, "uniform").tolist() == [0, 0, 1, 2, 2, 3, 4, 4]
    with pytest.raises(ValueError, match="allowed: uniform, dense"):
        vid.sample_indices(10, 4, "random")


@pytest.mark.parametrize(("codec", "suffix"), [("libx264", ".mp4"), ("libvpx-vp9", ".webm"), ("mpeg4", ".avi")])
def test_decode_clip_samples_the_right_frames(tmp_path: Path, codec: str, suffix: str) -> None:
    path = write_video(tmp_path / f"clip{suffix}", _ramp(0), codec)  # the webm has no frame count in its header
    uniform = vid.decode_clip(vid.Sample(path, 0), frames=4, resolution=16, sampling="uniform")
    assert uniform.shape == (3, 4, 16, 16) and uniform.dtype == np.uint8
    green = uniform[1].reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(green, 20 + 8 * np.array([2, 6, 10, 14]), atol=4)
    dense = vid.decode_clip(vid.Sample(path, 0), frames=3, resolution=16, sampling="dense", stride=3)
    np.testing.assert_allclose(dense[1].reshape(3, -1).mean(axis=1), 20 + 8 * np.array([4, 7, 10]), atol=4)


def test_resize_keeps_aspect_then_centre_crops(tmp_path: Path) -> None:
    clip = np.zeros((2, 32, 64, 3), dtype=np.uint8)
    clip[:, :, 16:48] = 255  # a white band in the middle half of the width
    out = vid._resize_crop(clip, 16)  # 32x64 -> 16x32 -> centre 16x16 = the band
    assert out.shape == (3, 2, 16, 16) and out[..., 1:-1].min() == 255  # antialiasing softens only the rim
    assert 128 < out[..., 0].min() < 255


def _ucf_lists(root: Path) -> None:
    ann = root / "ucfTrainTestlist"
    ann.mkdir(exist_ok=True)
    (ann / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (ann / "trainlist01.txt").write_text(
        "".join(f"{c}/v_{c}_g{g:02d}.mp4 {i + 1}\n" for i, c in enumerate(CLASSES) for g in (1, 2))
    )
    (ann / "testlist01.txt").write_text("".join(f"{c}/v_{c}_g03.mp4\n" for c in CLASSES))


FORMAT_CASES = ["video_list", "folders", "ucf101", "hmdb51", "kinetics"]


def _dataset(root: Path, fmt: str) -> dict:
    """Annotation files of one format over the shared tree; returns the dataset config."""
    base = {"root": str(root), "format": fmt, "frames": 4, "resolution": 16}
    if fmt == "video_list":
        (root / "train.txt").write_text(
            "".join(f"{c}/v_{c}_g{g:02d}.mp4 {i}\n" for i, c in enumerate(CLASSES) for g in (1, 2))
        )
        (root / "val.txt").write_text("".join(f"{c}/v_{c}_g03.mp4,{i}\n" for i, c in enumerate(CLASSES)))
        return {**base, "train": "train.txt", "test": "val.txt"}
    if fmt == "folders":  # train and val trees of symlinks to the same files
        for split, groups in (("train", (1, 2)), ("val", (3,))):
            for c in CLASSES:
                (root / "split" / split / c).mkdir(parents=True, exist_ok=True)
                for g in groups:
                    link = root / "split" / split / c / f"v_{c}_g{g:02d}.mp4"
                    if not link.exists():
                        link.symlink_to(root / c / link.name)
        return {**base, "train": "split/train", "test": "split/val"}
    if fmt == "ucf101":
        _ucf_lists(root)
        return {**base, "annotations": "ucfTrainTestlist", "split": 1}
    if fmt == "hmdb51":
        ann = root / "hmdb_splits"
        ann.mkdir(exist_ok=True)
        for c in CLASSES:
            (ann / f"{c}_test_split1.txt").write_text(
                f"v_{c}_g01.mp4 1\nv_{c}_g02.mp4 1\nv_{c}_g03.mp4 2\nnot_used.mp4 0\n"
            )
        return {**base, "annotations": "hmdb_splits", "split": 1}
    if fmt == "kinetics":  # flat folder of {youtube_id}_{start:06d}_{end:06d}.mp4 (CVDF style) + a class folder
        for i, c in enumerate(CLASSES):
            for g in (1, 2, 3):
                write_video(root / "k400" / f"{c[:2]}{g}_{g * 10:06d}_{g * 10 + 10:06d}.mp4", _ramp(i))
        header = "label,youtube_id,time_start,time_end,split\n"
        rows = {
            s: "".join(f"{c},{c[:2]}{g},{g * 10},{g * 10 + 10},{s}\n" for c in CLASSES for g in gs)
            for s, gs in (("train", (1, 2)), ("val", (3,)))
        }
        (root / "k400" / "train.csv").write_text(header + rows["train"])
        (root / "k400" / "val.csv").write_text(header + rows["val"])
        return {**base, "root": str(root / "k400"), "train": "train.csv", "test": "val.csv"}
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", FORMAT_CASES)
def test_formats_load_labelled_clips(tree: Path, tmp_path: Path, fmt: str) -> None:
    cfg = {"dataset": _dataset(tree, fmt)}
    assert task_shape(cfg) == {"frames": 4, "resolution": 16, "in_chans": 3, "num_classes": 2}
    data = load_task(cfg, cache_dir=tmp_path)
    assert tuple(data.train_x.shape) == (4, 3, 4, 16, 16) and tuple(data.test_x.shape) == (2, 3, 4, 16, 16)
    assert sorted(data.train_y.tolist()) == [0, 0, 1, 1] and sorted(data.test_y.tolist()) == [0, 1]
    assert data.num_classes == 2 and data.skipped == []
    if fmt in ("folders", "ucf101", "hmdb51", "kinetics"):
        assert data.class_names == list(CLASSES)
    _labels_match_colour(data)


def test_ssv2_json_with_webm_files(tmp_path: Path) -> None:
    templates = ["Moving something up", "Moving something down"]
    for i in range(6):
        write_video(tmp_path / f"{100 + i}.webm", _ramp(i % 2), "libvpx-vp9")
    (tmp_path / "labels.json").write_text(json.dumps({t: str(k) for k, t in enumerate(templates)}))
    items = [
        {
            "id": str(100 + i),
            "label": "x",
            "template": templates[i % 2].replace("something", "[something]"),
            "placeholders": ["x"],
        }
        for i in range(6)
    ]
    (tmp_path / "train.json").write_text(json.dumps(items[:4]))
    (tmp_path / "validation.json").write_text(json.dumps(items[4:]))
    cfg = TaskConfig(
        dataset=DatasetConfig(
            root=str(tmp_path),
            format="ssv2",
            annotations="labels.json",
            train="train.json",
            test="validation.json",
            frames=4,
            resolution=16,
        )
    )
    data = load_task(cfg, cache_dir=tmp_path / "cache")
    assert data.class_names == templates and data.train_y.tolist() == [0, 1, 0, 1]
    _labels_match_colour(data)


def test_rawframe_list(tmp_path: Path) -> None:
    lines = []
    for i, name in enumerate(("a", "b", "c", "d")):
        folder = tmp_path / "frames" / name
        folder.mkdir(parents=True)
        for t, frame in enumerate(_ramp(i % 2, 8)):
            Image.fromarray(frame).save(folder / f"img_{t + 1:05d}.jpg", quality=95)
        lines.append(f"frames/{name} 8 {i % 2}\n")
    (tmp_path / "train.txt").write_text("".join(lines[:2]))
    (tmp_path / "val.txt").write_text("".join(lines[2:]))
    data = load_task(
        {
            "dataset": {
                "root": str(tmp_path),
                "format": "rawframes",
                "train": "train.txt",
                "test": "val.txt",
                "frames": 4,
                "resolution": 16,
            }
        },
        cache_dir=tmp_path / "c",
    )
    assert data.train_y.tolist() == [0, 1]
    green = data.train_x[0, 1].float().reshape(4, -1).mean(dim=1).numpy()  # frames 1, 3, 5, 7 of 8
    np.testing.assert_allclose(green, 20 + 8 * np.array([1, 3, 5, 7]), atol=4)


def test_broken_and_missing_files_are_reported_and_skipped(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    (tmp_path / "train.txt").write_text(
        f"{tree}/jumping/v_jumping_g01.mp4 0\n{tmp_path}/broken.mp4 1\n"
        f"{tmp_path}/missing.mp4 1\n{tree}/walking/v_walking_g01.mp4 1\n"
    )
    (tmp_path / "val.txt").write_text(f"{tree}/walking/v_walking_g03.mp4 1\n")
    cfg = {
        "dataset": {
            "root": "/",
            "format": "video_list",
            "train": str(tmp_path / "train.txt")[1:],
            "test": str(tmp_path / "val.txt")[1:],
            "frames": 4,
            "resolution": 16,
        }
    }
    with pytest.warns(UserWarning, match="skipped 2 of 4") as record:
        data = load_task(cfg, cache_dir=tmp_path / "cache")
    assert "broken.mp4" in str(record[0].message) and "missing.mp4" in str(record[0].message)
    assert data.train_y.tolist() == [0, 1]
    reasons = {Path(s.path).name: s.reason for s in data.skipped}
    assert set(reasons) == {"broken.mp4", "missing.mp4"}
    assert reasons["missing.mp4"] == "FileNotFoundError: file not found"
    assert reasons["broken.mp4"]  # PyAV's own message, whatever the FFmpeg version says


def test_decoded_clips_are_cached_and_invalidated_by_file_changes(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = {"dataset": _dataset(tree, "video_list")}
    first = load_task(cfg, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("video-*.npz"))) == 2  # one file per split

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(vid, "decode_clip", no_decoding)
    second = load_task(cfg, cache_dir=tmp_path)
    assert (second.train_x == first.train_x).all()
    monkeypatch.undo()
    write_video(tree / "walking" / "v_walking_g03.mp4", _ramp(1, 12))  # a changed file -> a new cache entry
    load_task(cfg, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("video-*.npz"))) == 3


def test_bad_annotations_name_file_and_line(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("jumping/v_jumping_g01.mp4 0\njumping/v_jumping_g02.mp4 zero\n")
    cfg = {
        "dataset": {
            "root": str(tree),
            "format": "video_list",
            "train": str(tmp_path / "train.txt"),
            "test": str(tmp_path / "train.txt"),
            "frames": 4,
            "resolution": 16,
        }
    }
    with pytest.raises(ValueError, match=r"train.txt:2: label must be an integer, got 'zero'"):
        load_task(cfg, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="dataset format 'hmdb51' needs annotations"):
        TaskConfig(dataset={"root": str(tree), "format": "hmdb51"})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        TaskConfig(dataset={"root": str(tree), "format": "folders", "train": "a", "test": "b", "fps": 3})
    with pytest.raises(ValueError, match="either a synthvid 'name' or a 'dataset'"):
        TaskConfig(name="trev", dataset={"root": str(tree), "format": "folders", "train": "a", "test": "b"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="annotation file .*nope.txt does not exist"):
            load_task(
                {"dataset": {"root": str(tree), "format": "video_list", "train": "nope.txt", "test": "nope.txt"}},
                cache_dir=tmp_path,
            )
