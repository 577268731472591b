#!/usr/bin/env python
"""Restoration quality on real murals: the kit's real-data preset against classical inpainting.

    python bench/restoration.py [--split pool|wall] [--epochs N | --minutes M] [--detector-minutes 10] [--device cpu]

1. Split *by image*. ``--split pool`` (default): train on ``--pool``/train (388 murals); hold out ``--pool``/heldout
   (42 murals, never trained on, never used to choose a checkpoint) and the ``--held-out`` murals of ``--data``.
   ``--split wall``: train on the ``--train`` murals of ``--data`` (the large wall) and hold out the others. From
   the damaged bodhisattva only patches with no labelled damage are held out.
2. Held-out set: ``--patch`` px patches, random-walk holes of 10-40 % (fixed seed), restored by the trained network
   (tiled composite), Telea, Navier-Stokes and push-pull (the floor). Reports PSNR, SSIM and hole-only PSNR per
   method, overall and per hole-ratio bin (10-20, 20-30, 30-40 %), and a ruler: the same scores for the truth
   blurred by σ = 1, 2, 4, 8 px in the holes (metrics.blurred_truth).
3. Trains the preset as it says (its epochs, or as many as fit in its phase's ``minutes``), or for --epochs, or
   for --minutes of wall time (Phase.minutes: after each epoch the budget left at that epoch's pace sets the last
   one, so the cosine learning rate anneals fully within the budget). (--checkpoint scores a trained restorer
   instead; --self-ensemble scores the mean of its outputs on each patch and its three flips.)
4. Detection: trains the blind preset (dual decoder, painted damage) for --detector-minutes on the same training
   murals (--detector-checkpoint scores a trained one instead), chooses its threshold on validation data (painted
   damage on patches of the training murals) and scores its damage map on bodhisattva_damaged.png against the
   hand-labelled mask (IoU, F1), and on painted damage of the held-out pool murals, photographed and sharp (a
   detector that finds only the sharp kind learned the shortcut, not the damage: murallab.data.damage).
Bar for the CPU preset: beat Telea by at least 1.5 dB PSNR and 0.02 SSIM, overall and in every bin, within 30
minutes on 2 CPU cores. Everything (figures, a PNG of examples, the JSON) goes to --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from murallab import metrics  # noqa: E402
from murallab._atomic import write_text  # noqa: E402
from murallab.classical import navier_stokes, push_pull, telea  # noqa: E402
from murallab.data import (DamageShapes, MuralPatchDataset, PaintedDamage, PairedAugment, list_images, load_image,  # noqa: E402
                           load_mask, patch_positions, random_walk_masks)
from murallab.models import build_model  # noqa: E402
from murallab.restore import detect, restore  # noqa: E402
from murallab.train import Phase, TrainConfig, fit, load_config, load_model  # noqa: E402
from murallab.train.config import build_loss  # noqa: E402
from murallab.viz import show_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


#: hole-ratio bins of the report, as (low, high) fractions
BINS = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.4))


def held_out_patches(data: Path, names: list[str], size: int, per_image: int, seed: int) -> torch.Tensor:
    """``(N, 3, size, size)`` patches from the held-out murals; damaged regions of the bodhisattva excluded."""
    out = []
    for name in names:
        image = load_image(data / name)
        damage_file = data / (Path(name).stem + "_mask.png")
        damaged = (load_mask(damage_file, hole_value=255) < 0.5)[0] if damage_file.exists() else None
        h, w = image.shape[-2:]
        candidates = patch_positions(h, w, size, per_image * 4, seed=seed)
        kept = [(t, l) for t, l in candidates if damaged is None or not damaged[t:t + size, l:l + size].any()]
        out += [image[:, t:t + size, l:l + size] for t, l in kept[:per_image]]
        print(f"  held out {len(kept[:per_image])} patches from {name}")
    return torch.stack(out)


def scores(restored, images, masks) -> dict:
    """Mean PSNR, SSIM and hole PSNR over all patches, and the same per hole-ratio bin (``"bins"``)."""
    per = {"psnr": metrics.psnr(restored, images, reduction="none"),
           "ssim": metrics.ssim(restored, images, reduction="none"),
           "psnr_hole": metrics.psnr(restored, images, masks, reduction="none")}
    ratio = 1 - masks.flatten(1).mean(1)
    bins = {}
    for lo, hi in BINS:
        inside = (ratio >= lo) & (ratio < hi) if hi < BINS[-1][1] else (ratio >= lo) & (ratio <= hi)
        if inside.any():
            bins[f"{lo:.0%}-{hi:.0%}"] = {k: v[inside].mean().item() for k, v in per.items()} | {
                "patches": int(inside.sum())}
    return {k: v.mean().item() for k, v in per.items()} | {"bins": bins}


def gains(ours: dict, floor: dict) -> dict:
    """PSNR and SSIM gains of ``ours`` over ``floor``, overall and per bin; ``bar_met`` when all reach the bar."""
    rows = {"all": (ours, floor)} | {b: (ours["bins"][b], floor["bins"][b]) for b in floor["bins"]}
    out = {name: {"psnr": o["psnr"] - f["psnr"], "ssim": o["ssim"] - f["ssim"]} for name, (o, f) in rows.items()}
    out["bar_met"] = all(g["psnr"] >= BAR_PSNR and g["ssim"] >= BAR_SSIM for g in out.values())
    return out


#: the CPU preset's bar: gains over Telea, overall and in every bin
BAR_PSNR, BAR_SSIM = 1.5, 0.02


def train_within(config: str, train_dir: Path, out: Path, minutes: float | None, device: str, seed: int,
                 epochs: int | None = None, hole_masks: Path | None = None):
    """Train ``config`` on the murals in ``train_dir`` for ``epochs``, or about ``minutes`` (epochs from a measured
    step time), or else the preset's own epochs. With ``hole_masks`` a share ``data.real_holes`` of the training holes
    are crops of those real damage masks (:class:`murallab.data.DamageShapes`).

    Validation (early stopping, best.pt) uses other patches of the training murals: the held-out murals are
    only ever scored, never used to choose a checkpoint.
    """
    cfg = load_config(REPO / config)
    cfg["train"].update(device=device, seed=seed, progress_bar=False)
    d = cfg["data"]
    torch.manual_seed(seed)
    model, loss = build_model(**cfg["model"]), build_loss(cfg["loss"])
    common = dict(patch_size=d["patch_size"], hole_ratio=tuple(d["hole_ratio"]), scale=tuple(d["scale"]),
                  holes=DamageShapes(hole_masks) if hole_masks else None, holes_p=d["real_holes"])
    n_murals = len(list_images(train_dir))
    # an epoch of at least ~3,200 patches (one wall: 3,200 of it; the pool: the preset's patches per mural), and
    # about 32 validation patches of one wall, one per mural of a pool
    train_set = MuralPatchDataset(train_dir, patches_per_image=max(d["patches_per_image"], 3200 // n_murals),
                                  seed=seed, augment=PairedAugment(seed=seed, **d["jitter"]), **common)
    val_set = MuralPatchDataset(train_dir, patches_per_image=max(1, 32 // n_murals), seed=seed + 1, **common)
    if d["paint_damage"]:
        train_set, val_set = PaintedDamage(train_set, seed), PaintedDamage(val_set, seed + 1)
    phases, train_cfg = [Phase(**p) for p in cfg["phases"]], TrainConfig(**cfg["train"])
    if epochs:  # a busy machine measures slow steps: --epochs says how many instead
        phases[0] = dataclasses.replace(phases[0], epochs=epochs, minutes=None)
    elif minutes:  # as many epochs as fit (fit re-plans after each epoch: Phase.minutes)
        phases[0] = dataclasses.replace(phases[0], epochs=10_000, minutes=minutes)
    t0 = time.perf_counter()
    result = fit(model, loss, train_set, val_set, phases, train_cfg, out, resume=True,
                 config={"name": cfg["name"], "model": cfg["model"], "loss": cfg["loss"]})
    return result, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=("pool", "wall", "sources"), default="pool",
                    help="pool: train on --pool/train, hold out --pool/heldout and the --held-out murals (default); "
                         "wall: train on the --train murals of --data, hold out the --held-out ones; "
                         "sources: leave each source out in turn (bench/sources.py)")
    ap.add_argument("--pool", type=Path, default=REPO.parent / "shared" / "murals_pool",
                    help="a folder with train/ and heldout/ mural folders (default: ../shared/murals_pool)")
    ap.add_argument("--pool-per-image", type=int, default=4, help="held-out patches per --pool/heldout mural")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "murals",
                    help="folder of the named real murals (default: ../shared/murals next to the repository)")
    ap.add_argument("--train", nargs="+", default=["cave_wall_large.jpg"], help="training murals of --split wall")
    ap.add_argument("--held-out", nargs="+",
                    default=["cave_wall_small.jpg", "flying_apsara_crop.png", "bodhisattva_damaged.png"])
    ap.add_argument("--config", default="configs/real_cpu.yaml")
    ap.add_argument("--detector-config", default="configs/real_blind_cpu.yaml")
    ap.add_argument("--minutes", type=float, help="a training budget: as many restorer epochs as fit in it "
                    "(default: the preset's epochs or budget)")
    ap.add_argument("--detector-minutes", type=float, default=10)
    ap.add_argument("--epochs", type=int, help="restorer epochs, instead of the preset's")
    ap.add_argument("--checkpoint", nargs="+", help="score this trained restorer (best.pt, or pretrained:NAME) "
                    "instead of training one; with --held-out cave_wall_large.jpg it measures the in-domain ceiling; "
                    "--split sources takes several")
    ap.add_argument("--seen", nargs="+", help="--split sources with --checkpoint: the sources they trained on")
    ap.add_argument("--per-source", type=int, default=48, help="--split sources: scored patches per source")
    ap.add_argument("--hole-masks", type=Path, help="a folder of real damage masks (255 = damage): a share "
                    "data.real_holes of the training holes are crops of them")
    ap.add_argument("--self-ensemble", action="store_true", help="score the mean of the restorer's outputs on the "
                    "patch and its three flips (test-time augmentation: four times the time)")
    ap.add_argument("--detector-checkpoint", type=Path, help="score this detector instead of training one, e.g. "
                    "pretrained:detector")
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--per-image", type=int, default=12)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0, help="seed of the held-out patches and masks")
    ap.add_argument("--train-seed", type=int, help="seed of the training runs (default: --seed); another value "
                    "repeats a training on the same held-out set")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_restoration")
    args = ap.parse_args()
    train_seed = args.seed if args.train_seed is None else args.train_seed
    if args.split == "sources":
        import sources

        args.train_seed = train_seed
        return sources.run(args, patches_from=held_out_patches, scores=scores, gains=gains, train_within=train_within)
    needed = [args.data] + ([args.pool / "train", args.pool / "heldout"] if args.split == "pool" else [])
    missing = [str(d) for d in needed if not d.is_dir()]
    if missing:
        print(f"bench/restoration.py: skipped, no murals at {', '.join(missing)} (pass --data / --pool, or --split)")
        return
    args.out.mkdir(parents=True, exist_ok=True)

    print("held-out set:")
    images = held_out_patches(args.data, args.held_out, args.patch, args.per_image, args.seed)
    if args.split == "pool":
        heldout = args.pool / "heldout"
        images = torch.cat([held_out_patches(heldout, [p.name for p in list_images(heldout)], args.patch,
                                             args.pool_per_image, args.seed), images])
    masks = random_walk_masks(len(images), args.patch, hole_ratio=(0.1, 0.4), seed=args.seed + 1)
    results = {"telea": scores(telea(images * masks, masks), images, masks),
               "navier_stokes": scores(navier_stokes(images * masks, masks), images, masks),
               "push_pull": scores(push_pull(images * masks, masks), images, masks)}

    with tempfile.TemporaryDirectory() as tmp:  # the training murals, linked (never copied into the project)
        train_dir = Path(tmp)
        for path in list_images(args.pool / "train") if args.split == "pool" else [args.data / n for n in args.train]:
            (train_dir / path.name).symlink_to(path.resolve())
        if args.checkpoint:
            training = {"checkpoint": args.checkpoint[0]}
        else:
            print("training the restorer:")
            result, seconds = train_within(args.config, train_dir, args.out / "restorer", args.minutes, args.device,
                                           train_seed, args.epochs, hole_masks=args.hole_masks)
            training = {"train_minutes": seconds / 60, "steps": result["steps"], "epochs": result["epochs"]}
        model, _ = load_model(args.checkpoint[0] if args.checkpoint else args.out / "restorer" / "best.pt",
                              args.device)
        t0 = time.perf_counter()
        flips = [(), (-1,), (-2,), (-2, -1)] if args.self_ensemble else [()]  # a flipped mural is still a mural
        ours = torch.stack([sum(restore(model, i.flip(f), m.flip(f), tile=256, overlap=32).flip(f) for f in flips)
                            / len(flips) for i, m in zip(images, masks)])
        results["murallab"] = scores(ours, images, masks) | training | {
            "seconds_per_patch": (time.perf_counter() - t0) / len(images)}

        detection = None
        damaged_name = "bodhisattva_damaged.png"
        if (args.detector_minutes > 0 or args.detector_checkpoint) and (args.data / damaged_name).exists():
            if args.detector_checkpoint:
                detection = {"checkpoint": str(args.detector_checkpoint)}
            else:
                print("training the detector:")
                _, dseconds = train_within(args.detector_config, train_dir, args.out / "detector",
                                           args.detector_minutes, args.device, train_seed, hole_masks=args.hole_masks)
                detection = {"train_minutes": dseconds / 60}
            detector, _ = load_model(args.detector_checkpoint or args.out / "detector" / "best.pt", args.device)

            def painted(folder, per_image, seed, photo=True):  # (P(damage), truth) on painted damage of folder
                ds = PaintedDamage(MuralPatchDataset(folder, patch_size=128, patches_per_image=per_image, seed=seed,
                                                     hole_ratio=(0.05, 0.3)), seed, photo=photo)
                batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
                with torch.no_grad():
                    return detector(batch["corrupted"].to(args.device))[1].float().cpu(), batch["mask"] < 0.5

            # the threshold is chosen on validation data: painted damage on patches of the training murals
            tau, val_iou = metrics.choose_threshold(*painted(train_dir, 1, args.seed + 1))
            if args.split == "pool":  # the shortcut probe: the same painted damage on held-out murals, sharp or not
                for kind, photo in (("photographed", True), ("sharp", False)):
                    prob_p, truth_p = painted(args.pool / "heldout", 2, args.seed + 2, photo)
                    detection[f"heldout_painted_{kind}_iou"] = metrics.iou(prob_p >= tau, truth_p).item()
            photo = load_image(args.data / damaged_name)
            truth = load_mask(args.data / "bodhisattva_damaged_mask.png", hole_value=255) < 0.5
            prob = detect(detector, photo)
            detection.update(threshold=tau, validation_iou=val_iou[tau], validation_sweep=val_iou,
                             iou=metrics.iou(prob >= tau, truth).item(), f1=metrics.f1(prob >= tau, truth).item())
            for t in (metrics.DAMAGE_THRESHOLD, 0.2, 0.3, 0.5):
                detection[f"iou@{t}"] = metrics.iou(prob >= t, truth).item()
            show_images([photo, prob, truth.float(), (prob >= tau).float()],
                        ["photograph", "P(damage), white = damage", "hand-labelled damage (white)",
                         f"detected at τ = {tau} (chosen on validation)"], size=4).savefig(args.out / "detection.png")

    gain = gains(results["murallab"], results["telea"])
    summary = {"psnr_gain_over_telea": gain["all"]["psnr"], "ssim_gain_over_telea": gain["all"]["ssim"],
               "gain_over_telea": gain, "bar_met": gain["bar_met"]}
    ruler = {sigma: scores(metrics.blurred_truth(images, masks, sigma), images, masks) for sigma in (1, 2, 4, 8)}
    report = {"held_out_patches": len(images), "results": results, "ruler": ruler, "summary": summary,
              "detection": detection, "args": {k: str(v) for k, v in vars(args).items()}}
    write_text(args.out / "results.json", json.dumps(report, indent=2))
    bins = list(results["telea"]["bins"])
    print(f"\n{len(images)} held-out {args.patch}px patches ({args.split} split), holes 10-40 %; "
          f"PSNR / SSIM overall and per hole-ratio bin:")
    print(f"{'method':<16}{'PSNR':>8}{'SSIM':>8}{'hole PSNR':>11}" + "".join(f"{b:>16}" for b in bins))
    for name, r in list(results.items()) + [(f"sigma = {k} (ruler)", v) for k, v in ruler.items()]:
        print(f"{name:<16}{r['psnr']:>8.2f}{r['ssim']:>8.3f}{r['psnr_hole']:>11.2f}" +
              "".join(f"{r['bins'][b]['psnr']:>9.2f} {r['bins'][b]['ssim']:.3f}" for b in bins))
    print("ruler: an oracle, not a method (the truth blurred by sigma px, composited into the holes)")
    print("gain over Telea: " + "; ".join(f"{k} {g['psnr']:+.2f} dB {g['ssim']:+.3f} SSIM" for k, g in gain.items()
                                          if k != "bar_met") +
          f"; bar (+{BAR_PSNR} dB, +{BAR_SSIM} SSIM everywhere): {'met' if gain['bar_met'] else 'NOT met'}")
    if detection:
        shown = {k: v for k, v in detection.items() if k != "validation_sweep"}
        print("detection on the damaged bodhisattva:",
              ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
    k = min(4, len(images))
    tel = telea(images[:k] * masks[:k], masks[:k])
    show_images([x for i in range(k) for x in (images[i] * masks[i], tel[i], ours[i], images[i])],
                ["damaged", "Telea", "murallab", "truth"] * k, ncols=4, size=3).savefig(args.out / "examples.png")
    plt.close("all")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
