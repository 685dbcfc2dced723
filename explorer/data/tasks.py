"""The task a search trains on: a synthvid task or a video dataset on disk, as one validated config.

YAML forms (the ``task:`` key of a search space)::

    task: {name: trev, preset: demo, seed: 0}                 # synthvid: trev | a | c | tord
    task:
      dataset: {root: /data/ucf101, format: ucf101, annotations: ucfTrainTestlist, split: 1,
                frames: 8, resolution: 32, sampling: uniform}

``task_shape`` gives the model input (frames, resolution, channels, classes) from the config alone -- presets and
annotation text, never generating or decoding clips -- so a search can build and cost architectures before any
data exists. ``load_task`` returns a ``ProxyData`` either way.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from explorer.data.synthconfig import PRESETS, default_cache_dir, task_class_names

if TYPE_CHECKING:
    from explorer.data.synthvid import ProxyData

__all__ = ["DatasetConfig", "TaskConfig", "load_task", "task_shape", "with_validation"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# which of train/test/annotations each format needs (what they mean: explorer/data/video.py, read_annotations)
_NEEDS: dict[str, tuple[str, ...]] = {
    "video_list": ("train", "test"),
    "rawframes": ("train", "test"),
    "folders": ("train", "test"),
    "ucf101": ("annotations",),
    "hmdb51": ("annotations",),
    "ssv2": ("train", "test", "annotations"),
    "kinetics": ("train", "test"),
}


class DatasetConfig(_Strict):
    """A labelled video dataset on disk. Paths are relative to ``root``.

    ``train``/``test``: the split's list file (video_list, rawframes, ssv2 JSON, kinetics CSV) or folder of class
    folders (folders). ``annotations``: the split-file folder (ucf101 ``ucfTrainTestlist``, hmdb51
    ``testTrainMulti_7030_splits``) or the SSv2 labels JSON. ``split``: the official UCF101/HMDB51 split (1-3).
    """

    root: str
    format: Literal["video_list", "rawframes", "folders", "ucf101", "hmdb51", "ssv2", "kinetics"]
    train: str | None = None
    test: str | None = None
    annotations: str | None = None
    split: int = Field(1, ge=1, le=3)
    label_base: Literal[0, 1] = 0  # video_list/rawframes: 1 for 1-based label columns
    num_classes: int | None = Field(None, ge=2)
    frames: int = Field(8, ge=1, le=1_024)
    resolution: int = Field(32, ge=8, le=4_096)
    sampling: Literal["uniform", "dense"] = "uniform"
    stride: int = Field(2, ge=1)  # dense sampling: frames between samples
    max_clips: int | None = Field(None, ge=1)  # per split: a quick subset
    filename_tmpl: str = "img_{:05d}.jpg"  # rawframes
    start_index: int = 1  # rawframes: number of the first frame file

    @model_validator(mode="after")
    def _has_needed_paths(self) -> DatasetConfig:
        missing = [k for k in _NEEDS[self.format] if getattr(self, k) is None]
        if missing:
            raise ValueError(
                f"dataset format {self.format!r} needs {', '.join(missing)} (paths relative to root {self.root!r})"
            )
        return self

    def missing_paths(self) -> str | None:
        """What of the dataset is not on disk (the root, or a split or annotation path under it), or None: said
        when the space is loaded, before a run folder is made, instead of in every trial."""
        root = Path(self.root)
        if not root.is_dir():
            return f"dataset root {self.root!r} is not a folder" + ("" if root.exists() else " (it does not exist)")
        for key in ("train", "test", "annotations"):
            value = getattr(self, key)
            if value is not None and not (root / value).exists():
                return f"dataset {key} {value!r} does not exist under root {self.root!r}"
        return None


class TaskConfig(_Strict):
    """Either a synthvid task (``name``, ``preset``, ``seed``) or ``dataset``."""

    name: Literal["trev", "a", "c", "tord"] | None = None
    preset: Literal["smoke", "demo", "proxy", "hard"] = "demo"
    seed: int = 0
    dataset: DatasetConfig | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TaskConfig:
        if self.dataset is not None and self.name is not None:
            raise ValueError("task: give either a synthvid 'name' or a 'dataset', not both")
        if self.dataset is None and self.name is None:
            object.__setattr__(self, "name", "trev")  # the default temporal task
        return self


def _as_config(config: TaskConfig | dict | str, preset: str | None, seed: int) -> TaskConfig:
    if isinstance(config, TaskConfig):
        return config
    if isinstance(config, str):
        return TaskConfig(name=config, preset=preset or "demo", seed=seed)
    return TaskConfig.model_validate(config)


def task_shape(config: TaskConfig | dict | str) -> dict[str, int]:
    """Model input of a task: frames, resolution, in_chans, num_classes -- without generating or decoding clips
    (dataset class counts come from the annotation text, or ``num_classes`` when given)."""
    cfg = _as_config(config, None, 0)
    if cfg.dataset is None:
        preset = PRESETS[cfg.preset]
        return {
            "frames": preset.frames,
            "resolution": preset.resolution,
            "in_chans": 3,
            "num_classes": len(task_class_names(cfg.name)),
        }
    ds = cfg.dataset
    if ds.num_classes is not None:
        num_classes = ds.num_classes
    else:
        from explorer.data.video import read_annotations

        num_classes = len(read_annotations(ds, "train")[1])
    return {"frames": ds.frames, "resolution": ds.resolution, "in_chans": 3, "num_classes": num_classes}


def with_validation(data: ProxyData, fraction: float = 0.2, seed: int = 0) -> ProxyData:
    """``data`` with ``fraction`` of every class's training clips moved to a validation split.

    A search selects on validation and reports test: the sampler, ASHA and the Pareto front see only the
    validation accuracy, and the test clips stay unseen until the end. The split is stratified (each class keeps
    the same share, at least one clip in each split when it has two) and depends only on ``seed``.
    """
    import torch

    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    gen = torch.Generator().manual_seed(int(seed))
    val_parts, train_parts = [], []
    for label in torch.unique(data.train_y).tolist():
        members = torch.nonzero(data.train_y == label).flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        n_val = min(max(round(fraction * len(members)), 1), len(members) - 1) if len(members) > 1 else 0
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    val_idx, train_idx = torch.cat(val_parts).sort().values, torch.cat(train_parts).sort().values
    return dataclasses.replace(
        data,
        train_x=data.train_x[train_idx],
        train_y=data.train_y[train_idx],
        val_x=data.train_x[val_idx],
        val_y=data.train_y[val_idx],
    )


def load_task(
    config: TaskConfig | dict | str = "trev",
    preset: str | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    **overrides: object,
) -> ProxyData:
    """A task's data as ``ProxyData`` (uint8 clips (N, 3, T, H, W), int64 labels, both splits).

    ``load_task("trev", "demo", seed=0)`` keeps the original call form; a ``TaskConfig`` (or its dict) also
    selects a dataset on disk, decoded once and cached under ``cache_dir`` (default ``$EXPLORER_CACHE``).
    """
    cfg = _as_config(config, preset, seed)
    if cfg.dataset is None:
        from explorer.data import synthvid  # torch: imported when data is loaded, not with the config

        return synthvid.load_task(cfg.name, cfg.preset, cfg.seed, cache_dir, **overrides)
    if overrides:
        raise ValueError(f"synthvid overrides {sorted(overrides)} do not apply to a dataset task")
    import torch

    from explorer.data.synthvid import ProxyData
    from explorer.data.video import load_split

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    train_x, train_y, classes, skipped = load_split(cfg.dataset, "train", cache)
    test_x, test_y, _, skipped_test = load_split(cfg.dataset, "test", cache)
    if len(train_x) == 0:
        raise ValueError(
            f"dataset {cfg.dataset.root}: no readable training clips "
            f"({len(skipped)} skipped, e.g. {skipped[0].path if skipped else 'none listed'})"
        )
    return ProxyData(
        name=f"{cfg.dataset.format}:{Path(cfg.dataset.root).name}",
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y),
        num_classes=len(classes),
        class_names=classes,
        config=cfg.dataset,
        content_hash=hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16],
        skipped=skipped + skipped_test,
    )
