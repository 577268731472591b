"""Restoration that travels: train with one source of murals left out, score on that source.

    python bench/restoration.py --split sources [--config C] [--minutes M] [--hole-masks DIR]
    python bench/restoration.py --split sources --checkpoint pretrained:restorer RUN/best.pt [--seen S ...]

A held-out image from the photographers of the training murals overstates what a student gets on their own
photographs: the network learns the sources' look (lens, light, paint, scale) as well as restoration. This benchmark
leaves whole sources out. The sources (``--pool`` and ``--data`` folders):

==================  ====================================  =============================
source              trained on                            scored on
==================  ====================================  =============================
``dunhuang660``     ``train/dunhua_*``                    ``heldout/dunhua_*``
``luckystar``       ``train/luckys_*``                    ``heldout/luckys_*``
``faces``           ``faces/``                            ``heldout_faces/``
``scans``           ``scans/``                            ``heldout_scans/``
``walls``           never                                 the murals of ``--data``
==================  ====================================  =============================

Training mode: for each of the first four sources, the config trains from scratch on the other three (its own
``init`` is ignored: a pretrained start would have seen the left-out source) and is scored on the left-out one; a
fifth run on all four is scored on the walls (left out by every run) and on each source's held-out images (the
in-source figure). Every source is scored on the same images either way, so the two figures differ only in whether
the source was trained on. Checkpoint mode scores given networks on every source; ``--seen`` names the sources they
trained on, and the rest count as left out.

Scores: random-walk holes of 10-40 %, ``--patch`` px patches, about ``--per-source`` per source; PSNR and SSIM
gains over Telea overall and per hole bin, per source, their mean over left-out sources, and the share of the
in-source gain that survives.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import torch

from murallab._atomic import write_text
from murallab.classical import navier_stokes, push_pull, telea
from murallab.data import list_images, random_walk_masks
from murallab.restore import restore
from murallab.train import load_model

#: source name -> (training images, scoring images), as (folder under --pool, file-name prefix); walls: --data
SOURCES = {
    "dunhuang660": (("train", "dunhua_"), ("heldout", "dunhua_")),
    "luckystar": (("train", "luckys_"), ("heldout", "luckys_")),
    "faces": (("faces", ""), ("heldout_faces", "")),
    "scans": (("scans", ""), ("heldout_scans", "")),
}
WALLS = ("cave_wall_large.jpg", "cave_wall_small.jpg", "flying_apsara_crop.png", "bodhisattva_damaged.png")


def source_images(pool: Path, data: Path) -> dict[str, dict[str, list[Path]]]:
    """``{source: {"train": [...], "score": [...]}}``; the walls have no training images."""
    def pick(folder, prefix):
        return [p for p in list_images(pool / folder) if p.name.startswith(prefix)]
    out = {name: {"train": pick(*tr), "score": pick(*sc)} for name, (tr, sc) in SOURCES.items()}
    out["walls"] = {"train": [], "score": [data / n for n in WALLS if (data / n).exists()]}
    empty = [n for n, s in out.items() if not s["score"]]
    if empty:
        raise FileNotFoundError(f"no scoring images for source(s) {', '.join(empty)} under {pool} and {data}")
    return out


def score_set(images: list[Path], patch: int, per_source: int, seed: int, patches_from) -> torch.Tensor:
    """About ``per_source`` patches, the same number from each image (``patches_from(folder, names, ...)``)."""
    per_image = max(1, math.ceil(per_source / len(images)))
    by_folder: dict[Path, list[str]] = {}
    for p in images:
        by_folder.setdefault(p.parent, []).append(p.name)
    return torch.cat([patches_from(folder, names, patch, per_image, seed) for folder, names in by_folder.items()])


def score_all(model, sets: dict, device: str, scores) -> dict:
    """``scores`` of ``model`` (None: the classical fills) on each ``{source: (images, masks)}``."""
    out = {}
    for name, (images, masks) in sets.items():
        if model is None:
            out[name] = {"telea": scores(telea(images * masks, masks), images, masks),
                         "navier_stokes": scores(navier_stokes(images * masks, masks), images, masks),
                         "push_pull": scores(push_pull(images * masks, masks), images, masks)}
        else:
            fills = torch.stack([restore(model, i, m, tile=256, overlap=32, device=device) for i, m in zip(images, masks)])
            out[name] = scores(fills, images, masks)
    return out


def mean_gain(rows: dict, telea_rows: dict, names, gains) -> dict:
    """Gains over Telea averaged over the sources ``names``, overall and per bin."""
    per = [gains(rows[n], telea_rows[n]["telea"]) for n in names]
    keys = [k for k in per[0] if k != "bar_met" and all(k in g for g in per)]
    return {k: {m: sum(g[k][m] for g in per) / len(per) for m in ("psnr", "ssim")} for k in keys}


def run(args, *, patches_from, scores, gains, train_within) -> None:
    """The ``--split sources`` benchmark (module docstring); writes ``results.json`` to ``args.out``."""
    src = source_images(args.pool, args.data)
    print("scoring sets:")
    sets = {}
    for i, (name, s) in enumerate(src.items()):
        images = score_set(s["score"], args.patch, args.per_source, args.seed, patches_from)
        sets[name] = (images, random_walk_masks(len(images), args.patch, hole_ratio=(0.1, 0.4), seed=args.seed + i))
    classical = score_all(None, sets, args.device, scores)
    models: dict[str, dict] = {}
    if args.checkpoint:
        for ckpt in args.checkpoint:
            model, _ = load_model(ckpt, args.device)
            models[str(ckpt)] = {"scores": score_all(model, sets, args.device, scores),
                                 "left_out": [n for n in src if n not in (args.seen or [])]}
    else:
        trainable = [n for n in src if src[n]["train"]]
        runs = {f"without {n}": [n] for n in trainable} | {"all sources": []}
        for run_name, left in runs.items():
            with tempfile.TemporaryDirectory() as tmp:  # the training murals, linked (never copied)
                for n in trainable:
                    if n not in left:
                        for p in src[n]["train"]:
                            (Path(tmp) / p.name).symlink_to(p.resolve())
                print(f"training {run_name}:")
                out = args.out / run_name.replace(" ", "_")
                result, seconds = train_within(args.config, Path(tmp), out, args.minutes, args.device,
                                               args.train_seed, args.epochs, hole_masks=args.hole_masks)
            model, _ = load_model(out / "best.pt", args.device)
            scored = [n for n in src if n in left or run_name == "all sources"]
            models[run_name] = {"scores": score_all(model, {n: sets[n] for n in scored}, args.device, scores),
                                "left_out": left + (["walls"] if run_name == "all sources" else []),
                                "train_minutes": seconds / 60, "steps": result["steps"]}
    report = {"sources": {n: {"scored_patches": len(sets[n][0]), "training_images": len(s["train"])}
                          for n, s in src.items()},
              "classical": classical, "models": models, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.checkpoint:  # each network over the sources it did not see
        for m in models.values():
            m["left_out_mean_gain"] = mean_gain(m["scores"], classical, m["left_out"], gains)
    else:  # the recipe: each source scored by the run that left it out
        left_rows = {n: m["scores"][n] for m in models.values() for n in m["left_out"]}
        report["left_out_mean_gain"] = mean_gain(left_rows, classical, list(left_rows), gains)
    if "all sources" in models:
        seen = [n for n in src if n not in models["all sources"]["left_out"]]
        report["in_source_mean_gain"] = mean_gain(models["all sources"]["scores"], classical, seen, gains)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "results.json", json.dumps(report, indent=2))
    _print(report, sets, classical, models, gains)


def _print(report, sets, classical, models, gains) -> None:
    bins = list(next(iter(classical.values()))["telea"]["bins"])
    print(f"\nPSNR / SSIM per source ({', '.join(f'{n} {len(s[0])}' for n, s in sets.items())} patches); "
          f"gain over Telea overall and per hole bin ({', '.join(bins)}):")
    for name, c in classical.items():
        print(f"\n{name}:")
        rows = [(k, v, "") for k, v in c.items()]
        rows += [(m, r["scores"][name], "left out" if name in r["left_out"] else "seen")
                 for m, r in models.items() if name in r["scores"]]
        for label, r, seen in rows:
            g = gains(r, c["telea"])
            print(f"  {label:<34}{r['psnr']:>7.2f}{r['ssim']:>7.3f}  gain {g['all']['psnr']:+.2f} dB "
                  f"{g['all']['ssim']:+.3f}  bins " + " ".join(f"{g[b]['psnr']:+.2f}" for b in bins if b in g)
                  + f"  {seen}")
    means = [(f"{name}, mean over its left-out sources", m["left_out_mean_gain"]) for name, m in models.items()
             if "left_out_mean_gain" in m]
    means += [(what, report[key]) for key, what in (
        ("left_out_mean_gain", "mean over left-out sources"),
        ("in_source_mean_gain", "mean over sources trained on (their held-out images)")) if key in report]
    for what, g in means:
        print(f"{what}: {g['all']['psnr']:+.2f} dB {g['all']['ssim']:+.3f} SSIM; per bin "
              + ", ".join(f"{b} {g[b]['psnr']:+.2f} / {g[b]['ssim']:+.3f}" for b in bins if b in g))
    if "left_out_mean_gain" in report and "in_source_mean_gain" in report:
        share = report["left_out_mean_gain"]["all"]["psnr"] / report["in_source_mean_gain"]["all"]["psnr"]
        print(f"share of the in-source gain that survives on left-out sources: {share:.0%}")
