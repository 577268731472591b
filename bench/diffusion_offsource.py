#!/usr/bin/env python
"""Diffusion restoration on murals from sources the models never saw: one sample, the mean of samples, Telea.

    OMP_NUM_THREADS=1 python bench/diffusion_offsource.py [--pool ../shared/murals_pool] [--checkpoint
        pretrained:diffusion-64] [--restorer pretrained:restorer-small] [--crops-per-scan 2] [--seed 0]
        [--stops 0.1 0.2 ...] [--trajectory] [--out runs/bench_diffusion_offsource]

1. Images: every file of ``--pool``/heldout_faces (painted faces) and ``--pool``/heldout_scans (mural scans and
   crops), scoring-only folders whose sources are not those of the models' training murals. One square crop per face
   and ``--crops-per-scan`` per scan (side 50-100 % of the short side, position and side from ``--seed``), shrunk
   to the model's size (64 px) with area averaging; random-walk holes of 10-40 % (``random_walk_masks``, same seed).
2. Restores them with OpenCV Telea, push-pull, the restorer the diffusion model refines (``--restorer``) alone, one
   DDIM-50 sample (the sampler's default last call at 0.4 T, ``stop``), the same sample run to t = 0 (``stop=0``),
   the mean of 10 DDIM-5 samples, and the one-step estimate (x̂_0 at t = T-1, a regression); with ``--stops``, one
   DDIM-50 sample per last-call step given (fractions of T).
3. Prints, per method, the PSNR / SSIM of the composite (whole image and hole only), the "blob" fraction (hole pixels
   whose largest channel error exceeds 0.3), the saturated-blob fraction ("sat": of those, the ones with a channel
   at <= 0.02 or >= 0.98), the share of the saturated blobs within 4 px of the image edge ("edge"; a fifth of the
   hole pixels lie there) and the hole's high-frequency energy ratio (``hf_ratio``: the squared
   Laplacian of the output summed over the hole, over the same sum of the truth; 1 = the truth's texture, below 1 =
   blur, above 1 = too much detail or noise). Writes results.json and a PNG grid of examples to ``--out``.
4. ``--trajectory``: one DDIM-50 trajectory run to t = 0, its estimate x̂_0 scored after every fifth call (where the
   saturated blobs appear along the way).

"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from murallab import metrics  # noqa: E402
from murallab._atomic import write_text  # noqa: E402
from murallab.classical import push_pull, telea  # noqa: E402
from murallab.data import composite, load_image, random_walk_masks  # noqa: E402
from murallab.data.io import list_images  # noqa: E402
from murallab.diffusion.samplers import (ddim_step, from_diffusion, generator, paste_known,  # noqa: E402
                                         predict_eps, timesteps)
from murallab.train import load_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BLOB_ERROR = 0.3


def crops(pool: Path, size: int, per_scan: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """Square crops (side 50-100 % of the short side) of the held-out faces (1 each) and scans (``per_scan`` each),
    shrunk to ``size`` px: ``((N, 3, size, size) in [0, 1], names)``."""
    rng = np.random.default_rng(seed)
    out, names = [], []
    for folder, n in (("heldout_faces", 1), ("heldout_scans", per_scan)):
        for path in list_images(pool / folder):
            image = load_image(path)
            h, w = image.shape[-2:]
            for _ in range(n):
                side = int(round(min(h, w) * rng.uniform(0.5, 1.0)))
                y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                patch = image[None, :, y:y + side, x:x + side]
                out.append(F.interpolate(patch, size=(size, size), mode="area")[0].clamp(0, 1))
                names.append(path.name)
    return torch.stack(out), names


def blob_fraction(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """The fraction of hole pixels whose largest channel error exceeds ``BLOB_ERROR`` (saturated blobs)."""
    err = (pred - target).abs().amax(1, keepdim=True) > BLOB_ERROR
    return ((err & (mask == 0)).sum() / (mask == 0).sum()).item()


def edge_distance(size: int) -> torch.Tensor:
    """``(size, size)``: each pixel's distance in pixels to the nearest image edge (0 on the edge)."""
    i = torch.arange(size)
    d = torch.minimum(i, size - 1 - i)
    return torch.minimum(d[:, None], d[None, :])


@torch.no_grad()
def trajectory(model, image, known, mask, seed: int, steps: int = 50, every: int = 5) -> list[dict]:
    """One DDIM trajectory of the one-scale ``model`` run to t = 0: x̂_0 (composited) scored after every ``every``-th
    call and the last."""
    net, sched = model.nets[0], model.schedule
    cond = model.condition(known, mask)
    g = generator(seed, known.device)
    x = torch.randn(known.shape, generator=g, device=known.device)
    ts, rows = timesteps(sched.num_steps, steps), []
    for i, t in enumerate(ts):
        x = paste_known(sched, x, known, mask, t, g)
        eps = predict_eps(net, sched, x, t, cond)
        if i % every == 0 or i == len(ts) - 1:
            est = composite(known, mask, from_diffusion(sched.predict_x0(x, t, eps)))
            rows.append(dict(t=t, psnr=metrics.psnr(est, image).item(), ssim=metrics.ssim(est, image).item(),
                             sat=metrics.blob_share(est, image, mask), hf_ratio=metrics.hf_ratio(est, image, mask)))
        x = ddim_step(sched, eps, t, ts[i + 1] if i + 1 < len(ts) else -1, x)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, default=REPO.parent / "shared" / "murals_pool",
                    help="the folder holding heldout_faces/ and heldout_scans/")
    ap.add_argument("--checkpoint", default="pretrained:diffusion-64", help="a one-scale DiffusionRestorer")
    ap.add_argument("--restorer", default="pretrained:restorer-small", help="a one-pass restorer ('' to skip)")
    ap.add_argument("--crops-per-scan", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stops", type=float, nargs="*", default=[], help="more DDIM-50 rows: last calls at these x T")
    ap.add_argument("--trajectory", action="store_true", help="score x̂_0 along one DDIM-50 trajectory to t = 0")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_diffusion_offsource")
    args = ap.parse_args()
    if not (args.pool / "heldout_faces").is_dir():
        print(f"bench/diffusion_offsource.py: skipped, no heldout_faces/ under {args.pool} (pass --pool)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.checkpoint)[0].eval()
    image, names = crops(args.pool, model.size, args.crops_per_scan, args.seed)
    mask = random_walk_masks(len(image), model.size, hole_ratio=(0.1, 0.4), seed=args.seed)
    known = image * mask
    print(f"{len(image)} crops of {model.size} px from {args.pool}/heldout_faces and heldout_scans; holes "
          f"{(1 - mask).mean().item():.0%} on average; {torch.get_num_threads()} torch thread(s)")

    def ddim(steps, **kw):
        return lambda: model.sample(known, mask, sampler="ddim", steps=steps, seed=args.seed, **kw)

    methods = [("Telea", lambda: telea(known, mask)), ("push-pull", lambda: push_pull(known, mask))]
    if args.restorer:
        restorer = load_model(args.restorer)[0].eval()
        methods.append((args.restorer.removeprefix("pretrained:") + " alone",
                        lambda: composite(known, mask, restorer(known, mask).float().clamp(0, 1))))
    methods += [("one DDIM-50 sample", ddim(50)), ("one DDIM-50 sample, run to t = 0", ddim(50, stop=0.0)),
                ("mean of 10 DDIM-5 samples", ddim(5, samples=10)), ("one step (x0 at T-1)", ddim(1))]
    methods += [(f"one DDIM-50 sample, last call at {s:g} T", ddim(50, stop=s)) for s in args.stops]
    rows, outputs = [], {}
    near_edge = edge_distance(model.size).expand_as(mask) < 4
    print(f"hole pixels within 4 px of the image edge: {near_edge[mask == 0].float().mean().item():.2f}")
    print(f"\n{'method':<34}{'PSNR':>7}{'SSIM':>7}{'PSNR hole':>10}{'SSIM hole':>10}{'blobs':>7}{'sat':>8}"
          f"{'edge':>6}{'hf_ratio':>9}{'seconds':>8}")
    for label, fn in methods:
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn()
        seconds = time.perf_counter() - t0
        assert torch.equal(out * mask, image * mask), f"{label} changed known pixels"
        outputs[label] = out
        r = dict(method=label, psnr=metrics.psnr(out, image).item(), ssim=metrics.ssim(out, image).item(),
                 psnr_hole=metrics.psnr(out, image, mask).item(), ssim_hole=metrics.ssim(out, image, mask).item(),
                 blobs=blob_fraction(out, image, mask), hf_ratio=metrics.hf_ratio(out, image, mask), seconds=seconds)
        sat = metrics.saturated_blobs(out, image, mask)
        r["sat"] = (sat.sum() / (mask == 0).sum()).item()
        r["sat_near_edge"] = (sat & near_edge).sum().item() / max(sat.sum().item(), 1)
        rows.append(r)
        print(f"{label:<34}{r['psnr']:>7.2f}{r['ssim']:>7.3f}{r['psnr_hole']:>10.2f}{r['ssim_hole']:>10.3f}"
              f"{r['blobs']:>7.3f}{r['sat']:>8.4f}{r['sat_near_edge']:>6.2f}{r['hf_ratio']:>9.2f}{seconds:>8.1f}")
    if args.trajectory:
        rows_t = trajectory(model, image, known, mask, args.seed)
        print("\nx̂_0 along one DDIM-50 trajectory run to t = 0 (every fifth call, and the last):")
        print(f"{'t':>5}{'PSNR':>7}{'SSIM':>7}{'sat':>8}{'hf_ratio':>9}")
        for r in rows_t:
            print(f"{r['t']:>5}{r['psnr']:>7.2f}{r['ssim']:>7.3f}{r['sat']:>8.4f}{r['hf_ratio']:>9.3f}")
    by = {r["method"]: r for r in rows}
    tel, one, mean = by["Telea"], by["one DDIM-50 sample"], by["mean of 10 DDIM-5 samples"]
    targets = {"one DDIM-50 sample: PSNR within 1.5 dB of Telea's": one["psnr"] >= tel["psnr"] - 1.5,
               "one DDIM-50 sample: SSIM >= Telea's": one["ssim"] >= tel["ssim"],
               "mean of 10 DDIM-5 samples: PSNR >= Telea's": mean["psnr"] >= tel["psnr"]}
    print("\ntargets (composite, whole image):")
    for target, met in targets.items():
        print(f"  {'met    ' if met else 'NOT met'}  {target}")
    picks = torch.linspace(0, len(image) - 1, min(8, len(image))).long()
    shown = [("holes", known + (1 - mask) * torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1))] + \
        list(outputs.items()) + [("truth", image)]
    fig, axes = plt.subplots(len(picks), len(shown), figsize=(1.5 * len(shown), 1.5 * len(picks)))
    for row, i in enumerate(picks):
        for col, (label, x) in enumerate(shown):
            ax = axes[row, col]
            ax.imshow(x[i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=6)
    fig.savefig(args.out / "examples.png", dpi=120, bbox_inches="tight")
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "crops": len(image), "names": names,
              "methods": rows, "targets": targets, "trajectory": rows_t if args.trajectory else None}
    write_text(args.out / "results.json", json.dumps(report, indent=2))
    print(f"\nwrote {args.out / 'results.json'} and examples.png")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
