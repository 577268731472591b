#!/usr/bin/env python
"""PartialConv2d against nn.Conv2d, and PConvUNet training steps.

    python bench/partial_conv.py [--size 256] [--batch 8] [--repeats 5] [--device cpu|cuda] [--unet]

1. fwd+bwd of PartialConv2d(64, 64, 3, padding=1) against an nn.Conv2d of the same shape and weights, on the same
   input, interleaved in one process. Goal: at most 1.3x the plain convolution.
2. With ``--unet``: one Adam step of PConvUNet (the paper's 7 layers, base 64, and a CPU-sized 5 layers, base 16) on
   batch x 3 x size x size, in images/s, against the plain-convolution UNet of the same shape. On CUDA it also
   compares fp32 with bf16 autocast. ``--peer path/to/net.py`` adds naoto0804's PConvUNet (the popular port) with the
   same step.
Timings are medians over ``--repeats`` interleaved runs, so a drifting machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from murallab.data import random_walk_masks
from murallab.nn import PartialConv2d, PConvUNet, UNet


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_seconds(fns: dict, repeats: int, device: str) -> dict:
    """Median wall time of each zero-argument function, run interleaved ``repeats`` times after one warm-up."""
    times = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def layer_bench(args) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 64, args.size, args.size, generator=g).to(args.device).requires_grad_()
    mask = random_walk_masks(args.batch, args.size, seed=0).to(args.device)
    pconv = PartialConv2d(64, 64, 3, padding=1).to(args.device)
    conv = nn.Conv2d(64, 64, 3, padding=1).to(args.device)
    conv.load_state_dict(pconv.state_dict())

    def step(layer, *inputs):
        out = layer(*inputs)
        (out[0] if isinstance(out, tuple) else out).sum().backward()

    t = median_seconds({"nn.Conv2d": lambda: step(conv, x), "PartialConv2d": lambda: step(pconv, x, mask)},
                       args.repeats, args.device)
    ratio = t["PartialConv2d"] / t["nn.Conv2d"]
    print(f"fwd+bwd, batch {args.batch}, 64->64, 3x3, {args.size}^2, {args.device}, "
          f"{torch.get_num_threads()} threads (median of {args.repeats})")
    for name, s in t.items():
        print(f"  {name:<14} {s * 1000:8.1f} ms")
    print(f"  ratio {ratio:.2f}x   goal <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'}")


def peer_pconv_unet(path: str) -> nn.Module:
    """naoto0804's PConvUNet (the paper's 7 layers) from its ``net.py`` (MIT licence; not part of the kit): pass the
    file with ``--peer``. Its forward takes a 3-channel mask and returns ``(image, mask)``; wrapped here to the kit's
    ``forward(image, mask) -> image``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("naoto0804_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Peer(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module.PConvUNet()

        def forward(self, image, mask):
            return self.net(image * mask, mask.expand_as(image))[0]
    return Peer()


def unet_bench(args) -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(args.batch, 3, args.size, args.size, generator=g).to(args.device)
    mask = random_walk_masks(args.batch, args.size, seed=0).to(args.device)
    dtypes = [torch.float32] + ([torch.bfloat16] if args.device == "cuda" else [])
    nets = [("PConvUNet(7, base 64)", PConvUNet()), ("UNet(7, base 64)", UNet()),
            ("PConvUNet(5, base 16)", PConvUNet(5, base=16)), ("UNet(5, base 16)", UNet(5, base=16))]
    if args.peer:
        nets.insert(1, ("naoto0804 PConvUNet(7)", peer_pconv_unet(args.peer)))
    fns = {}
    for name, model in nets:
        model = model.to(args.device).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        for dtype in dtypes:
            def step(model=model, opt=opt, dtype=dtype):
                with torch.autocast(args.device, dtype=dtype, enabled=dtype != torch.float32):
                    loss = (model(image, mask) - image).abs().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            fns[f"{name} {str(dtype)[6:]}"] = step
    t = median_seconds(fns, args.repeats, args.device)
    print(f"train step (Adam, L1), batch {args.batch}, {args.size}^2, {args.device} (median of {args.repeats})")
    for name, s in t.items():
        print(f"  {name:<32} {s:7.3f} s/step  {args.batch / s:8.1f} images/s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--unet", action="store_true", help="also time PConvUNet train steps")
    ap.add_argument("--peer", help="with --unet: naoto0804's net.py, whose PConvUNet is timed beside the kit's")
    args = ap.parse_args()
    layer_bench(args)
    if args.unet:
        unet_bench(args)


if __name__ == "__main__":
    main()
