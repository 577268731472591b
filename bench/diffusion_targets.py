#!/usr/bin/env python
"""What makes a mask-conditioned diffusion model use its condition? One training run per variant, scored with
its condition and with it hidden.

    python bench/diffusion_targets.py --target eps|x0|v --loss all|hole [--replace] [--size 32] [--steps 800]

A TimeUNet(base 32, mults 1-2-2) conditioned on ``mask_condition`` trains ``--steps`` AdamW steps of batch 16 on
``--size`` px patches of ``--pool``/train (8 per mural, zoom 0.25-0.5), predicting ``--target``, its squared error
averaged over ``--loss`` pixels; ``--replace`` pastes the clean known pixels into x_t in training and sampling
(Palette's inpainting). Then DDIM-20 restores 2 patches of each ``--pool``/heldout mural (random-walk holes 10-40 %)
from fixed noise, with the condition and with it hidden (all zeros), against OpenCV Telea. Prints one JSON line
(hole PSNR and SSIM of each) and appends it to ``--out``. BENCHMARKS.md, "Diffusion: why the conditional model
ignored its condition", is a table of these lines.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from murallab import metrics
from murallab.classical import telea
from murallab.data import MuralPatchDataset, composite, random_walk_masks
from murallab.diffusion import NoiseSchedule, TimeUNet, from_diffusion, mask_condition, timesteps, to_diffusion

REPO = Path(__file__).resolve().parents[1]


def patches(root: Path, per_mural: int, size: int, seed: int) -> torch.Tensor:
    data = MuralPatchDataset(root, patch_size=64, patches_per_image=per_mural, scale=(0.25, 0.5), seed=seed,
                             upscale=True)
    x = torch.stack([data[i]["image"] for i in range(len(data))])
    return F.adaptive_avg_pool2d(x, size) if size != 64 else x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=("eps", "x0", "v"), required=True)
    ap.add_argument("--loss", choices=("all", "hole"), required=True)
    ap.add_argument("--replace", action="store_true")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--pool", type=Path, default=REPO.parent / "shared" / "murals_pool")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "diffusion_targets.jsonl")
    args = ap.parse_args()
    if not args.pool.is_dir():
        print(f"bench/diffusion_targets.py: skipped, no murals at {args.pool}")
        return
    train, test = patches(args.pool / "train", 8, args.size, 0), patches(args.pool / "heldout", 2, args.size, 1)
    schedule = NoiseSchedule.cosine(1000)
    torch.manual_seed(0)
    net = TimeUNet(cond_channels=4, base=32, mults=(1, 2, 2), prediction=args.target)
    masks = random_walk_masks(512, args.size, hole_ratio=(0.1, 0.4), seed=2)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = 1e-3 * min(1, (step + 1) / 50) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / args.steps)))
        x0 = to_diffusion(train[torch.randint(0, len(train), (16,), generator=g)])
        m = masks[torch.randint(0, len(masks), (16,), generator=g)]
        t = torch.randint(0, 1000, (16,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = schedule.q_sample(x0, t, noise)
        if args.replace:
            x_t = composite(x0, m, x_t)
        out = net(x_t, t, mask_condition(from_diffusion(x0), m))
        weight = (1 - m) if args.loss == "hole" else torch.ones_like(m)
        loss = (((out - schedule.target(x0, noise, t, args.target)) ** 2) * weight).sum() / (weight.sum() * 3)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    train_seconds = time.perf_counter() - t0
    net.eval()

    @torch.no_grad()
    def ddim(known, mask, cond_mask, steps=20):
        x = torch.randn(known.shape, generator=torch.Generator().manual_seed(0))
        cond, ts = mask_condition(known, cond_mask), timesteps(1000, steps)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            if args.replace:
                x = composite(to_diffusion(known), cond_mask, x)
            x0 = schedule.split(net(x, torch.full((len(x),), t), cond), x, t, args.target)[1].clamp(-1, 1)
            a, a_prev = schedule.alpha_bar(t, x), schedule.alpha_bar(t_prev, x)
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * (x - a.sqrt() * x0) / (1 - a).sqrt()
        return composite(known, mask, from_diffusion(x))

    mask = random_walk_masks(len(test), args.size, hole_ratio=(0.1, 0.4), seed=7)
    known = test * mask
    result = {"target": args.target, "loss": args.loss, "replace": args.replace, "size": args.size,
              "steps": args.steps, "train_seconds": round(train_seconds)}
    for name, image in (("with condition", ddim(known, mask, mask)),
                        ("condition hidden", ddim(known, mask, torch.zeros_like(mask))),
                        ("Telea", telea(known, mask))):
        result[name] = [round(metrics.psnr(image, test, mask).item(), 2),
                        round(metrics.ssim(image, test, mask).item(), 3)]
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
