#!/usr/bin/env python
"""Diffusion restoration on real murals: each sampler's model calls, seconds and hole scores, against Telea.

    python bench/diffusion.py [--checkpoint pretrained:diffusion-64] [--multiscale pretrained:diffumural-64]
                              [--unconditional pretrained:unconditional-64] [--heldout ../shared/murals_pool/heldout]
                              [--per-mural 2] [--repaint 50 5 5]
                              [--device cpu] [--out runs/bench_diffusion]

1. Held-out set: ``--per-mural`` patches of each mural in ``--heldout`` (never trained on), cut as the models were
   trained (``MuralPatchDataset``: the checkpoint's patch size, zoom 0.25-1), random-walk holes of 10-40 %.
2. Restores them with the one-scale model (``--checkpoint``): DDIM-50, DDIM-25, the mean of 10 DDIM-5 samples (50
   calls), one step (x̂_0 from pure noise: a regression), strided DDPM-50, RePaint (``--repaint``
   steps/jump/resamplings) with the condition hidden (the model as an unconditional one), and DDIM-50 with the
   condition hidden (the probe: what the condition is worth), and, for a model that refines a restorer's fill
   (``refine="pretrained:restorer-small"``), that restorer alone; RePaint with the unconditional model
   (``--unconditional``); with the multi-scale model (``--multiscale``), DiffuMural-lite at 25 DDIM calls per
   scale (50 in all, as DDIM-50), the same with the fine scale started from the coarse result at t = T/2, the 50
   calls split 5 + 45, 45 + 5 and 49 + 1 (the split that scored best on patches of training murals: a 32 px sample,
   then the 64 px network's one-step estimate given it), 1 coarse call (a regression to the coarse mean) and 49
   fine ones, and the mean of 5 samples of 5 + 5 calls; and with OpenCV Telea, push-pull, the mean colour of the
   known pixels, and the damage left in place (painted plaster). DDIM, DDPM and multi-scale stop at the samplers'
   default 0.4 T (``DiffusionRestorer.sample``'s ``stop``); DDIM-50, DDPM-50 and multi-scale 25 + 25 are also run
   to t = 0 (``stop=0``), to compare.
3. Blind localisation, DiffuMural's K-means (``kmeans_damage_mask``): IoU with the painted damage of the held-out
   patches, and with the hand-labelled real flaking of ``--murals``/bodhisattva_damaged.png.
4. Prints model calls, seconds (this machine, all patches at once) and hole PSNR / SSIM / full PSNR per method, and
   the targets it checks (DDIM-50 against Telea, multi-scale against DDIM-50, RePaint against Telea, the
   condition's worth). Writes results.json and a PNG of examples to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from murallab import device as pick_device  # noqa: E402
from murallab import metrics  # noqa: E402
from murallab._atomic import write_text  # noqa: E402
from murallab.classical import push_pull, telea  # noqa: E402
from murallab.data import MuralPatchDataset, composite, load_image, load_mask, paint_damage  # noqa: E402
from murallab.diffusion import ddim_sample, kmeans_damage_mask, repaint_plan  # noqa: E402
from murallab.diffusion.restorer import STOP  # noqa: E402
from murallab.train import load_model  # noqa: E402
from murallab.viz import show_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def mean_colour_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each patch's holes filled with the mean colour of its known pixels: the floor a restoration must beat."""
    mean = (image * mask).sum((2, 3), keepdim=True) / mask.sum((2, 3), keepdim=True).clamp_min(1)
    return composite(image, mask, mean.expand_as(image))


def run(name, model, fn, known, mask, dev):
    """``fn(model)`` timed, with its model calls counted; returns ``(name, calls, seconds, restored)``."""
    with model.counting_calls() as calls, torch.no_grad():
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        restored = fn(model, known.to(dev), mask.to(dev)).cpu()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return name, calls(), time.perf_counter() - t0, restored


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="pretrained:diffusion-64", help="a one-scale DiffusionRestorer")
    ap.add_argument("--multiscale", default="pretrained:diffumural-64", help="a multi-scale one ('' to skip)")
    ap.add_argument("--unconditional", default="pretrained:unconditional-64",
                    help="an unconditional one, for RePaint ('' to skip)")
    ap.add_argument("--heldout", type=Path, default=REPO.parent / "shared" / "murals_pool" / "heldout")
    ap.add_argument("--per-mural", type=int, default=2)
    ap.add_argument("--repaint", type=int, nargs=3, default=[50, 5, 5], metavar=("STEPS", "JUMP", "RESAMPLE"))
    ap.add_argument("--murals", type=Path, default=REPO.parent / "shared" / "murals",
                    help="where bodhisattva_damaged.png and its hand-labelled _mask.png are (blind localisation)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_diffusion")
    args = ap.parse_args()
    if not args.heldout.is_dir():
        print(f"bench/diffusion.py: skipped, no murals at {args.heldout} (pass --heldout)")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"CPU ({platform.processor() or 'cpu'}, {torch.get_num_threads()} threads)"
    model = load_model(args.checkpoint, dev)[0].eval()
    size = model.size
    data = MuralPatchDataset(args.heldout, patch_size=size, patches_per_image=args.per_mural, scale=(0.25, 1.0),
                             hole_ratio=(0.1, 0.4), upscale=True, seed=args.seed + 123)
    image = torch.stack([data[i]["image"] for i in range(len(data))])
    mask = torch.stack([data[i]["mask"] for i in range(len(data))])
    known = image * mask
    steps, jump, resample = args.repaint
    plan = repaint_plan(steps, jump, resample, model.schedule.num_steps)
    print(f"device: {name}; {len(image)} patches of {size} px from {args.heldout}; RePaint {steps}/{jump}/{resample}: "
          f"{plan.model_calls} model calls")

    def sampler(kind, n, seed=args.seed, **kw):
        return lambda m, k, mk: m.sample(k, mk, sampler=kind, steps=n, seed=seed, **kw)

    def hidden(m, k, mk):  # the probe: the same sampler, the known pixels and the mask hidden from the condition
        cond = torch.zeros(k.shape[0], 4, *k.shape[-2:], device=k.device)
        return ddim_sample(m.nets[0], m.schedule, known=k, mask=mk, cond=cond, steps=50, seed=args.seed,
                           end=round(STOP * (m.schedule.num_steps - 1)))

    rows = [run("DDIM-50", model, sampler("ddim", 50), known, mask, dev),
            run("DDIM-50, run to t = 0", model, sampler("ddim", 50, stop=0.0), known, mask, dev),
            run("DDIM-25", model, sampler("ddim", 25), known, mask, dev),
            run("mean of 10 DDIM-5", model, sampler("ddim", 5, samples=10), known, mask, dev),
            run("one step (x0 at t = T-1)", model, sampler("ddim", 1), known, mask, dev),
            run("DDPM-50", model, sampler("ddpm", 50), known, mask, dev),
            run("DDPM-50, run to t = 0", model, sampler("ddpm", 50, stop=0.0), known, mask, dev),
            run(f"RePaint {steps}/{jump}/{resample}, cond. hidden", model,
                sampler("repaint", steps, jump_length=jump, jump_n_sample=resample), known, mask, dev),
            run("DDIM-50, condition hidden", model, hidden, known, mask, dev)]
    if model.fill_net is not None:  # the one-pass restorer the diffusion refines (one call of another network)
        label, _, seconds, restored = run("restorer (its fill)", model, lambda m, k, mk: m.fill(k, mk), known,
                                          mask, dev)
        rows.append((label, 1, seconds, restored))
    repaint_row = f"RePaint {steps}/{jump}/{resample}, cond. hidden"
    if args.unconditional:
        uncond = load_model(args.unconditional, dev)[0].eval()
        repaint_row = f"RePaint {steps}/{jump}/{resample}"
        rows.append(run(repaint_row, uncond, sampler("repaint", steps, jump_length=jump, jump_n_sample=resample),
                        known, mask, dev))
    if args.multiscale:
        ms = load_model(args.multiscale, dev)[0].eval()
        if ms.size != size:
            raise SystemExit(f"--multiscale restores {ms.size} px patches, --checkpoint {size} px: give a pair")
        rows.append(run("multi-scale DDIM 25+25", ms, sampler("multiscale", 25), known, mask, dev))
        rows.append(run("multi-scale 25+25, run to t = 0", ms, sampler("multiscale", 25, stop=0.0), known, mask,
                        dev))
        rows.append(run("multi-scale 25+25 from T/2", ms, sampler("multiscale", 25, refine_from=0.5), known,
                        mask, dev))
        rows.append(run("multi-scale 5+45", ms, sampler("multiscale", [5, 45]), known, mask, dev))
        rows.append(run("multi-scale 45+5", ms, sampler("multiscale", [45, 5]), known, mask, dev))
        rows.append(run("multi-scale 49+1", ms, sampler("multiscale", [49, 1]), known, mask, dev))
        rows.append(run("multi-scale 1+49", ms, sampler("multiscale", [1, 49]), known, mask, dev))
        rows.append(run("mean of 5 m-s 5+5", ms, sampler("multiscale", 5, samples=5), known, mask, dev))
    for label, fn in (("Telea", lambda: telea(known, mask)), ("push-pull", lambda: push_pull(known, mask)),
                      ("mean colour", lambda: mean_colour_fill(known, mask)),
                      ("damage left", lambda: paint_damage(image, mask, seed=args.seed))):
        t0 = time.perf_counter()
        out = fn()
        rows.append((label, 0, time.perf_counter() - t0, out))

    table = []
    print(f"\n{'method':<34}{'calls':>7}{'seconds':>9}{'PSNR hole':>11}{'SSIM hole':>11}{'PSNR':>8}")
    for label, calls, seconds, restored in rows:
        assert torch.equal(restored[mask.expand_as(image) == 1], image[mask.expand_as(image) == 1]) or \
            label == "damage left", f"{label} changed known pixels"
        r = dict(method=label, calls=calls, seconds=seconds, psnr_hole=metrics.psnr(restored, image, mask).item(),
                 ssim_hole=metrics.ssim(restored, image, mask).item(), psnr=metrics.psnr(restored, image).item())
        table.append(r)
        print(f"{label:<34}{calls:>7}{seconds:>9.1f}{r['psnr_hole']:>11.2f}{r['ssim_hole']:>11.3f}{r['psnr']:>8.2f}")
    by = {r["method"]: r for r in table}
    tel, ddim = by["Telea"], by["DDIM-50"]
    bars = {"DDIM-50 hole SSIM >= Telea's": ddim["ssim_hole"] >= tel["ssim_hole"],
            "DDIM-50 hole PSNR within 1.5 dB of Telea's": ddim["psnr_hole"] >= tel["psnr_hole"] - 1.5,
            f"{repaint_row}: hole PSNR within 1 dB of Telea's": by[repaint_row]["psnr_hole"] >= tel["psnr_hole"] - 1.0,
            "hiding the condition costs >= 3 dB": ddim["psnr_hole"] - by["DDIM-50, condition hidden"]["psnr_hole"] >= 3}
    if args.multiscale:
        for split in ("DDIM 25+25", "49+1"):  # 49 + 1: the split chosen on patches of training murals
            ms_row = by[f"multi-scale {split}"]
            bars[f"multi-scale {split} >= DDIM-50 in hole PSNR and SSIM"] = (
                ms_row["psnr_hole"] >= ddim["psnr_hole"] and ms_row["ssim_hole"] >= ddim["ssim_hole"])
    print("\ntargets:")
    for bar, met in bars.items():
        print(f"  {'met    ' if met else 'NOT met'}  {bar}")
    # blind localisation (DiffuMural's K-means): on the painted damage of the held-out patches, and on real flaking
    painted = paint_damage(image, mask, seed=args.seed)
    est = kmeans_damage_mask(painted)
    blind = {"painted_iou": metrics.iou(est == 0, mask == 0).item(), "painted_flagged": (1 - est).mean().item(),
             "painted_true": (1 - mask).mean().item()}
    bodhi = args.murals / "bodhisattva_damaged.png"
    if bodhi.exists():
        truth = load_mask(args.murals / "bodhisattva_damaged_mask.png", hole_value=255)[None] == 0
        est = kmeans_damage_mask(load_image(bodhi)[None]) == 0
        blind |= {"bodhisattva_iou": metrics.iou(est, truth).item(), "bodhisattva_flagged": est.float().mean().item(),
                  "bodhisattva_true": truth.float().mean().item()}
    print("\nK-means damage localisation: " + ", ".join(f"{k} {v:.3f}" for k, v in blind.items()))
    n = min(6, len(image))
    picks = torch.linspace(0, len(image) - 1, n).long()
    shown = [("damaged", painted)] + [(lbl, r) for lbl, _, _, r in rows if lbl != "damage left"] + [("truth", image)]
    show_images([x[i] for i in picks for _, x in shown], [lbl for _ in picks for lbl, _ in shown], ncols=len(shown),
                size=1.6)
    plt.savefig(args.out / "examples.png", dpi=110, bbox_inches="tight")
    report = {"device": name, "args": {k: str(v) for k, v in vars(args).items()}, "patches": len(image),
              "methods": table, "bars": bars, "kmeans": blind}
    write_text(args.out / "results.json", json.dumps(report, indent=2))
    print(f"\nwrote {args.out / 'results.json'} and examples.png")


if __name__ == "__main__":
    main()
