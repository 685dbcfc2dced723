"""Leakage read-out on a full preset (docs/proxy_tasks.md, leakage checks): train one preset architecture on a
synthvid task,
then report held-out 12-way accuracy, T-rev's direction accuracy (order-blind bound 0.5) and the accuracy on the
same test clips with their frames shuffled.

    nice -n 10 python experiments/proxy_fidelity/leakage_demo.py posmlp_tiny --task trev --preset demo --epochs 6

``--data n_train=6000`` passes synthvid overrides to ``load_task``; ``--no-merge`` drops a preset's token merging
(e.g. ``vit_tiny_tome`` as a plain ViT); ``--csv`` appends the row to a CSV such as ``leakage.csv``.
"""

from __future__ import annotations

import argparse
import json

import torch


@torch.inference_mode()
def _logits(model, x: torch.Tensor) -> torch.Tensor:
    from explorer.train import to_input

    model.eval()
    return torch.cat([model(to_input(x[i : i + 128])) for i in range(0, len(x), 128)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", help="a preset name, e.g. posmlp_tiny or frame2d_tiny")
    parser.add_argument("--task", default="trev")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data", nargs="*", default=[], metavar="KEY=VALUE", help="synthvid overrides, e.g. n_train=6000"
    )
    parser.add_argument("--no-merge", action="store_true", help="drop the preset's token merging")
    parser.add_argument("--out", help="append the JSON result to this file")
    parser.add_argument("--csv", help="append the result as a row to this CSV (columns as in leakage.csv)")
    args = parser.parse_args()

    from explorer.arch import Arch
    from explorer.blocks import preset_spec
    from explorer.data import load_task
    from explorer.data.leakage import direction_accuracy, order_agnostic_bound, shuffle_frames
    from explorer.models import build, validate_arch
    from explorer.train import TrainConfig, train_epochs

    overrides = dict(_override(item) for item in args.data)
    data = load_task(args.task, args.preset, seed=0, **overrides)
    spec = preset_spec(args.arch)
    if args.no_merge:
        for stage in spec["stages"]:
            stage.pop("merge", None)
    spec["input"].update(frames=data.train_x.shape[2], resolution=data.train_x.shape[3], num_classes=data.num_classes)
    torch.manual_seed(args.seed)
    model = build(validate_arch(Arch.from_dict(spec, source=args.arch)))
    curve = []
    for result in train_epochs(model, data, TrainConfig(epochs=args.epochs, seed=args.seed, threads=1)):
        curve.append(round(result.accuracy, 4))
        print(f"epoch {result.epoch}: {result.accuracy:.3f} ({result.train_time_s:.0f} s)", flush=True)
    logits = _logits(model, data.test_x)
    shuffled = _logits(model, shuffle_frames(data.test_x, seed=1))
    row = {
        "arch": args.arch + ("-nomerge" if args.no_merge else ""),
        "task": args.task,
        "preset": args.preset,
        "epochs": args.epochs,
        "seed": args.seed,
        "accuracy": float((logits.argmax(-1) == data.test_y).float().mean()),
        "shuffled_accuracy": float((shuffled.argmax(-1) == data.test_y).float().mean()),
        "bound": order_agnostic_bound(args.task),
        "curve": curve,
        "n_test": len(data.test_y),
    }
    if args.task == "trev":
        row["direction_accuracy"] = direction_accuracy(logits, data.test_y)
        row["shuffled_direction_accuracy"] = direction_accuracy(shuffled, data.test_y)
    row["generator_version"] = data.config.version
    row["data_overrides"] = " ".join(args.data)
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    if args.csv:
        _append_csv(args.csv, row)


def _override(item: str) -> tuple[str, float]:
    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--data expects KEY=VALUE, got {item!r}")
    return key, float(value)


def _append_csv(path: str, row: dict) -> None:
    """Append one row under the file's existing header (new keys are an error: the header is the schema)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    unknown = sorted(set(row) - set(header))
    if unknown:
        raise SystemExit(f"{path}: columns {unknown} are not in its header {header}")

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            return " ".join(f"{100 * v:.1f}" for v in value)  # the curve, in percent
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    with open(path, "a") as f:
        f.write(",".join(cell(row.get(name)) for name in header) + "\n")


if __name__ == "__main__":
    main()
