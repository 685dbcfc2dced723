"""Leakage read-out on a full preset (reference/proxy_data.md §2.4): train one preset architecture on a synthvid task,
then report held-out 12-way accuracy, T-rev's direction accuracy (order-blind bound 0.5) and the accuracy on the
same test clips with their frames shuffled.

    nice -n 10 python experiments/proxy_fidelity/leakage_demo.py posmlp_tiny --task trev --preset demo --epochs 6
"""

from __future__ import annotations

import argparse
import json

import torch


@torch.inference_mode()
def _logits(model, x: torch.Tensor) -> torch.Tensor:
    from explorer.train import to_input

    model.eval()
    return torch.cat([model(to_input(x[i:i + 128])) for i in range(0, len(x), 128)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arch", help="a preset name, e.g. posmlp_tiny or frame2d_tiny")
    parser.add_argument("--task", default="trev")
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="append the JSON result to this file")
    args = parser.parse_args()

    from explorer.arch import Arch
    from explorer.blocks import preset_spec
    from explorer.data import load_task
    from explorer.data.leakage import direction_accuracy, order_agnostic_bound, shuffle_frames
    from explorer.models import build, validate_arch
    from explorer.train import TrainConfig, train_epochs

    data = load_task(args.task, args.preset, seed=0)
    spec = preset_spec(args.arch)
    spec["input"].update(frames=data.train_x.shape[2], resolution=data.train_x.shape[3],
                         num_classes=data.num_classes)
    torch.manual_seed(args.seed)
    model = build(validate_arch(Arch.from_dict(spec, source=args.arch)))
    curve = []
    for result in train_epochs(model, data, TrainConfig(epochs=args.epochs, seed=args.seed, threads=1)):
        curve.append(round(result.accuracy, 4))
        print(f"epoch {result.epoch}: {result.accuracy:.3f} ({result.train_time_s:.0f} s)", flush=True)
    logits = _logits(model, data.test_x)
    shuffled = _logits(model, shuffle_frames(data.test_x, seed=1))
    row = {"arch": args.arch, "task": args.task, "preset": args.preset, "epochs": args.epochs, "seed": args.seed,
           "accuracy": float((logits.argmax(-1) == data.test_y).float().mean()),
           "shuffled_accuracy": float((shuffled.argmax(-1) == data.test_y).float().mean()),
           "bound": order_agnostic_bound(args.task), "curve": curve, "n_test": len(data.test_y)}
    if args.task == "trev":
        row["direction_accuracy"] = direction_accuracy(logits, data.test_y)
        row["shuffled_direction_accuracy"] = direction_accuracy(shuffled, data.test_y)
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
