"""Painted damage for blind restoration: fill a mask's holes with what a flaked mural shows.

Where paint flakes off a Dunhuang wall, the ground shows through: bare plaster or earth in pale beige to tan,
mottled at several scales, speckled with dark grit, often with a pale rim where the paint layer broke. A network
that must *find* the damage (the dual-decoder U-Net) needs training images with such damage painted in, not holes
set to 0, which would give the answer away.

    corrupted = mask · image + (1 - mask) · damage
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .datasets import set_epoch
from .masks import composite
from .synthetic import PALETTE

_EARTH = (0.62, 0.50, 0.36)  # a tan ground, the darker end of exposed plaster


def _noise(shape, scale: int, g: torch.Generator) -> torch.Tensor:
    """Smooth noise in [-1, 1] of ``shape`` (B, 1, H, W), varying over about ``scale`` pixels."""
    b, _, h, w = shape
    coarse = torch.rand(b, 1, h // scale + 2, w // scale + 2, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def paint_damage(image: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The image with its holes painted as exposed plaster: ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1].

    Args:
        image: ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1].
        mask: ``(B, 1, H, W)`` or ``(1, H, W)``, 1 = known, 0 = hole. Known pixels are returned unchanged.
        seed: the damage's colour and texture are deterministic by seed.
    """
    single = image.dim() == 3
    if single:
        image, mask = image[None], mask[None]
    if mask.shape[-2:] != image.shape[-2:] or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W) matching the image {tuple(image.shape)}, got {tuple(mask.shape)}")
    g = torch.Generator().manual_seed(seed)
    b, _, h, w = image.shape
    t = torch.rand(b, 1, 1, 1, generator=g)  # how earthy: plaster (0) to tan (1)
    base = torch.lerp(torch.tensor(PALETTE["plaster"]).view(1, 3, 1, 1), torch.tensor(_EARTH).view(1, 3, 1, 1), t)
    base = base * (0.85 + 0.3 * torch.rand(b, 1, 1, 1, generator=g))  # brighter or darker walls
    shape = (b, 1, h, w)
    mottle = 0.08 * _noise(shape, max(h, w) // 8 or 1, g) + 0.05 * _noise(shape, 4, g)
    grain = 0.03 * (torch.rand(b, 3, h, w, generator=g) * 2 - 1)
    grit = F.max_pool2d((torch.rand(shape, generator=g) < 0.004).float(), 3, 1, 1)  # dark specks, ~3 px
    hole = 1 - mask.to(image.dtype)
    rim = (F.max_pool2d(mask.to(image.dtype), 5, 1, 2) > 0).float() * hole  # holes within 2 px of paint
    rim = rim * (torch.rand(b, 1, 1, 1, generator=g) < 0.6)  # not every flake has a pale edge
    damage = (base + mottle + grain - 0.25 * grit + 0.12 * rim).clamp(0, 1).to(image.dtype)
    out = composite(image, mask, damage)
    return out[0] if single else out


class PaintedDamage(Dataset):
    """Adds ``"corrupted"`` (holes painted with :func:`paint_damage`) to every sample of a dataset of
    ``{"image", "mask", ...}`` dicts. The damage is fixed per (seed, epoch, index); ``set_epoch`` passes through."""

    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_epoch(self.dataset, epoch)  # through a Subset too: fresh masks under the fresh paint

    def __getitem__(self, idx: int) -> dict:
        sample = dict(self.dataset[idx])
        seed = (self.seed * 1_000_003 + self.epoch) * 1_000_003 + idx
        sample["corrupted"] = paint_damage(sample["image"], sample["mask"], seed=seed)
        return sample
