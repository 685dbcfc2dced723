"""Why do some seed families not learn on the proxy? Train named (model variant, recipe variant) pairs on a synthvid
task and record held-out (test) accuracy after every epoch, one process and one torch thread per run (as a search
trial). Every finished run is appended to ``--out`` (JSONL) and skipped on restart.

    nice -n 10 .venv/bin/python experiments/proxy_recipe/diagnose.py --workers 2 --out RESULTS.jsonl \\
        --models focal_tiny posmlp_tiny --recipes old filter_decay --task a --epochs 3 --seeds 0
    .venv/bin/python experiments/proxy_recipe/diagnose.py --out RESULTS.jsonl --table    # print what is there

Model variants are presets, or presets changed in one named way (see ``MODELS``); recipe variants are
``TrainConfig`` overrides (see ``RECIPES``). Both are defined here so each hypothesis is one name in the README.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any, Callable


def _vit_plain(depth: int = 2, width: int = 32, heads: int = 2, space_time: str = "joint") -> dict:
    from explorer.blocks import preset_spec

    spec = preset_spec("vit_tiny_sttm")
    stage = spec["stages"][0]
    stage.update(depth=depth, width=width)
    stage.pop("merge", None)
    stage["mixer"]["options"].update(heads=heads, space_time=space_time)
    return spec


def _with_merge(spec: dict, merge: dict) -> dict:
    spec = copy.deepcopy(spec)
    spec["stages"][0]["merge"] = merge
    return spec


def _focal(combination: str) -> dict:
    from explorer.blocks import preset_spec

    spec = preset_spec("focal_tiny")
    for stage in spec["stages"]:
        stage["mixer"]["options"]["combination"] = combination
    return spec


def _conv_stem(spec: dict) -> dict:
    """The same stages behind the two-conv 3-D stem of PosMLP-Video/MorphMLP (conv 3×3/2, BN, GELU, conv 3×3/2)."""
    spec = copy.deepcopy(spec)
    spec["stem"] = {"kind": "conv", "patch": 4, "temporal_kernel": 1, "temporal_stride": 1}
    return spec


def _preset(name: str) -> Callable[[], dict]:
    def spec() -> dict:
        from explorer.blocks import preset_spec

        return preset_spec(name)

    return spec


MODELS: dict[str, Callable[[], dict]] = {
    **{
        name: _preset(name)
        for name in ("conv3d_tiny", "frame2d_tiny", "posmlp_tiny", "morphmlp_tiny", "focal_tiny", "mobile_former_tiny")
    },
    "focal_serial": lambda: _focal("serial"),
    "focal_spatial_only": lambda: _focal("spatial_only"),
    "focal_conv_stem": lambda: _conv_stem(_focal("parallel")),
    "vit_joint": lambda: _vit_plain(),
    "vit_divided": lambda: _vit_plain(space_time="divided"),
    "vit_tome": lambda: _with_merge(_vit_plain(), {"method": "tome", "r": 16}),
    "vit_sttm": lambda: _with_merge(_vit_plain(), {"method": "sttm", "ratio": 0.5, "layers": [1]}),
}


def _sigma02_modulator(model) -> None:
    """Focal modulation as before the fix: the modulator ``h`` at trunc-normal σ = 0.02 with a zero bias."""
    from explorer.blocks.focal import FocalContext
    from explorer.blocks.layers import init_linear

    for module in model.modules():
        if isinstance(module, FocalContext):
            init_linear(module.h)


def _stem_without_norm(model) -> None:
    """The per-frame patch stem without its LayerNorm (which scales every near-uniform background patch to unit
    variance, so noise tokens could drown the sprite in the mean pool)."""
    import torch.nn as nn

    model.stem.norm = nn.Identity()


def _conv_stem_without(kind: type) -> Callable[[Any], None]:
    """The two-conv stem with its layers of one kind (BatchNorm3d or GELU) replaced by identities."""

    def change(model) -> None:
        import torch.nn as nn

        layers = model.stem.proj
        for i, layer in enumerate(layers):
            if isinstance(layer, kind):
                layers[i] = nn.Identity()

    return change


# changes made to a built model before training (initialisation and wiring hypotheses)
MODEL_INITS: dict[str, Callable[[Any], None]] = {
    "focal_sigma02_h": _sigma02_modulator,
    "focal_patch_no_ln": _stem_without_norm,
}
MODELS["focal_conv_stem_no_bn"] = MODELS["focal_conv_stem"]
MODELS["focal_conv_stem_no_gelu"] = MODELS["focal_conv_stem"]
MODELS["focal_sigma02_h"] = _preset("focal_tiny")


def _vit_conv_stem() -> dict:
    """The plain ViT behind the two-conv stem (first conv 3×3×3, temporal stride 2: the tubelet's (4, 8, 8) grid)."""
    spec = _vit_plain()
    spec["stem"] = {"kind": "conv", "patch": 4, "temporal_kernel": 3, "temporal_stride": 2}
    return spec


def _add_pos_embed(model) -> None:
    """A learned position embedding (σ = 0.02, as the tubelet stem's) after whatever stem the model has, drawn after
    the model is built (as in the runs the README quotes; a spec with ``stem.pos_embed`` draws it during the build)."""
    from explorer.models import PositionEmbedded

    model.stem = PositionEmbedded(model.stem, model.stages[0].grid, model.arch.stages[0].width)


def _temporal_stem(make: Callable[[], dict]) -> Callable[[], dict]:
    """The same model behind a conv stem whose first conv also spans 3 frames (temporal stride 1): motion of a pixel
    per frame is seen at full resolution, before the 4x patchify."""

    def spec() -> dict:
        s = make()
        s["stem"] = {"kind": "conv", "patch": 4, "temporal_kernel": 3, "temporal_stride": 1}
        return s

    return spec


def _width_scaled(gain: float | None = None) -> Callable[[Any], None]:
    """``explorer.train.width_scaled_init`` at ``gain`` (None: its default, 0.55), applied right after the build."""

    def change(model) -> None:
        from explorer.train import RELEASE_GAIN, width_scaled_init

        width_scaled_init(model, RELEASE_GAIN if gain is None else gain)

    return change


def _both(first: Callable[[Any], None], second: Callable[[Any], None]) -> Callable[[Any], None]:
    def change(model) -> None:
        first(model)
        second(model)

    return change


def _late_inits() -> None:
    import torch.nn as nn

    MODEL_INITS["focal_conv_stem_no_bn"] = _conv_stem_without(nn.BatchNorm3d)
    MODEL_INITS["focal_conv_stem_no_gelu"] = _conv_stem_without(nn.GELU)
    MODELS["vit_conv_stem"] = _vit_conv_stem
    for name in ("conv3d_tiny", "posmlp_tiny", "mobile_former_tiny"):
        MODELS[f"{name}_tstem"] = _temporal_stem(_preset(name))
    MODELS["focal_tstem"] = _temporal_stem(lambda: _focal("parallel"))
    for name, make in (
        ("conv3d_tiny", _preset("conv3d_tiny")),
        ("posmlp_tiny", _preset("posmlp_tiny")),
        ("focal_conv_stem", MODELS["focal_conv_stem"]),
        ("vit_conv_stem", _vit_conv_stem),
    ):
        for suffix, gain in (("winit", None), ("winit1", 1.0)):  # winit1: std 1/sqrt(fan_in)
            MODELS[f"{name}_{suffix}"] = make
            init = _width_scaled(gain)
            MODEL_INITS[f"{name}_{suffix}"] = _both(_add_pos_embed, init) if name == "vit_conv_stem" else init
    MODELS["mobile_former_tiny_winit"] = _preset("mobile_former_tiny")
    MODEL_INITS["mobile_former_tiny_winit"] = _width_scaled()
    MODEL_INITS["vit_conv_stem"] = _add_pos_embed


def _modulator_bias(value: float) -> Callable[[Any], None]:
    """Focal modulation with every modulator ``h`` starting at bias ``value``: with 1, ``M_s ≈ M_t ≈ 1`` at init, so
    ``Q ⊙ M_s ⊙ M_t ≈ Q`` and no factor of the product starts small (the release's bias is uniform in ±1/√C)."""

    def change(model) -> None:
        import torch.nn as nn

        from explorer.blocks.focal import FocalContext

        for module in model.modules():
            if isinstance(module, FocalContext):
                nn.init.constant_(module.h.bias, value)

    return change


def _pos_embed_std(std: float) -> Callable[[Any], None]:
    """The ViT behind the conv stem with its position embedding drawn at ``std`` instead of 0.02 (the stem's
    BatchNorm-ed features are of unit scale, so at 0.02 the tokens barely know where and when they are)."""

    def change(model) -> None:
        import torch.nn as nn

        _add_pos_embed(model)
        nn.init.trunc_normal_(model.stem.pos_embed, std=std, a=-2 * std, b=2 * std)

    return change


def _vit_tiny_conv_stem(space_time: str = "joint", merge: dict | None | str = "none") -> Callable[[], dict]:
    """vit_tiny_sttm's ViT (4 blocks, width 64, 4 heads) behind the conv stem with a position embedding (the stem
    of search_spaces/token_merging.yaml), with ``merge`` ("preset": the preset's STTM merge; "none": no merge)."""

    def spec() -> dict:
        from explorer.blocks import preset_spec

        s = preset_spec("vit_tiny_sttm")
        s["stem"] = {"kind": "conv", "patch": 4, "temporal_kernel": 3, "temporal_stride": 2, "pos_embed": True}
        stage = s["stages"][0]
        stage["mixer"]["options"]["space_time"] = space_time
        if merge == "none":
            stage.pop("merge", None)
        elif merge != "preset":
            stage["merge"] = merge
        return s

    return spec


_late_inits()


def _focal_as_in_the_ready_space(combination: str) -> Callable[[], dict]:
    """focal_tiny's two stages as search_spaces/focal.yaml builds them: the conv stem, conv downsampling between
    stages and the default MLP ratio (2) instead of the release's patch merging and ratio 4."""

    def spec() -> dict:
        s = _conv_stem(_focal(combination))
        for stage in s["stages"]:
            stage.pop("down", None)
            stage.pop("mlp_ratio", None)
        return s

    return spec


MODELS["focal_ready"] = _focal_as_in_the_ready_space("parallel")
MODELS["focal_ready_serial"] = _focal_as_in_the_ready_space("serial")
MODELS["vit_tiny_cs"] = _vit_tiny_conv_stem()
MODELS["vit_tiny_cs_divided"] = _vit_tiny_conv_stem("divided")
MODELS["vit_tiny_cs_tome"] = _vit_tiny_conv_stem(merge={"method": "tome", "r": 16})
MODELS["vit_tiny_cs_sttm"] = _vit_tiny_conv_stem(merge="preset")
MODELS["focal_patch_no_ln"] = _preset("focal_tiny")
MODELS["focal_hbias1"] = MODELS["focal_conv_stem"]
MODEL_INITS["focal_hbias1"] = _modulator_bias(1.0)
MODELS["focal_serial_hbias1"] = lambda: _conv_stem(_focal("serial"))
MODEL_INITS["focal_serial_hbias1"] = _modulator_bias(1.0)
MODELS["focal_serial_conv_stem"] = lambda: _conv_stem(_focal("serial"))


def _focal_variant(combination: str = "parallel", drop_path: float = 0.0, **options: Any) -> Callable[[], dict]:
    """focal_tiny behind the conv stem with a changed option (e.g. depthwise temporal convs) or stochastic depth."""

    def spec() -> dict:
        s = _conv_stem(_focal(combination))
        s["drop_path_rate"] = drop_path
        for stage in s["stages"]:
            stage["mixer"]["options"].update(options)
        return s

    return spec


MODELS["focal_conv_stem_dw"] = _focal_variant(temporal_conv="depthwise")
MODELS["focal_conv_stem_dp"] = _focal_variant(drop_path=0.2)
for _std in (0.2, 1.0):
    MODELS[f"vit_conv_stem_pe{_std:g}"] = _vit_conv_stem
    MODEL_INITS[f"vit_conv_stem_pe{_std:g}"] = _pos_embed_std(_std)

RECIPES: dict[str, dict[str, Any]] = {
    "old": {},  # AdamW lr 3e-3, weight decay 0.05 on every parameter, 10 % linear warm-up, cosine, batch 32
    "filter_decay": {"filter_decay": True},
    "filter_clip": {"filter_decay": True, "clip_grad": 1.0},
    "lr1e-3": {"lr": 1e-3},
    "filter_lr1e-3": {"filter_decay": True, "lr": 1e-3},
    "no_decay": {"weight_decay": 0.0},
    "warmup20": {"filter_decay": True, "warmup_steps": 20},
    "width_init": {"init_gain": 0.02 * 768**0.5},  # TrainConfig's width-scaled init (explorer.train.RELEASE_GAIN)
    # the width-scaled init with twice the optimiser steps per epoch, or a lower / higher learning rate
    "width_bs16": {"init_gain": 0.02 * 768**0.5, "batch_size": 16},
    "width_lr1e-3": {"init_gain": 0.02 * 768**0.5, "lr": 1e-3},
    "width_lr6e-3": {"init_gain": 0.02 * 768**0.5, "lr": 6e-3},
    "width_bs16_lr1e-3": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "lr": 1e-3},
    "width_bs16_lr2e-3": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "lr": 2e-3},
    "width_bs16_warm30": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "warmup_frac": 0.3},
    "width_bs16_clip": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "clip_grad": 0.5},
    # random translations of the training clips (diagnose-only: "shift" wraps the model, see _shifted)
    "width_bs16_shift4": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "shift": 4},
    "width_bs16_lr1e-3_shift4": {"init_gain": 0.02 * 768**0.5, "batch_size": 16, "lr": 1e-3, "shift": 4},
}


def _shifted(model, pad: int, seed: int):
    """``model`` behind a random translation of every training clip (one integer shift of up to ``pad`` pixels per
    clip and axis, the same for all its frames, reflect-padded): the label of every synthvid task is unchanged by
    it, so the model sees new pixel positions of the same motions. Evaluation sees the clips as they are."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Shifted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.gen = torch.Generator().manual_seed(10_000 + seed)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training:
                return self.inner(x)
            b, c, t, h, w = x.shape
            padded = F.pad(x.reshape(b, c * t, h, w), (pad, pad, pad, pad), mode="reflect")
            offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=self.gen).tolist()
            crops = [padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)]
            out = torch.stack(crops).reshape(b, c, t, h, w)
            return self.inner(out.contiguous(memory_format=torch.channels_last_3d))

    return Shifted()


def _run(job: tuple[str, str, str, str, int, int, bool]) -> dict:
    model_name, recipe_name, task, preset, epochs, seed, validation = job
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from explorer.arch import Arch
    from explorer.data.tasks import TaskConfig, load_task, with_validation
    from explorer.models import build
    from explorer.train import TrainConfig, train_epochs

    data = load_task(TaskConfig(name=task, preset=preset, seed=0))
    if validation:  # as a search splits it (explorer.search.VAL_FRACTION)
        data = with_validation(data, 0.2, seed=0)
    spec = MODELS[model_name]()
    spec["input"].update(num_classes=data.num_classes)
    arch = Arch.from_dict(spec)
    recipe = dict(RECIPES[recipe_name])
    shift = recipe.pop("shift", 0)
    cfg = TrainConfig(**{"epochs": epochs, "seed": seed, "threads": 1, **recipe})
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build(arch)
    if model_name in MODEL_INITS:
        MODEL_INITS[model_name](model)
    if shift:
        model = _shifted(model, shift, seed)
    results = list(train_epochs(model, data, cfg))
    row = {
        "model": model_name,
        "recipe": recipe_name,
        "task": task,
        "preset": preset,
        "epochs": epochs,
        "seed": seed,
        "split": "val" if validation else "test",
        "accuracy": [round(r.accuracy, 4) for r in results],
        "train_loss": [round(r.train_loss, 4) for r in results],
        "seconds": round(time.perf_counter() - start, 1),
    }
    if validation:
        row["test_accuracy"] = [round(r.test_accuracy, 4) for r in results]
    return row


def _key(row: dict) -> tuple:
    return (
        row["model"],
        row["recipe"],
        row["task"],
        row["preset"],
        row["epochs"],
        row["seed"],
        row.get("split", "test") == "val",
    )


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | recipe | task | epochs | seed | top-1 after each epoch (%) | final test | final loss | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=_key):
        acc = " ".join(f"{100 * a:.0f}" for a in r["accuracy"])
        split = r.get("split", "test")
        test = f"{100 * r['test_accuracy'][-1]:.0f}" if "test_accuracy" in r else ""
        lines.append(
            f"| {r['model']} | {r['recipe']} | {r['task']}/{r['preset']} | {r['epochs']} | {r['seed']} | "
            f"{split}: {acc} | {test} | {r['train_loss'][-1]:.2f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["focal_tiny"], choices=sorted(MODELS))
    parser.add_argument("--recipes", nargs="+", default=["old"], choices=sorted(RECIPES))
    parser.add_argument("--task", default="trev")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="hold out 20 %% of the training clips as a search does; accuracy is on validation, "
        "test accuracy beside it",
    )
    parser.add_argument("--table", action="store_true", help="print the table of --out and exit")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    if args.table:
        print(_table(rows))
        return
    done = {_key(r) for r in rows}
    jobs = [
        (m, r, args.task, args.preset, args.epochs, s, args.validation)
        for m in args.models
        for r in args.recipes
        for s in args.seeds
        if (m, r, args.task, args.preset, args.epochs, s, args.validation) not in done
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with mp.get_context("spawn").Pool(args.workers, maxtasksperchild=1) as pool, args.out.open("a") as out:
        for row in pool.imap_unordered(_run, jobs):
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(_table([row]).splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
