#!/usr/bin/env python
"""SSIM speed: murallab's ssim against kornia.metrics.ssim and pytorch_msssim.ssim, forward + backward.

    python bench/ssim.py [--batch 8] [--size 256] [--threads 1] [--rounds 7]

All three run in the same process on the same batch, in interleaved rounds (so a slow spell of the machine hits
them alike), and each row reports its median time. The task is a loss: the prediction requires grad, the target
does not, and one step is ``ssim(pred, target)`` reduced to a mean, then ``backward()``. Goals: no slower than
kornia, and at most 0.5x pytorch-msssim. Forward-only times (no grad, as in evaluation) are shown for information.

kornia is called as ``kornia.metrics.ssim(x, y, 11).mean()`` (its default 'same' padding) and pytorch-msssim as
``pytorch_msssim.ssim(x, y, data_range=1.0)``: each library's usual call, not the identical number (see
murallab/losses/ssim.py for how they differ).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from murallab.losses import ssim


def references():
    """name -> fn(x, y) returning a scalar SSIM; missing libraries are skipped with a note."""
    fns = {"murallab.losses.ssim": lambda x, y: ssim(x, y)}
    try:
        import kornia
        fns["kornia.metrics.ssim"] = lambda x, y: kornia.metrics.ssim(x, y, 11).mean()
    except ImportError:
        print("kornia not installed: pip install -e '.[test]'")
    try:
        import pytorch_msssim
        fns["pytorch_msssim.ssim"] = lambda x, y: pytorch_msssim.ssim(x, y, data_range=1.0)
    except ImportError:
        print("pytorch-msssim not installed: pip install -e '.[test]'")
    return fns


def step(fn, pred, target, backward: bool) -> float:
    """Seconds for one call (and backward)."""
    t0 = time.perf_counter()
    if backward:
        pred.grad = None
        fn(pred, target).backward()
    else:
        with torch.no_grad():
            fn(pred, target)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    target = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    noise = torch.randn(target.shape, generator=g)
    pred = (target + 0.1 * noise).clamp(0, 1).requires_grad_()
    fns = references()
    values = {name: float(fn(pred, target).detach()) for name, fn in fns.items()}
    for fn in fns.values():  # warm-up
        step(fn, pred, target, True)
    times = {(name, bw): [] for name in fns for bw in (True, False)}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            for bw in (True, False):
                times[name, bw].append(step(fn, pred, target, bw))
    med = {k: statistics.median(v) for k, v in times.items()}

    print(f"SSIM, batch {args.batch}x3x{args.size}x{args.size}, {args.threads} thread(s), "
          f"median of {args.rounds} interleaved rounds")
    refs = [n for n in fns if n != "murallab.losses.ssim"]
    print(f"{'implementation':<22} {'value':>9} {'fwd+bwd ms':>11} {'fwd ms':>8}" + "".join(
        f" {'ours/' + n.split('.')[0]:>18}" for n in refs))
    ours = "murallab.losses.ssim"
    for name in fns:
        row = f"{name:<22} {values[name]:>9.6f} {med[name, True] * 1e3:>11.1f} {med[name, False] * 1e3:>8.1f}"
        if name == ours:
            row += "".join(f" {med[ours, True] / med[n, True]:>11.2f} / {med[ours, False] / med[n, False]:.2f}"
                           for n in refs)
        print(row)
    print("(ratios: fwd+bwd / fwd only; below 1 = murallab faster)")
    if "kornia.metrics.ssim" in fns:
        r = med[ours, True] / med["kornia.metrics.ssim", True]
        print(f"goal fwd+bwd <= 1.0x kornia: {'met' if r <= 1.0 else 'NOT met'} ({r:.2f}x)")
    if "pytorch_msssim.ssim" in fns:
        r = med[ours, True] / med["pytorch_msssim.ssim", True]
        print(f"goal fwd+bwd <= 0.5x pytorch-msssim: {'met' if r <= 0.5 else 'NOT met'} ({r:.2f}x)")


if __name__ == "__main__":
    main()
