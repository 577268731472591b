"""Datasets that return ``{"image", "mask", "masked"}`` for inpainting.

- ``image``: ``(3, H, W)`` ground truth in [0, 1];
- ``mask``: ``(1, H, W)``, **1 = known, 0 = hole**;
- ``masked``: ``image * mask``, the network's input (holes are 0).

Three sources:

- :class:`MuralPatchDataset`: patches of murals (a folder of images, or procedural murals when no folder
  is given) with fresh random-walk damage. Call ``set_epoch(e)`` to draw new masks each epoch.
- :class:`DLCVDunhuang`: the DLCV-2019 ``Data_Challenge2`` layout::

      train/NNN_masked.jpg  train/NNN_mask.jpg  train_gt/NNN.jpg      (and test/, test_gt/)

- :class:`KaggleDunhuang`: the Kaggle layout::

      train/train_GT/NNN.jpg  train/train_mask/NNN_mask.jpg  train/train_masked/NNN_masked.jpg

Both real layouts use white = valid (``hole_value=0``) in their mask files. A broken layout raises
:class:`DatasetLayoutError` listing every missing or unmatched file.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset
from torchvision.transforms.v2 import functional as TF

from .augment import PairedAugment
from .damage_shapes import DamageShapes
from .io import IMAGE_SUFFIXES, list_images, load_image, load_mask
from .masks import check_mask, random_walk_mask
from .patches import _upscaled_size, patch_positions, upscale_to_patch
from .synthetic import make_mural

__all__ = ["set_epoch", "DatasetLayoutError", "MuralPatchDataset", "DLCVDunhuang", "KaggleDunhuang", "find_pairs",
           "detect_layout", "open_dataset"]


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder does not have the expected layout; the message lists every problem."""

    def __init__(self, root, layout: str, expected: str, problems: list[str]):
        self.problems = problems
        shown = "\n  - ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{root} is not a valid {layout} dataset. Expected:\n{expected}\n"
                         f"Problems ({len(problems)}):\n  - {shown}{more}")


def set_epoch(dataset, epoch: int) -> None:
    """Tell every dataset inside ``dataset`` that draws per epoch (masks, augmentation, painted damage) which epoch it
    is, through ``Subset`` and ``ConcatDataset``: a dataset with a ``set_epoch`` method gets the call (and passes it
    on to what it wraps); any other wrapper is looked through (``.dataset``, ``.datasets``)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
        return
    inner = dataset.datasets if isinstance(dataset, ConcatDataset) else [getattr(dataset, "dataset", None)]
    for d in inner:
        if d is not None:
            set_epoch(d, epoch)


def _torch_generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def _sample(image: torch.Tensor, mask: torch.Tensor, augment: PairedAugment | None, generator) -> dict:
    if augment is not None:
        image, mask = augment(image, mask, generator=generator)
    return {"image": image, "mask": mask, "masked": image * mask}


class MuralPatchDataset(Dataset):
    """Mural patches with fresh random-walk masks.

    Args:
        root: folder of mural images, or ``None`` for procedural murals (:func:`make_mural`).
        patch_size: side of the square patches.
        patches_per_image: patches cut from each mural, spread by farthest-point sampling.
        n_murals, mural_size: how many procedural murals, and their side (default ``2 * patch_size``);
            used only when ``root`` is None.
        hole_ratio: range of the masks' hole fraction.
        augment: a :class:`PairedAugment`, or None.
        upscale: upscale images smaller than a patch instead of raising.
        scale: range of zoom factors, drawn log-uniformly per sample: a patch at zoom ``s`` is cut as a
            ``patch_size / s`` window around its position and resized (antialiased) to ``patch_size``. ``(0.25, 1)``
            shows the network the same wall from 4× further away too, so it learns the fine detail of murals
            photographed whole as well as close up. Default ``(1, 1)``: cut at the image's own resolution.
        holes, holes_p: a :class:`DamageShapes` and the share of samples whose hole is a crop of real damage
            instead of a random walk (both kinds keep ``hole_ratio``). Default None: random walks only.
        seed: everything (murals, positions, masks, augmentation) follows from it and the epoch.
        cache_mb: decoded murals are kept in memory up to this many megabytes (float32; least recently used
            dropped first), so a shuffled epoch decodes each file about once instead of once per patch (a JPEG
            decode is most of a sample's time). 0 keeps only the last mural.
    """

    def __init__(self, root=None, *, patch_size: int = 128, patches_per_image: int = 8, n_murals: int = 16,
                 mural_size: int | None = None, hole_ratio=(0.1, 0.4), augment: PairedAugment | None = None,
                 upscale: bool = False, scale=(1.0, 1.0), holes: DamageShapes | None = None, holes_p: float = 0.5,
                 seed: int = 0, cache_mb: float = 2048):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must be a (low, high) range of zoom factors, 0 < low <= high <= 1; got {scale}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.root, self.patch_size, self.ppi = root, patch_size, patches_per_image
        self.hole_ratio, self.augment, self.upscale, self.seed = hole_ratio, augment, upscale, seed
        if not 0 <= holes_p <= 1:
            raise ValueError(f"holes_p is the share of real damage shapes, in [0, 1]; got {holes_p}")
        self.holes, self.holes_p = holes, holes_p
        self.epoch = 0
        if root is None:
            size = mural_size or 2 * patch_size
            self.murals = [make_mural(size, seed=np.random.default_rng([seed, i])) for i in range(n_murals)]
            self.paths = None
            sizes = [(size, size)] * n_murals
        else:
            self.paths = list_images(root)
            if not self.paths:
                raise DatasetLayoutError(root, "mural folder", f"  image files ({', '.join(IMAGE_SUFFIXES)})",
                                         [f"no image files in {root}"])
            sizes = []
            for p in self.paths:
                try:
                    with Image.open(p) as im:
                        w, h = im.size
                except OSError as e:
                    raise ValueError(f"cannot read {p} as an image (corrupt or not an image file): {e}") from e
                if min(h, w) < patch_size and not upscale:
                    raise ValueError(f"{p} is {h}x{w}, smaller than patch_size={patch_size}; "
                                     f"pass upscale=True or a smaller patch_size")
                sizes.append(_upscaled_size(h, w, patch_size))
        self.positions = [patch_positions(h, w, patch_size, patches_per_image, seed=np.random.default_rng([seed, i]))
                          for i, (h, w) in enumerate(sizes)]
        self.cache_mb, self._cache = cache_mb, OrderedDict()

    def __len__(self) -> int:
        return len(self.positions) * self.ppi

    def set_epoch(self, epoch: int) -> None:
        """Draw different masks and augmentations from now on (positions stay fixed)."""
        self.epoch = epoch

    def _mural(self, i: int) -> torch.Tensor:
        if self.paths is None:
            return self.murals[i]
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        mural = upscale_to_patch(load_image(self.paths[i]), self.patch_size)
        self._cache[i] = mural
        while len(self._cache) > 1 and sum(m.nbytes for m in self._cache.values()) > self.cache_mb * 2**20:
            self._cache.popitem(last=False)
        return mural

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} patches")
        i, j = divmod(idx, self.ppi)
        p = self.patch_size
        t, l = self.positions[i][j]
        mural = self._mural(i)
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        if self.holes is not None and self.holes_p > 0 and rng.random() < self.holes_p:
            mask = self.holes.sample(p, rng, self.hole_ratio)
        else:
            mask = random_walk_mask(p, hole_ratio=self.hole_ratio, seed=rng)
        generator = _torch_generator(rng)
        if self.scale == (1.0, 1.0):
            patch = mural[:, t:t + p, l:l + p]
        else:  # a window 1/s times the patch, centred on the patch, kept inside the image; then shrunk to p
            s = float(np.exp(rng.uniform(np.log(self.scale[0]), np.log(self.scale[1]))))
            h, w = mural.shape[-2:]
            side = min(round(p / s), h, w)
            top = min(max(t + p // 2 - side // 2, 0), h - side)
            left = min(max(l + p // 2 - side // 2, 0), w - side)
            patch = TF.resize(mural[:, top:top + side, left:left + side], [p, p], antialias=True).clamp_(0, 1)
        return _sample(patch, mask, self.augment, generator)


@dataclass(frozen=True)
class Pair:
    """The files of one sample of a paired dataset."""
    name: str
    masked: Path
    mask: Path
    gt: Path | None


def _by_stem(folder: Path, suffix: str = "") -> dict[str, Path]:
    """Image files in ``folder`` keyed by their stem with ``suffix`` removed (``001_mask`` -> ``001``)."""
    out = {}
    for p in list_images(folder) if folder.is_dir() else []:
        stem = p.stem
        if stem.endswith(suffix):
            out[stem[:len(stem) - len(suffix)] if suffix else stem] = p
    return out


def _pair_up(masked: dict, masks: dict, gts: dict | None, rel) -> tuple[list[Pair], list[str]]:
    problems = []
    names = sorted(set(masked) | set(masks) | (set(gts) if gts is not None else set()))
    pairs = []
    for n in names:
        missing = [what for what, d in (("masked image", masked), ("mask", masks), ("ground truth", gts))
                   if d is not None and n not in d]
        if missing:
            have = [rel(d[n]) for d in (masked, masks, gts) if d is not None and n in d]
            problems.append(f"{n}: missing {' and '.join(missing)} (found {', '.join(have)})")
        else:
            pairs.append(Pair(n, masked[n], masks[n], gts[n] if gts is not None else None))
    return pairs, problems


LAYOUTS = {
    "dlcv": "  {split}/NNN_masked.jpg, {split}/NNN_mask.jpg (white = valid) and {split}_gt/NNN.jpg",
    "kaggle": ("  {split}/{split}_GT/NNN.jpg, {split}/{split}_mask/NNN_mask.jpg (white = valid) and "
               "{split}/{split}_masked/NNN_masked.jpg"),
}


def find_pairs(root, layout: str, split: str = "train", *, require_gt: bool = True) -> list[Pair]:
    """Index a DLCV or Kaggle Dunhuang folder; raise :class:`DatasetLayoutError` listing every problem."""
    root = Path(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    if layout == "dlcv":
        if (root / "Data_Challenge2").is_dir():
            root = root / "Data_Challenge2"
        inp, gt_dir = root / split, root / f"{split}_gt"
        dirs = {"masked": inp, "mask": inp, "gt": gt_dir}
    else:
        base = root / split
        dirs = {"masked": base / f"{split}_masked", "mask": base / f"{split}_mask", "gt": base / f"{split}_GT"}
    expected = LAYOUTS[layout].format(split=split)
    problems = [f"missing folder {d}" for k, d in dirs.items() if not d.is_dir() and (k != "gt" or require_gt)]
    if problems:
        raise DatasetLayoutError(root, layout, expected, problems)
    gts = _by_stem(dirs["gt"]) if dirs["gt"].is_dir() else None
    pairs, problems = _pair_up(_by_stem(dirs["masked"], "_masked"), _by_stem(dirs["mask"], "_mask"), gts,
                               lambda p: str(p.relative_to(root)))
    if not pairs and not problems:
        problems = [f"no image files found in {dirs['masked']}"]
    if problems:
        raise DatasetLayoutError(root, layout, expected, problems)
    return pairs


class _PairedDunhuang(Dataset):
    layout = ""

    def __init__(self, root, split: str = "train", *, hole_value: int = 0, threshold: int = 127,
                 require_gt: bool = True, max_hole_ratio: float = 0.6, augment: PairedAugment | None = None,
                 seed: int = 0):
        self.root, self.split = Path(root), split
        self.pairs = find_pairs(root, self.layout, split, require_gt=require_gt)
        self.hole_value, self.threshold, self.max_hole_ratio = hole_value, threshold, max_hole_ratio
        self.augment, self.seed, self.epoch = augment, seed, 0

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, idx: int) -> dict:
        pair = self.pairs[idx]
        masked = load_image(pair.masked)
        mask = load_mask(pair.mask, hole_value=self.hole_value, threshold=self.threshold)
        image = load_image(pair.gt) if pair.gt is not None else masked
        for what, t in (("mask", mask), ("ground truth", image)):
            if t.shape[-2:] != masked.shape[-2:]:
                raise ValueError(f"{pair.name}: {what} is {tuple(t.shape[-2:])} but the masked image "
                                 f"{pair.masked} is {tuple(masked.shape[-2:])}; they must be the same size")
        check_mask(mask, max_hole_ratio=self.max_hole_ratio, name=f"mask {pair.mask}")
        # The masked file is the real network input; one augmentation draw moves all three tensors.
        if self.augment is not None:
            params = self.augment.sample_params(_torch_generator(np.random.default_rng([self.seed, self.epoch, idx])))
            image, _ = self.augment.apply(image, mask, params)
            masked, mask = self.augment.apply(masked, mask, params)
        out = {"image": image, "mask": mask, "masked": masked * mask}
        if pair.gt is None:  # no ground truth to give
            del out["image"]
        out["name"] = pair.name
        return out


class DLCVDunhuang(_PairedDunhuang):
    """The DLCV-2019 Dunhuang challenge (``Data_Challenge2``): ``train/`` + ``train_gt/``, ``test/`` + ``test_gt/``.

    ``root`` is the ``Data_Challenge2`` folder or its parent. ``masked`` is the file's masked image with
    holes zeroed (``masked_file * mask``). ``hole_value``/``threshold`` as in :func:`load_mask`;
    ``require_gt=False`` accepts a split without ground truth (items then lack ``"image"``).
    """
    layout = "dlcv"


class KaggleDunhuang(_PairedDunhuang):
    """The Kaggle Dunhuang layout: ``{split}/{split}_GT``, ``{split}_mask``, ``{split}_masked``."""
    layout = "kaggle"


def detect_layout(root) -> str:
    """``"dlcv"``, ``"kaggle"`` or ``"folder"`` (plain images) for a dataset folder."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}")
    if (root / "Data_Challenge2").is_dir() or (root / "train_gt").is_dir():
        return "dlcv"
    if (root / "train" / "train_GT").is_dir() or (root / "train" / "train_masked").is_dir():
        return "kaggle"
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()):
        return "folder"
    raise DatasetLayoutError(root, "murallab", "  a folder of images, a DLCV Data_Challenge2 folder or a Kaggle "
                             "Dunhuang folder", ["no images, no train_gt/ and no train/train_GT/ found"])


def open_dataset(root=None, *, split: str = "train", patch_size: int = 128, **kwargs) -> Dataset:
    """The right dataset for a folder (None: procedural murals), by :func:`detect_layout`."""
    if root is None:
        return MuralPatchDataset(None, patch_size=patch_size, **kwargs)
    layout = detect_layout(root)
    if layout == "folder":
        return MuralPatchDataset(root, patch_size=patch_size, **kwargs)
    return (DLCVDunhuang if layout == "dlcv" else KaggleDunhuang)(root, split, **kwargs)
