"""synthvid's public loader: ProxyData and load_task with its on-disk .npz cache."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from explorer.data.synthconfig import SynthConfig, content_hash, default_cache_dir, make_config, task_class_names
from explorer.data.synthvid.sampling import generate_arrays


@dataclass
class ProxyData:
    name: str  # e.g. "trev/demo"
    train_x: torch.Tensor = dataclasses.field(repr=False)  # uint8 (N, 3, T, H, W)
    train_y: torch.Tensor = dataclasses.field(repr=False)  # int64 (N,)
    test_x: torch.Tensor = dataclasses.field(repr=False)
    test_y: torch.Tensor = dataclasses.field(repr=False)
    num_classes: int
    class_names: list[str]
    config: SynthConfig  # or a DatasetConfig for a dataset on disk
    content_hash: str
    skipped: list = dataclasses.field(default_factory=list, repr=False)  # unreadable dataset files (video.Skipped)
    # a validation split carved out of the training clips (explorer.data.with_validation); None: not split
    val_x: torch.Tensor | None = dataclasses.field(default=None, repr=False)
    val_y: torch.Tensor | None = dataclasses.field(default=None, repr=False)


def _read_cache(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    """Arrays from a cache file, or None if it is missing, unreadable or for another dataset."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["content_hash"]) != digest:
                return None
            return {k: npz[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    except Exception as err:  # a corrupt file is regenerated, never fatal
        warnings.warn(f"ignoring unreadable dataset cache {path}: {err}", stacklevel=3)
        return None


def _write_cache(path: Path, digest: str, config: SynthConfig, seed: int, arrays: dict[str, np.ndarray]) -> None:
    """Atomic write (temp file in the same folder + os.replace): concurrent Ray trials may
    generate the same dataset at once, and a reader must never see a half-written file."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        meta = json.dumps({"config": dataclasses.asdict(config), "seed": int(seed)}, sort_keys=True)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, content_hash=np.array(digest), meta=np.array(meta), **arrays)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it owner-only; the cache may be shared
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:  # caching is an optimisation; a read-only disk must not fail a trial
        warnings.warn(f"could not write dataset cache {path}: {err}", stacklevel=3)
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def load_task(
    task: str = "trev", preset: str = "demo", seed: int = 0, cache_dir: str | Path | None = None, **overrides: object
) -> ProxyData:
    """The proxy dataset for (task, preset + overrides, seed), generated once and cached.

    Cache file: ``<cache_dir>/synthvid-<hash>.npz``; default dir ``$EXPLORER_CACHE`` or
    ``~/.cache/video-explorer``.
    """
    config = make_config(task, preset, **overrides)
    digest = content_hash(config, seed)
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"synthvid-{digest}.npz"
    arrays = _read_cache(path, digest)
    if arrays is None:
        arrays = generate_arrays(config, seed)
        _write_cache(path, digest, config, seed, arrays)
    return ProxyData(
        name=f"{task}/{preset}",
        train_x=torch.from_numpy(arrays["train_x"]),
        train_y=torch.from_numpy(arrays["train_y"]),
        test_x=torch.from_numpy(arrays["test_x"]),
        test_y=torch.from_numpy(arrays["test_y"]),
        num_classes=len(task_class_names(task)),
        class_names=task_class_names(task),
        config=config,
        content_hash=digest,
    )
