#!/usr/bin/env python
"""Diffusion restoration: each method's model calls, seconds and quality, against OpenCV Telea.

    python bench/diffusion.py [--size 32] [--train-steps 1500] [--base 32] [--murals ../shared/murals]
                              [--repaint 250 10 10] [--device cpu] [--out runs/bench_diffusion]

1. Trains (or loads from --out, same config) an unconditional, a mask-conditioned and a two-scale DiffuMural-lite
   U-Net on procedural-mural patches of --size px (T = 1000, cosine schedule).
2. Restores held-out damaged patches (procedural murals with unseen seeds; and, with --murals, patches of the real
   murals there) with DDIM-50, DDPM-250 (strided), RePaint (--repaint steps/jump/resamplings; the paper's 250/10/10
   costs 2,410 model calls) and multi-scale DDIM-50 per scale, plus Telea.
3. Prints one table per test set: model calls, seconds (wall clock, this machine, all patches at once) and
   hole-only PSNR / SSIM, full-image PSNR. Names the device. Writes results.json to --out.
A CPU run at the defaults takes tens of minutes (mostly RePaint's 2,410 calls); pass a reduced --repaint to shorten it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from murallab import device as pick_device
from murallab import metrics
from murallab._atomic import write_text
from murallab.classical import telea
from murallab.data import list_images, load_image, make_mural, paint_damage, random_walk_masks, sample_patches
from murallab.diffusion import (CallCounter, NoiseSchedule, TimeUNet, ddim_sample, ddpm_sample, mask_condition,
                                multiscale_sample, repaint, repaint_plan, train_diffusion, train_multiscale)


def evaluate(name, image, mask, models, schedule, args, dev):
    damaged = paint_damage(image, mask, seed=1)
    known, m = damaged.to(dev), mask.to(dev)
    cond = mask_condition(known, m)
    uncond, masked, scale_models = models
    steps, jump, resample = args.repaint
    methods = {
        "DDIM-50": (masked, lambda n: ddim_sample(n, schedule, known=known, mask=m, cond=cond, steps=50)),
        "DDPM-250": (masked, lambda n: ddpm_sample(n, schedule, known=known, mask=m, cond=cond, steps=250)),
        f"RePaint {steps}/{jump}/{resample}": (uncond, lambda n: repaint(n, schedule, known, m, steps=steps,
                                                                         jump_length=jump, jump_n_sample=resample)),
        "multi-scale DDIM-50": (scale_models, lambda ns: multiscale_sample(ns, schedule, known, m, args.scales,
                                                                           steps=50)),
    }
    rows = []
    for method, (net, run) in methods.items():
        counted = [CallCounter(n) for n in net] if isinstance(net, list) else CallCounter(net)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        restored = run(counted).cpu()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        calls = sum(c.calls for c in counted) if isinstance(counted, list) else counted.calls
        rows.append((method, calls, seconds, restored))
    t0 = time.perf_counter()
    filled = telea(damaged, mask)
    rows.append(("Telea", 0, time.perf_counter() - t0, filled))
    print(f"\n{name}: {len(image)} patches of {image.shape[-1]} px")
    print(f"{'method':<24}{'calls':>7}{'seconds':>9}{'PSNR hole':>11}{'SSIM hole':>11}{'PSNR':>8}")
    table = []
    for method, calls, seconds, restored in rows:
        r = dict(method=method, calls=calls, seconds=seconds, psnr_hole=metrics.psnr(restored, image, mask).item(),
                 ssim_hole=metrics.ssim(restored, image, mask).item(), psnr=metrics.psnr(restored, image).item())
        table.append(r)
        print(f"{method:<24}{calls:>7}{seconds:>9.2f}{r['psnr_hole']:>11.2f}{r['ssim_hole']:>11.3f}{r['psnr']:>8.2f}")
    return table


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--train-steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-test", type=int, default=16, help="held-out patches, 4 per mural: a multiple of 4")
    p.add_argument("--repaint", type=int, nargs=3, default=[250, 10, 10], metavar=("STEPS", "JUMP", "RESAMPLE"))
    p.add_argument("--murals", default=None, help="folder of real murals for a second test set")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for tiny nets here)")
    p.add_argument("--out", default="runs/bench_diffusion")
    args = p.parse_args()
    if args.n_test < 4 or args.n_test % 4:
        p.error(f"--n-test must be a positive multiple of 4 (4 patches per held-out mural), got {args.n_test}")
    args.scales = [args.size // 2, args.size]
    torch.set_num_threads(args.threads)
    dev = pick_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({platform.processor() or 'cpu'}, " \
        f"{args.threads} thread(s))"
    print(f"device: {name}; RePaint plan {args.repaint}: "
          f"{repaint_plan(*args.repaint, num_train_steps=1000).model_calls} model calls")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    schedule = NoiseSchedule.cosine(1000)
    s = args.size
    train = torch.cat([sample_patches(make_mural(4 * s, seed=i), s, 16, seed=i) for i in range(64)])
    masks = random_walk_masks(512, s, hole_ratio=(0.1, 0.4), seed=2)
    kw = dict(steps=args.train_steps, batch_size=args.batch_size, lr=2e-3, seed=0, device=dev)

    def unet(c):
        torch.manual_seed(0)
        return TimeUNet(cond_channels=c, base=args.base, mults=(1, 2, 2)).to(dev)

    t0 = time.perf_counter()
    uncond, masked, scale_models = unet(0), unet(4), [unet(8) for _ in args.scales]
    train_diffusion(uncond, schedule, train, checkpoint=out / "unconditional.pt", **kw)
    train_diffusion(masked, schedule, train, condition=mask_condition, masks=masks, hole_only=True,
                    checkpoint=out / "mask_conditioned.pt", **kw)
    train_multiscale(scale_models, schedule, train, masks, args.scales, checkpoint_dir=out, hole_only=True,
                     cycle_weight=0.1, **kw)
    print(f"training (or loading) took {time.perf_counter() - t0:.0f} s")

    results = {"device": name, "args": {k: v for k, v in vars(args).items()}}
    image = torch.cat([sample_patches(make_mural(4 * s, seed=50_000 + i), s, 4, seed=i) for i in range(args.n_test // 4)])
    mask = random_walk_masks(len(image), s, hole_ratio=(0.15, 0.3), seed=7)
    models = (uncond, masked, scale_models)
    results["procedural"] = evaluate("held-out procedural murals", image, mask, models, schedule, args, dev)
    if args.murals:
        paths = [q for q in list_images(args.murals) if "mask" not in q.stem.lower() and "damaged" not in q.stem]
        real = torch.cat([sample_patches(load_image(q), s, max(1, args.n_test // len(paths)), seed=3, upscale=True)
                          for q in paths])
        rmask = random_walk_masks(len(real), s, hole_ratio=(0.15, 0.3), seed=8)
        results["murals"] = evaluate(f"{args.murals} patches", real, rmask, models, schedule, args, dev)
    write_text(out / "results.json", json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
