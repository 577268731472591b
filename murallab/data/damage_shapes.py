"""Holes in the shapes of real damage: crops of traced damage masks (cracks, flaking, peeled paint, losses).

Random walks (:mod:`murallab.data.masks`) are strokes of one width; real damage is not. Flaking leaves clusters of
small islands, peeling leaves large ragged regions, cracks run thin and long. A network trained only on strokes
has never seen a hole of those shapes. :class:`DamageShapes` lays crops of real damage masks over training patches:

1. pick a mask file at random and a square window of side ``f * min(H, W)``, with ``f`` drawn log-uniformly from
   ``zoom`` (a small ``f`` shows the damage close up, large and coarse; ``f = 1`` shows the whole mask, fine);
2. resize it to the patch with nearest-neighbour sampling (it stays binary), rotate it by a multiple of 90 degrees
   and flip it at random (damage has no up or down);
3. keep it if its hole fraction lies in ``hole_ratio``; else draw again (at most ``tries`` times) and finally take
   the draw whose fraction came closest.

Mask files: single-channel PNGs, **255 = damage**, 0 = intact (as :func:`murallab.data.load_mask` with
``hole_value=255`` reads them). The returned masks follow the kit's convention: ``(1, S, S)``, **1 = known, 0 = hole**.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .io import list_images, load_mask

__all__ = ["DamageShapes"]


class DamageShapes:
    """A folder of real damage masks, sampled as holes for ``size`` px patches.

    Args:
        folder: mask files (255 = damage), any size.
        zoom: ``(low, high)`` range of the crop window's side as a fraction of the mask's short side.
        max_side: masks are kept in memory at most this many pixels on their long side (nearest-neighbour).
        tries: draws per sample before the closest one to ``hole_ratio`` is taken.
    """

    def __init__(self, folder, *, zoom=(0.25, 1.0), max_side: int = 1024, tries: int = 20):
        paths = list_images(folder)
        if not paths:
            raise FileNotFoundError(f"no mask images in {folder}; expected PNG damage masks (255 = damage)")
        if not 0 < zoom[0] <= zoom[1] <= 1:
            raise ValueError(f"zoom must be a (low, high) range with 0 < low <= high <= 1, got {zoom}")
        self.zoom, self.tries = (float(zoom[0]), float(zoom[1])), tries
        self.holes = []  # (H, W) bool, True = damage
        for p in paths:
            hole = load_mask(p, hole_value=255)[0] < 0.5
            h, w = hole.shape
            if max(h, w) > max_side:
                s = max_side / max(h, w)
                hole = F.interpolate(hole[None, None].float(), size=(max(1, round(h * s)), max(1, round(w * s))),
                                     mode="nearest")[0, 0] > 0.5
            self.holes.append(hole)
        self.folder = folder

    def __len__(self) -> int:
        return len(self.holes)

    def __repr__(self) -> str:
        return f"DamageShapes({str(self.folder)!r}, {len(self)} masks, zoom={self.zoom})"

    def _draw(self, size: int, rng: np.random.Generator) -> torch.Tensor:
        hole = self.holes[int(rng.integers(len(self.holes)))]
        h, w = hole.shape
        f = float(np.exp(rng.uniform(np.log(self.zoom[0]), np.log(self.zoom[1]))))
        side = max(1, min(h, w, round(f * min(h, w))))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crop = hole[top:top + side, left:left + side][None, None].float()
        crop = F.interpolate(crop, size=(size, size), mode="nearest")[0]
        crop = torch.rot90(crop, int(rng.integers(4)), dims=(1, 2))
        if rng.random() < 0.5:
            crop = crop.flip(2)
        return crop > 0.5

    def sample(self, size: int, rng: np.random.Generator, hole_ratio=(0.1, 0.4)) -> torch.Tensor:
        """One ``(1, size, size)`` float mask, 1 = known, 0 = hole, with a hole fraction in ``hole_ratio`` when one
        of ``tries`` draws lands there (else the closest draw)."""
        lo, hi = hole_ratio
        best, best_gap = None, float("inf")
        for _ in range(self.tries):
            hole = self._draw(size, rng)
            ratio = hole.float().mean().item()
            gap = max(lo - ratio, ratio - hi, 0.0)
            if gap < best_gap:
                best, best_gap = hole, gap
            if gap == 0:
                break
        return (~best).float()
