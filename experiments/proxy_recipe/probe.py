"""Quick probes behind the hypotheses in README.md, each on the model variants of ``diagnose.py``:

    cd experiments/proxy_recipe
    ../../.venv/bin/python probe.py scale focal_tiny focal_sigma02_h   # output/gradient scale at init
    ../../.venv/bin/python probe.py steps focal_tiny focal_conv_stem   # loss over 120 AdamW steps, task A
    ../../.venv/bin/python probe.py overfit vit_joint focal_tiny       # 60 steps on one batch, task A
    ../../.venv/bin/python probe.py tput conv3d_tiny --batch 32 128 [--contiguous]   # training clips/s of a step
    ../../.venv/bin/python probe.py profile mobile_former_tiny     # the ops that take a training step's time
    ../../.venv/bin/python probe.py dwconv conv3d_tiny             # depthwise Conv3d: PyTorch's vs ours (any model)

One torch thread, seed 0. ``scale`` feeds a unit-variance clip and prints the rms of every focal modulation's output
and the smallest per-tensor gradient maxima (a tensor whose gradients sit far below AdamW's eps, 1e-8, hardly moves).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from diagnose import MODEL_INITS, MODELS


def _model(name: str, num_classes: int = 12):
    from explorer.arch import Arch
    from explorer.models import build

    spec = MODELS[name]()
    spec["input"]["num_classes"] = num_classes
    torch.manual_seed(0)
    model = build(Arch.from_dict(spec))
    if name in MODEL_INITS:
        MODEL_INITS[name](model)
    return model


def scale(name: str) -> None:
    model = _model(name)
    outputs: dict[str, float] = {}
    for path, module in model.named_modules():
        if path.endswith("modulations.0"):
            module.register_forward_hook(
                lambda m, i, o, path=path: outputs.__setitem__(path, o.pow(2).mean().sqrt().item())
            )
    torch.manual_seed(1)
    logits = model(torch.randn(8, 3, 8, 32, 32))
    F.cross_entropy(logits, torch.randint(0, 12, (8,))).backward()
    for path, rms in outputs.items():
        print(f"{name} {path}: output rms {rms:.2e} (input rms 1)")
    grads = sorted(
        (p.grad.abs().max().item(), n)
        for n, p in model.named_parameters()
        if p.grad is not None and p.grad.abs().max() > 0
    )
    print(f"{name} smallest non-zero gradient maxima: " + ", ".join(f"{n} {g:.1e}" for g, n in grads[:3]))


def _task_a():
    from explorer.data.tasks import TaskConfig, load_task

    return load_task(TaskConfig(name="a", preset="demo", seed=0))


def steps(name: str, data, count: int = 120, lr: float = 3e-3) -> None:
    from explorer.train import to_input

    model = _model(name, data.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(count):
        idx = torch.randint(0, len(data.train_x), (32,), generator=gen)
        loss = F.cross_entropy(model(to_input(data.train_x[idx])), data.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            losses.append(f"{step}:{loss.item():.2f}")
    print(f"{name} training loss by step (batch 32, lr {lr}): {' '.join(losses)}")


def overfit(name: str, data, count: int = 60) -> None:
    from explorer.train import to_input

    model = _model(name, data.num_classes)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    x, y = to_input(data.train_x[:32]), data.train_y[:32]
    losses = []
    for step in range(count):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 15 == 0 or step == count - 1:
            losses.append(f"{loss.item():.2f}")
    print(f"{name} one-batch losses: {' '.join(losses)}")


def tput(name: str, batches: list[int], channels_last: bool = True, repeats: int = 3) -> None:
    """Training clips/s of one AdamW step on random clips (median of ``repeats`` timings of >= 256 clips, after 3
    warm-up steps): the model's own speed, without data, evaluation or the loop around it."""
    import statistics
    import time

    model = _model(name)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    for batch in batches:
        x = torch.randn(batch, 3, 8, 32, 32)
        x = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
        y = torch.randint(0, 12, (batch,))

        def step() -> None:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        count, speeds = max(1, 256 // batch), []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(count):
                step()
            speeds.append(count * batch / (time.perf_counter() - start))
        layout = "channels-last" if channels_last else "contiguous"
        print(f"{name:24s} batch {batch:4d} {layout}: {statistics.median(speeds):7.1f} training clips/s", flush=True)


def profile(name: str, rows: int = 15) -> None:
    """``torch.profiler`` table of 5 training steps (batch 32, channels-last clips), sorted by self CPU time."""
    from torch.profiler import profile as torch_profile

    model = _model(name)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(32, 3, 8, 32, 32).contiguous(memory_format=torch.channels_last_3d)
    y = torch.randint(0, 12, (32,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    with torch_profile() as prof:
        for _ in range(5):
            step()
    print(f"{name}:\n{prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=rows)}")


def _median_ms(fn, repeats: int, warmups: int) -> float:
    """Median wall time of ``fn`` in ms over ``repeats`` calls, after ``warmups`` untimed ones."""
    import statistics
    import time

    for _ in range(warmups):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def dwconv(repeats: int = 7) -> None:
    """A depthwise 3×3×3 Conv3d, C = 128, 32 clips of 8×8×8 (Mobile-Former's hidden layer): forward alone, then
    forward + backward with ``nn.Conv3d`` (contiguous and channels-last input) and with ``DepthwiseConv3d``."""
    import torch.nn as nn

    from explorer.blocks.layers import DepthwiseConv3d

    ours = DepthwiseConv3d(128, 128, 3, padding=1, bias=False)
    ref = nn.Conv3d(128, 128, 3, padding=1, groups=128, bias=False)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(32, 128, 8, 8, 8)
    layouts = {"contiguous": x, "channels-last": x.contiguous(memory_format=torch.channels_last_3d)}

    def ms(fn) -> float:
        return _median_ms(fn, repeats, warmups=2)

    for layout, inp in layouts.items():
        with torch.no_grad():
            forward = ms(lambda: ref(inp))
        leaf = inp.clone().requires_grad_()
        print(
            f"{layout:13s} forward {forward:6.1f} ms | forward + backward: nn.Conv3d "
            f"{ms(lambda: ref(leaf).sum().backward()):6.1f} ms, DepthwiseConv3d "
            f"{ms(lambda: ours(leaf).sum().backward()):6.1f} ms",
            flush=True,
        )


def tconv(repeats: int = 15) -> None:
    """Focal modulation's dense temporal conv, forward + backward at one thread: ours (a (k, 1) Conv2d on the
    channels-last (B, C, T, H·W) view, no copy) against the release's form (a Conv1d on a (B·H·W, C, T) copy), with
    the same weights and outputs (checked), at proxy and released shapes."""
    import torch.nn as nn
    import torch.nn.functional as F

    def ms(fn) -> float:
        return _median_ms(fn, repeats, warmups=3)

    for b, t, h, w, c, k in [(16, 8, 8, 8, 32, 3), (16, 8, 4, 4, 64, 5), (1, 8, 56, 56, 96, 3), (1, 8, 28, 28, 192, 5)]:
        conv = nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0), bias=False)
        z = torch.randn(b, t, h, w, c, requires_grad=True)

        def ours() -> torch.Tensor:  # (B, T, H·W, C)
            return conv(z.flatten(2, 3).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

        def release() -> torch.Tensor:
            y = F.conv1d(z.permute(0, 2, 3, 4, 1).reshape(b * h * w, c, t), conv.weight.squeeze(-1), padding=k // 2)
            return y.reshape(b, h, w, c, t).permute(0, 4, 1, 2, 3).flatten(2, 3)

        torch.testing.assert_close(ours(), release(), atol=1e-5, rtol=1e-5)
        a, r = ms(lambda: ours().sum().backward()), ms(lambda: release().sum().backward())
        print(
            f"B,T,H,W,C,k = {b},{t},{h},{w},{c},{k}: Conv2d view {a:6.2f} ms, Conv1d copy {r:6.2f} ms "
            f"(ours / release {a / r:.2f})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["scale", "steps", "overfit", "tput", "profile", "dwconv", "tconv"])
    parser.add_argument(
        "models", nargs="*", help=f"diagnose.py model names (dwconv and tconv take none): {', '.join(sorted(MODELS))}"
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[32], help="tput: batch sizes")
    parser.add_argument("--contiguous", action="store_true", help="tput: contiguous clips instead of channels-last")
    args = parser.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}")
    torch.set_num_threads(1)
    data = _task_a() if args.probe in ("steps", "overfit") else None
    if args.probe in ("dwconv", "tconv"):
        dwconv() if args.probe == "dwconv" else tconv()
        return
    for name in args.models:
        if args.probe == "profile":
            profile(name)
        elif args.probe == "tput":
            tput(name, args.batch, channels_last=not args.contiguous)
        elif args.probe == "scale":
            scale(name)
        elif args.probe == "steps":
            steps(name, data)
        else:
            overfit(name, data)


if __name__ == "__main__":
    main()
