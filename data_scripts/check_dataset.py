#!/usr/bin/env python
"""Validate a Dunhuang dataset folder (DLCV-2019 Data_Challenge2 or Kaggle layout) before training.

    python data_scripts/check_dataset.py path/to/Data_Challenge2 [--layout auto] [--split train]

Checks that every masked image has its mask and ground truth, that every file opens, that sizes match
and that masks look like the convention you name (``--hole-value 0``: black = hole, the layouts'
default). Prints counts and every problem; exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from murallab.data import DatasetLayoutError, DLCVDunhuang, KaggleDunhuang, detect_layout, hole_ratio


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--layout", choices=["auto", "dlcv", "kaggle"], default="auto")
    ap.add_argument("--split", default="train")
    ap.add_argument("--hole-value", type=int, choices=[0, 255], default=0,
                    help="mask files' hole colour: 0 = black holes (DLCV/Kaggle), 255 = white holes")
    ap.add_argument("--no-gt", action="store_true", help="the split has no ground truth (e.g. a test split)")
    args = ap.parse_args(argv)

    layout = detect_layout(args.root) if args.layout == "auto" else args.layout
    if layout not in ("dlcv", "kaggle"):
        print(f"{args.root}: looks like a plain folder of images, not a DLCV or Kaggle layout")
        return 1
    cls = DLCVDunhuang if layout == "dlcv" else KaggleDunhuang
    try:
        ds = cls(args.root, args.split, hole_value=args.hole_value, require_gt=not args.no_gt)
    except DatasetLayoutError as e:
        print(e)
        return 1
    problems, ratios, sizes = [], [], set()
    for i in tqdm(range(len(ds)), desc="checking", unit="img"):
        try:
            item = ds[i]
        except (OSError, ValueError) as e:
            problems.append(f"{ds.pairs[i].name}: {e}")
            continue
        ratios.append(float(hole_ratio(item["mask"])))
        sizes.add(tuple(item["mask"].shape[-2:]))
    print(f"{layout} layout at {args.root}, split '{args.split}': {len(ds)} samples, {len(ratios)} readable")
    if ratios:
        print(f"image sizes (H, W): {sorted(sizes)[:5]}{' ...' if len(sizes) > 5 else ''}")
        print(f"hole ratio: mean {np.mean(ratios):.1%}, min {min(ratios):.1%}, max {max(ratios):.1%}")
    for p in problems:
        print(f"problem: {p}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
