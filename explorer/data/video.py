"""Real video datasets on disk: annotation formats, PyAV decoding, frame sampling and a decoded-clip cache.

Every supported annotation format (docs/proxy_tasks.md, real datasets) is normalised into a list of ``Sample`` (a
video file
or a frame folder, an integer label, optional frame range). Clips are decoded with PyAV, sampled to ``frames``
frames (``uniform``: the centre frame of T equal segments, TSN/TSM style -- the SSv2 norm; ``dense``: T frames at a
fixed ``stride`` from the middle of the video -- the Kinetics/X3D norm), resized (short side) and centre-cropped to
``resolution``, and stored as uint8 (N, 3, T, H, W), the layout ``explorer.train`` expects.

Sampling is deterministic (no random offsets), so the decoded arrays can be cached on disk keyed by the dataset
config and the files' sizes and modification times: a search decodes each clip once, every trial reuses the file.

A missing, truncated or undecodable video is skipped and reported (``Skipped``: path and reason); it never stops
a trial. Bad *annotations* (unknown class, malformed line) are configuration errors and raise ``ValueError``
naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FORMATS",
    "VIDEO_EXTENSIONS",
    "Sample",
    "Skipped",
    "decode_clip",
    "load_split",
    "read_annotations",
    "sample_indices",
]

FORMATS: tuple[str, ...] = ("video_list", "rawframes", "folders", "ucf101", "hmdb51", "ssv2", "kinetics")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif", ".m4v")


@dataclass(frozen=True)
class Sample:
    path: Path  # a video file, or a folder of frame images (``rawframes``)
    label: int  # 0-based
    total_frames: int | None = None  # rawframes: from the list file
    offset: int = 0  # rawframes ``with_offset`` lists


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


# ---------------------------------------------------------------------------------------------------- annotations


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """Non-empty, non-comment lines of a list file as (1-based line number, fields); ',' or whitespace separated."""
    if not path.is_file():
        raise ValueError(f"annotation file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append((number, [f for f in re.split(r"[,\s]+", line) if f]))
    return rows


def _int(value: str, path: Path, number: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{path}:{number}: {what} must be an integer, got {value!r}") from None


def _video_list(root: Path, path: Path, label_base: int) -> list[Sample]:
    """mmaction2 VideoDataset / PySlowFast list: ``relative/path.mp4 label`` (first label of multi-label lines)."""
    samples = []
    for number, fields in _lines(path):
        if len(fields) < 2:
            raise ValueError(f"{path}:{number}: expected 'path label', got {' '.join(fields)!r}")
        samples.append(Sample(root / fields[0], _int(fields[1], path, number, "label") - label_base))
    return samples


def _rawframes(root: Path, path: Path, label_base: int) -> list[Sample]:
    """mmaction2 RawframeDataset: ``frame_dir total_frames label`` or ``frame_dir offset total_frames label``."""
    samples = []
    for number, fields in _lines(path):
        if len(fields) not in (3, 4):
            raise ValueError(
                f"{path}:{number}: expected 'frame_dir [offset] total_frames label', got {' '.join(fields)!r}"
            )
        nums = [_int(f, path, number, "frame count/offset/label") for f in fields[1:]]
        offset, total, label = (0, *nums) if len(nums) == 2 else nums
        samples.append(Sample(root / fields[0], label - label_base, total_frames=total, offset=offset))
    return samples


def _class_folders(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise ValueError(f"dataset folder {folder} does not exist")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def _folders(folder: Path, classes: list[str]) -> list[Sample]:
    """Class-per-folder tree ``folder/<class>/<video>``; class index = position in sorted class names."""
    samples = []
    for label, name in enumerate(classes):
        for file in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
            if file.suffix.lower() in VIDEO_EXTENSIONS:
                samples.append(Sample(file, label))
    return samples


def _ucf101(root: Path, ann: Path, split: str, split_id: int) -> tuple[list[Sample], list[str]]:
    """UCF101 ``classInd.txt`` (1-based) + ``trainlist0N.txt`` (path label) / ``testlist0N.txt`` (path only)."""
    index = {}
    for number, fields in _lines(ann / "classInd.txt"):
        index[fields[1]] = _int(fields[0], ann / "classInd.txt", number, "class index") - 1
    classes = [name for name, _ in sorted(index.items(), key=lambda kv: kv[1])]
    path = ann / f"{'trainlist' if split == 'train' else 'testlist'}{split_id:02d}.txt"
    samples = []
    for number, fields in _lines(path):
        folder = fields[0].split("/")[0]
        if folder not in index:
            raise ValueError(f"{path}:{number}: class folder {folder!r} is not in {ann / 'classInd.txt'}")
        samples.append(Sample(root / fields[0], index[folder]))
    return samples, classes


def _hmdb51(root: Path, ann: Path, split: str, split_id: int) -> tuple[list[Sample], list[str]]:
    """HMDB51 ``<class>_test_splitN.txt``: ``video.avi flag`` with 1 = train, 2 = test, 0 = unused."""
    files = sorted(ann.glob(f"*_test_split{split_id}.txt"))
    if not files:
        raise ValueError(f"no HMDB51 split files *_test_split{split_id}.txt in {ann}")
    classes = [f.name[: -len(f"_test_split{split_id}.txt")] for f in files]
    want = "1" if split == "train" else "2"
    samples = []
    for label, (name, file) in enumerate(zip(classes, files)):
        for number, fields in _lines(file):
            if len(fields) != 2 or fields[1] not in "012":
                raise ValueError(f"{file}:{number}: expected 'video.avi 0|1|2', got {' '.join(fields)!r}")
            if fields[1] == want:
                samples.append(Sample(root / name / fields[0], label))
    return samples, classes


def _ssv2(root: Path, labels_path: Path, path: Path) -> tuple[list[Sample], list[str]]:
    """Something-Something v2: labels JSON (template -> index string) + a list of {id, template, ...}."""
    try:
        labels = json.loads(labels_path.read_text())
        items = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read SSv2 annotations: {err}") from None
    classes = [name for name, _ in sorted(labels.items(), key=lambda kv: int(kv[1]))]
    samples = []
    for i, item in enumerate(items):
        template = str(item.get("template", "")).replace("[", "").replace("]", "")
        if template not in labels:
            raise ValueError(
                f"{path}: entry {i} (id {item.get('id')!r}): template {template!r} is not in {labels_path}"
            )
        samples.append(Sample(root / f"{item['id']}.webm", int(labels[template])))
    return samples, classes


def _kinetics(root: Path, path: Path, classes: list[str] | None = None) -> tuple[list[Sample], list[str]]:
    """Kinetics CSV ``label,youtube_id,time_start,time_end,split``; files ``[label/]{id}_{start:06d}_{end:06d}.*``."""
    if not path.is_file():
        raise ValueError(f"annotation file {path} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"label", "youtube_id", "time_start", "time_end"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: Kinetics CSV lacks column(s) {', '.join(sorted(missing))}")
    classes = classes or sorted({r["label"] for r in rows})
    index = {name: i for i, name in enumerate(classes)}
    samples = []
    for number, row in enumerate(rows, 2):
        if row["label"] not in index:
            raise ValueError(f"{path}:{number}: label {row['label']!r} is not a class of the training split")
        stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
        candidates = [root / row["label"] / (stem + ext) for ext in VIDEO_EXTENSIONS] + [
            root / (stem + ext) for ext in VIDEO_EXTENSIONS
        ]
        found = next((c for c in candidates if c.exists()), candidates[0])  # a missing file is reported later
        samples.append(Sample(found, index[row["label"]]))
    return samples, classes


def read_annotations(cfg, split: str) -> tuple[list[Sample], list[str]]:
    """Samples and class names of one split (``"train"`` or ``"test"``) of a ``DatasetConfig``. Reads text only."""
    root = Path(cfg.root)
    ann = root / cfg.annotations if cfg.annotations else root
    split_file = root / (cfg.train if split == "train" else cfg.test) if (cfg.train and cfg.test) else None
    if cfg.format == "video_list":
        samples = _video_list(root, split_file, cfg.label_base)
        return samples, _numbered(samples, cfg.num_classes)
    if cfg.format == "rawframes":
        samples = _rawframes(root, split_file, cfg.label_base)
        return samples, _numbered(samples, cfg.num_classes)
    if cfg.format == "folders":
        classes = _class_folders(root / cfg.train)  # the training tree defines the class index
        return _folders(split_file, classes), classes
    if cfg.format == "ucf101":
        return _ucf101(root, ann, split, cfg.split)
    if cfg.format == "hmdb51":
        return _hmdb51(root, ann, split, cfg.split)
    if cfg.format == "ssv2":
        return _ssv2(root, ann, split_file)
    if cfg.format == "kinetics":
        classes = _kinetics(root, root / cfg.train)[1] if split == "test" else None
        return _kinetics(root, split_file, classes)
    raise ValueError(f"unknown dataset format {cfg.format!r}; allowed: {', '.join(FORMATS)}")


def _numbered(samples: list[Sample], num_classes: int | None) -> list[str]:
    """Class names of integer-labelled lists: "0".."K-1", K from the config or the largest label seen."""
    count = num_classes or (max((s.label for s in samples), default=-1) + 1)
    bad = [s for s in samples if not 0 <= s.label < count]
    if bad:
        raise ValueError(
            f"label {bad[0].label} of {bad[0].path} is outside 0..{count - 1} "
            f"(set label_base: 1 for 1-based lists, or num_classes)"
        )
    return [str(i) for i in range(count)]


# ---------------------------------------------------------------------------------------------------- decoding


def sample_indices(total: int, frames: int, sampling: str, stride: int = 2) -> np.ndarray:
    """Frame indices: ``uniform`` = centre of each of ``frames`` equal segments; ``dense`` = ``frames`` frames
    ``stride`` apart, centred in the video. Short videos repeat their last frame (clamped indices)."""
    if total < 1:
        raise ValueError("video has no frames")
    if sampling == "uniform":
        idx = np.floor((np.arange(frames) + 0.5) * total / frames)
    elif sampling == "dense":
        span = (frames - 1) * stride + 1
        idx = max((total - span) // 2, 0) + np.arange(frames) * stride
    else:
        raise ValueError(f"unknown sampling {sampling!r}; allowed: uniform, dense")
    return np.clip(idx.astype(np.int64), 0, total - 1)


def _decode_video(path: Path, frames: int, sampling: str, stride: int) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video file, decoded with PyAV up to the last needed frame."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames
        if total <= 0:  # container without a frame count (some webm/avi): decode everything once
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            return np.stack([decoded[i] for i in sample_indices(len(decoded), frames, sampling, stride)])
        wanted = sample_indices(total, frames, sampling, stride)
        needed = set(wanted.tolist())
        picked: dict[int, np.ndarray] = {}
        last = None
        for i, frame in enumerate(container.decode(stream)):
            if i in needed:
                picked[i] = frame.to_ndarray(format="rgb24")
            last = (i, frame)
            if i >= wanted.max():
                break
    if last is None:
        raise ValueError("no decodable frames")
    if len(picked) < len(needed):  # header over-counted the frames: clamp to what was decoded
        tail = last[1].to_ndarray(format="rgb24") if last[0] not in picked else picked[last[0]]
        return np.stack([picked.get(int(i), tail) if i <= last[0] else tail for i in wanted])
    return np.stack([picked[int(i)] for i in wanted])


def _decode_frames(sample: Sample, frames: int, sampling: str, stride: int, tmpl: str, start: int) -> np.ndarray:
    from PIL import Image

    total = sample.total_frames or len([p for p in sample.path.iterdir() if p.is_file()])
    out = []
    for i in sample_indices(total, frames, sampling, stride):
        file = sample.path / tmpl.format(int(i) + start + sample.offset)
        with Image.open(file) as img:
            out.append(np.asarray(img.convert("RGB")))
    return np.stack(out)


def _resize_crop(clip: np.ndarray, size: int) -> np.ndarray:
    """(T, H, W, 3) -> (3, T, size, size): short side to ``size`` (antialiased bilinear), then centre crop."""
    x = torch.from_numpy(clip).permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size]
    return x.round().clamp(0, 255).to(torch.uint8).permute(1, 0, 2, 3).numpy()


def decode_clip(
    sample: Sample,
    frames: int,
    resolution: int,
    sampling: str = "uniform",
    stride: int = 2,
    filename_tmpl: str = "img_{:05d}.jpg",
    start_index: int = 1,
) -> np.ndarray:
    """One clip as uint8 (3, T, H, W). Raises on any problem with the file (the caller records it)."""
    if not sample.path.exists():
        raise FileNotFoundError("file not found")
    if sample.path.is_dir():
        clip = _decode_frames(sample, frames, sampling, stride, filename_tmpl, start_index)
    else:
        clip = _decode_video(sample.path, frames, sampling, stride)
    return _resize_crop(clip, resolution)


def _fingerprint(samples: list[Sample]) -> list:
    """Per-file (path, size, mtime) so an edited or replaced video invalidates the cache."""
    out = []
    for s in samples:
        try:
            st = s.path.stat()
            out.append([str(s.path), s.label, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(s.path), s.label, None, None])
    return out


def load_split(cfg, split: str, cache_dir: Path | None) -> tuple[np.ndarray, np.ndarray, list[str], list[Skipped]]:
    """Decoded clips (N, 3, T, H, W) uint8, labels (N,), class names and skipped files of one split.

    Cached as ``<cache_dir>/video-<hash>.npz``; the hash covers the config, the split and every file's size and
    modification time.
    """
    samples, classes = read_annotations(cfg, split)
    if cfg.max_clips is not None:
        samples = samples[: cfg.max_clips]
    key = json.dumps(
        {"config": cfg.model_dump(mode="json"), "split": split, "files": _fingerprint(samples), "version": 1},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"video-{digest}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                skipped = [Skipped(*row) for row in json.loads(str(npz["skipped"]))]
                return npz["x"], npz["y"], classes, skipped
        except Exception as err:  # a corrupt cache is re-decoded, never fatal
            warnings.warn(f"ignoring unreadable clip cache {path}: {err}", stacklevel=2)
    clips, labels, skipped = [], [], []
    for sample in samples:
        try:
            clips.append(
                decode_clip(
                    sample, cfg.frames, cfg.resolution, cfg.sampling, cfg.stride, cfg.filename_tmpl, cfg.start_index
                )
            )
            labels.append(sample.label)
        except Exception as err:  # noqa: BLE001 -- any unreadable file is reported and skipped
            skipped.append(Skipped(str(sample.path), f"{type(err).__name__}: {err}"))
    if skipped:
        shown = "; ".join(f"{s.path} ({s.reason})" for s in skipped[:5])
        warnings.warn(
            f"{split} split of {cfg.root}: skipped {len(skipped)} of {len(samples)} clip(s): {shown}"
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=2,
        )
    shape = (0, 3, cfg.frames, cfg.resolution, cfg.resolution)
    x = np.stack(clips) if clips else np.zeros(shape, dtype=np.uint8)
    y = np.asarray(labels, dtype=np.int64)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp")
            with open(tmp, "wb") as f:
                np.savez(f, x=x, y=y, skipped=np.array(json.dumps([[s.path, s.reason] for s in skipped])))
            tmp.replace(path)  # atomic: concurrent trials never read a half-written cache
        except OSError as err:
            warnings.warn(f"could not write clip cache {path}: {err}", stacklevel=2)
    return x, y, classes, skipped
