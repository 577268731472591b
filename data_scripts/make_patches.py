#!/usr/bin/env python
"""Cut a folder of murals into training patches and random-walk damage masks on disk.

    python data_scripts/make_patches.py MURALS_DIR --out data/patches_256 --patch-size 256 --per-image 25

writes ``OUT/patches/<image>_<k>.png`` and ``OUT/masks/<image>_<k>.png`` (white = valid, black = hole:
read back with ``murallab.data.load_mask(path, hole_value=0)``), plus ``OUT/manifest.json`` recording
where every patch came from. Patch positions are spread by farthest-point sampling. Existing output is
never overwritten unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from murallab._atomic import write_text
from murallab.data import list_images, load_image, patch_positions, random_walk_mask, save_image, save_mask
from murallab.data.patches import upscale_to_patch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", type=Path, help="folder of mural images")
    ap.add_argument("--out", type=Path, required=True, help="output folder (gets patches/, masks/, manifest.json)")
    ap.add_argument("--patch-size", type=int, default=256)
    ap.add_argument("--per-image", type=int, default=25, help="patches per mural")
    ap.add_argument("--hole-ratio", type=float, nargs=2, default=(0.1, 0.4), metavar=("LO", "HI"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--upscale", action="store_true", help="upscale murals smaller than a patch instead of failing")
    ap.add_argument("--force", action="store_true", help="replace existing output")
    args = ap.parse_args(argv)

    images = list_images(args.input)
    if not images:
        sys.exit(f"error: no images ({', '.join(('.png', '.jpg', '...'))}) in {args.input}")
    out_dirs = [args.out / "patches", args.out / "masks"]
    existing = [d for d in out_dirs if d.exists() and any(d.iterdir())]
    if existing and not args.force:
        sys.exit(f"error: {existing[0]} already holds files; pass --force to replace them")
    for d in out_dirs:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    manifest = {"patch_size": args.patch_size, "hole_ratio": list(args.hole_ratio), "seed": args.seed,
                "mask_convention": "white = valid, black = hole (load_mask(..., hole_value=0))", "patches": []}
    for i, path in enumerate(tqdm(images, desc="murals", unit="img")):
        image = load_image(path)
        if min(image.shape[-2:]) < args.patch_size:
            if not args.upscale:
                sys.exit(f"error: {path} is {tuple(image.shape[-2:])}, smaller than --patch-size "
                         f"{args.patch_size}; pass --upscale or a smaller --patch-size")
            image = upscale_to_patch(image, args.patch_size)
        rng = np.random.default_rng([args.seed, i])
        p = args.patch_size
        for k, (t, l) in enumerate(patch_positions(*image.shape[-2:], p, args.per_image, seed=rng)):
            name = f"{path.stem}_{k:03d}.png"
            save_image(image[:, t:t + p, l:l + p], args.out / "patches" / name)
            save_mask(random_walk_mask(p, hole_ratio=tuple(args.hole_ratio), seed=rng), args.out / "masks" / name)
            manifest["patches"].append({"file": name, "source": path.name, "top": t, "left": l})
    write_text(args.out / "manifest.json", json.dumps(manifest, indent=1))
    print(f"wrote {len(manifest['patches'])} patches and masks from {len(images)} murals to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
