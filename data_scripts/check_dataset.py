#!/usr/bin/env python
"""Validate a dataset folder before training: every layout that ``murallab train --data DIR`` accepts.

    python data_scripts/check_dataset.py DIR [--config configs/tiny_cpu.yaml] [--layout auto] [--split train]

The layout is detected as ``murallab train`` detects it (``murallab.data.detect_layout``): a DLCV-2019
``Data_Challenge2`` folder, a Kaggle Dunhuang folder, or a plain folder of mural images. Every image file is
opened and fully decoded (PIL ``verify``, then ``load``); each corrupt, truncated or unreadable file is reported
on one line with its path. For the paired layouts it also checks that every masked image has its mask and ground
truth, that sizes match and that masks look like the convention you name (``--hole-value 0``: black = hole, the
layouts' default). For a plain folder it checks that every image is at least ``--patch-size`` pixels on its
shorter side (unless ``--upscale``) and that there are at least 2 images (a train/validation split needs them).
``--config`` takes ``patch_size``, ``upscale`` and ``hole_value`` from the preset you will train with.
Prints counts and every problem; exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from tqdm import tqdm

from murallab.data import (DatasetLayoutError, DLCVDunhuang, KaggleDunhuang, MuralPatchDataset, detect_layout,
                           hole_ratio, list_images)
from murallab.train.config import DATA_DEFAULTS, load_config


def _one_line(e: BaseException) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split()) if str(e) else type(e).__name__


def check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """``((H, W), None)`` for an image file that decodes completely, ``(None, problem)`` otherwise.

    ``verify`` catches a damaged PNG (checksums) that may still decode; ``load`` decodes every pixel, which
    catches a truncated JPEG whose header is intact (opening it and reading its size succeed).
    """
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            w, h = im.size
    except Exception as e:  # noqa: BLE001 (any failure to decode is the problem being looked for)
        return None, f"{path}: unreadable image (corrupt, truncated or not an image file): {_one_line(e)}"
    return (h, w), None


def _summary(sizes: set) -> str:
    return f"image sizes (H, W): {sorted(sizes)[:5]}{' ...' if len(sizes) > 5 else ''}"


def check_folder(root: Path, patch_size: int, upscale: bool) -> tuple[list[str], list[str]]:
    """A plain folder of murals, read as ``murallab train`` reads it (``MuralPatchDataset``): (report, problems)."""
    problems, sizes, readable = [], set(), 0
    paths = list_images(root)
    for p in tqdm(paths, desc="checking", unit="img"):
        size, problem = check_image(p)
        if problem:
            problems.append(problem)
            continue
        readable += 1
        sizes.add(size)
        if min(size) < patch_size and not upscale:
            problems.append(f"{p}: {size[0]}x{size[1]} (HxW) is smaller than the patch size {patch_size}; "
                            f"use a smaller --patch-size (data.patch_size) or --upscale (data.upscale: true)")
    if readable < 2:
        problems.append(f"{root}: {readable} readable image(s); murallab train splits the murals into training "
                        f"and validation and needs at least 2")
    if not problems:  # the training set itself must accept the folder too
        try:
            MuralPatchDataset(root, patch_size=patch_size, patches_per_image=1, upscale=upscale)
        except (OSError, ValueError) as e:
            problems.append(_one_line(e))
    report = [f"folder layout at {root}: {len(paths)} images, {readable} readable"]
    if sizes:
        report.append(_summary(sizes))
    return report, problems


def check_paired(root: Path, layout: str, split: str, hole_value: int, require_gt: bool):
    """A DLCV or Kaggle layout: (report, problems), or None with the layout error printed."""
    cls = DLCVDunhuang if layout == "dlcv" else KaggleDunhuang
    try:
        ds = cls(root, split, hole_value=hole_value, require_gt=require_gt)
    except DatasetLayoutError as e:
        print(e)
        return None
    problems, ratios, sizes = [], [], set()
    for i in tqdm(range(len(ds)), desc="checking", unit="img"):
        pair = ds.pairs[i]
        bad = [problem for f in (pair.masked, pair.mask, pair.gt) if f is not None
               for problem in [check_image(f)[1]] if problem]
        if bad:
            problems.extend(bad)
            continue
        try:
            item = ds[i]
        except (OSError, ValueError) as e:
            problems.append(f"{pair.name}: {e}")
            continue
        ratios.append(float(hole_ratio(item["mask"])))
        sizes.add(tuple(item["mask"].shape[-2:]))
    report = [f"{layout} layout at {root}, split '{split}': {len(ds)} samples, {len(ratios)} readable"]
    if ratios:
        report.append(_summary(sizes))
        report.append(f"hole ratio: mean {np.mean(ratios):.1%}, min {min(ratios):.1%}, max {max(ratios):.1%}")
    return report, problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--layout", choices=["auto", "dlcv", "kaggle", "folder"], default="auto",
                    help="auto (default) detects it as murallab train does")
    ap.add_argument("--split", default="train", help="DLCV/Kaggle split to check (default train)")
    ap.add_argument("--config", help="the configs/*.yaml preset you will train with: its data.patch_size, "
                                     "data.upscale and data.hole_value become the defaults of the options below")
    ap.add_argument("--hole-value", type=int, choices=[0, 255], default=None,
                    help="mask files' hole colour: 0 = black holes (DLCV/Kaggle, default), 255 = white holes")
    ap.add_argument("--no-gt", action="store_true", help="the split has no ground truth (e.g. a test split)")
    ap.add_argument("--patch-size", type=int, default=None,
                    help=f"plain folders: the smallest usable image side (default {DATA_DEFAULTS['patch_size']}, "
                         f"murallab train's default data.patch_size)")
    ap.add_argument("--upscale", action="store_true", default=None,
                    help="plain folders: images smaller than a patch will be upscaled (data.upscale: true)")
    args = ap.parse_args(argv)

    data = dict(DATA_DEFAULTS)
    if args.config:
        try:
            data = load_config(args.config)["data"]
        except (OSError, ValueError, TypeError, yaml.YAMLError) as e:
            print(f"--config: {_one_line(e)}")
            return 1
    patch_size = args.patch_size if args.patch_size is not None else int(data["patch_size"])
    upscale = args.upscale if args.upscale is not None else bool(data["upscale"])
    hole_value = args.hole_value if args.hole_value is not None else int(data["hole_value"])

    try:
        layout = detect_layout(args.root) if args.layout == "auto" else args.layout
    except FileNotFoundError as e:  # also DatasetLayoutError: no images and no known layout
        print(e)
        return 1
    if layout == "folder":
        if not args.root.is_dir():
            print(f"no dataset folder at {args.root}")
            return 1
        checked = check_folder(args.root, patch_size, upscale)
    else:
        checked = check_paired(args.root, layout, args.split, hole_value, not args.no_gt)
        if checked is None:
            return 1
    report, problems = checked
    for line in report:
        print(line)
    for p in problems:
        print(f"problem: {p}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
