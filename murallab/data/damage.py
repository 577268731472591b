"""Painted damage for blind restoration: fill a mask's holes with what a flaked mural shows.

Where paint flakes off a Dunhuang wall, the ground shows through: bare plaster or earth in pale beige to tan,
crumpled into a relief of small ridges that catch the light and creases that hold shadow, split by cracks,
grainy, with a shadow along the edge where the paint layer broke and a few remnants of pigment. A
network that must *find* the damage (the dual-decoder U-Net) needs training images with such damage painted in,
not holes set to 0, which would give the answer away:

    corrupted = mask · image + (1 - mask) · damage

Real flakes are blobs with jagged edges rather than brush strokes, so :class:`PaintedDamage` also redraws half of
the masks as :func:`flake_masks`, keeping each mask's hole ratio. Every look (colour, relief, light direction,
cracks, edge shadow, remnants) is drawn at random per image: the detector should learn "ground showing through
paint", not one texture.

**Shortcut learning.** Painted damage is born sharp and never JPEG-compressed, while everything around it went
through a camera and a JPEG file. A detector will find that difference before it learns what flaking looks like:
one trained on sharp painted damage found it with IoU 0.88, but 0.10 once the same images were blurred by 0.7 px,
and 0.00 on the real flaking of a photograph (BENCHMARKS.md). So :class:`PaintedDamage` passes the whole damaged
image through :func:`photograph` (a slight blur, then a JPEG round trip): the damage and the paint around it then
share the camera's fingerprint, and only what they look like tells them apart.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.io import decode_jpeg, encode_jpeg
from torchvision.transforms.functional import gaussian_blur

from .datasets import set_epoch
from .masks import composite, random_walk_masks
from .synthetic import PALETTE

_EARTH = (0.62, 0.50, 0.36)  # a tan ground, the darker end of exposed plaster


def _noise(shape, sigma: float, g: torch.Generator) -> torch.Tensor:
    """Isotropic smooth noise ``shape`` (B, 1, H, W) of unit standard deviation, varying over about ``sigma`` px:
    white noise blurred by a Gaussian of that standard deviation (drawn ``f`` times coarser and blurred by
    ``sigma / f`` for a wide ``sigma``, then resized: the same look at a fraction of the cost)."""
    b, c, h, w = shape
    f = max(1, int(sigma // 2))
    white = torch.randn(b, c, -(-h // f), -(-w // f), generator=g)
    k = 2 * min(math.ceil(3 * sigma / f), (min(white.shape[-2:]) - 1) // 2) + 1  # reflect padding needs k < 2H
    n = gaussian_blur(white, [k, k], [sigma / f, sigma / f])
    if f > 1:
        n = F.interpolate(n, size=(h, w), mode="bilinear", align_corners=False)
    return n / n.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)


def _uniform(b: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    """``(b, 1, 1, 1)`` draws from U(lo, hi): one value per image."""
    return lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=g)


def flake_masks(hole_ratio: torch.Tensor, height: int, width: int | None = None, *, seed: int = 0) -> torch.Tensor:
    """Flaking-shaped masks: blobs with jagged edges, each with exactly the hole ratio asked for (to the pixel).

    A smooth field (Gaussian-blurred noise of σ = 1/16 to 1/6 of the image, drawn per call: the blobs) plus a rough
    one (σ = 1.5 px: the jagged edges) is cut at its ``hole_ratio`` quantile: the lowest ``ρ·H·W`` pixels become
    the hole.

    Args:
        hole_ratio: ``(B,)`` hole fractions in (0, 1).
        height, width: mask size (``width`` defaults to ``height``).
    Returns:
        ``(B, 1, H, W)`` float32, **1 = known, 0 = hole**.
    """
    width = width or height
    g = torch.Generator().manual_seed(seed)
    b = len(hole_ratio)
    blob = max(height, width) * float(_uniform(1, 1 / 16, 1 / 6, g))
    field = _noise((b, 1, height, width), blob, g) + 0.35 * _noise((b, 1, height, width), 1.5, g)
    n_hole = (hole_ratio.float() * height * width).round().long()
    rank = field.flatten(1).argsort(dim=1).argsort(dim=1)  # each pixel's place in its field's order
    return (rank >= n_hole[:, None]).float().view(b, 1, height, width)


def paint_damage(image: torch.Tensor, mask: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The image with its holes painted as exposed plaster: ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1].

    The ground is a plaster-to-earth colour, plus (each with a random strength per image):
    a relief ``h`` (noise at 1, 2 and 4 px) lit from a random direction ``ℓ``, shading ``k·(ℓ · ∇h)``;
    cracks where a smooth noise field crosses zero; a shadow 1–3 px wide along the hole's edge on the side away
    from the light; grain; and remnants of the pigment (the image blended back in, up to 30 %, in patches).

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
    shape = (b, 1, h, w)
    plaster, earth = (torch.tensor(c).view(1, 3, 1, 1) for c in (PALETTE["plaster"], _EARTH))
    base = torch.lerp(plaster, earth, torch.rand(b, 1, 1, 1, generator=g)) * _uniform(b, 0.85, 1.1, g)
    mottle = 0.05 * _noise(shape, max(h, w) / 8, g)

    relief = _noise(shape, 4, g) + 0.6 * _noise(shape, 2, g) + 0.3 * _noise(shape, 1, g)
    light = 2 * math.pi * torch.rand(b, 1, 1, 1, generator=g)
    dx = F.pad(relief[..., :, 1:] - relief[..., :, :-1], (0, 1))
    dy = F.pad(relief[..., 1:, :] - relief[..., :-1, :], (0, 0, 0, 1))
    shade = _uniform(b, 0.15, 0.35, g) * (light.cos() * dx + light.sin() * dy)

    crack_field = _noise(shape, float(_uniform(1, 3, 8, g)), g)
    cracks = (1 - crack_field.abs() / 0.2).clamp(0, 1) * _uniform(b, 0.1, 0.4, g)

    known = mask.to(image.dtype)
    hole = 1 - known
    shadow = torch.zeros_like(known)
    for i in range(b):  # paint casts a shadow onto the ground beside it, away from the light
        k = int(torch.randint(1, 4, (1,), generator=g))
        dy_i, dx_i = round(k * math.sin(light[i].item())), round(k * math.cos(light[i].item()))
        shadow[i] = torch.roll(known[i], shifts=(dy_i, dx_i), dims=(-2, -1)) * hole[i]
    shadow = shadow * _uniform(b, 0.1, 0.35, g)

    grain = 0.03 * torch.randn(b, 3, h, w, generator=g)
    remnants = _uniform(b, 0, 0.3, g) * (_noise(shape, 6, g) > 0.5).to(image.dtype)
    damage = torch.lerp(base + mottle + shade - cracks - shadow + grain, image, remnants)
    out = composite(image, mask, damage.clamp(0, 1).to(image.dtype))
    return out[0] if single else out


def pale_paint(image: torch.Tensor, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Intact pale paint added to ``image`` ``(3, H, W)``: ``(image with paint, paint mask)``, mask ``(1, H, W)``,
    1 where the image is unchanged, 0 where paint was added.

    Flaking shows pale plaster, but Dunhuang painters used pale colours too: lead white faces, cream halo lines. A
    detector trained only on pale damage learns "pale = damage" and flags them (one trained without decoys did, on
    the bodhisattva's face and halo; BENCHMARKS.md). These decoys are pale strokes or blobs (3-15 % of the image) of
    smooth paint: a plaster-to-skin colour with a gentle mottle, grain and soft edges, but none of the damage's
    relief, cracks or edge shadow. They are intact paint, so they stay *known*: only texture, not colour, tells
    them apart.
    """
    g = torch.Generator().manual_seed(seed)
    h, w = image.shape[-2:]
    ratio = _uniform(1, 0.03, 0.15, g).view(1)
    strokes = torch.rand(1, generator=g).item() < 0.5
    shape_seed = int(torch.randint(2**31, (1,), generator=g))
    if strokes:  # a halo's lines
        paint = random_walk_masks(1, h, w, hole_ratio=(float(ratio), float(ratio) + 0.02), seed=shape_seed)
    else:  # blobs: a face, a robe
        paint = flake_masks(ratio, h, w, seed=shape_seed)
    paint = 1 - gaussian_blur(1 - paint, [5, 5], [0.8, 0.8])  # soft brush edges
    white, skin = (torch.tensor(PALETTE[c]).view(3, 1, 1) for c in ("plaster", "skin"))
    colour = torch.lerp(white, skin, torch.rand(1, generator=g)) * _uniform(1, 0.9, 1.12, g)[0]
    colour = colour + 0.04 * _noise((1, 1, h, w), max(h, w) / 6, g)[0] + _uniform(1, 0, 0.03, g)[0] * torch.randn(
        3, h, w, generator=g)  # the grain of paint and of the camera, as strong as the damage's at most
    paint = paint[0].to(image.dtype)
    kept = paint == 1
    return torch.where(kept, image, torch.lerp(colour.clamp(0, 1).to(image.dtype), image, paint)), kept.to(image.dtype)


def photograph(image: torch.Tensor, *, seed: int = 0, blur=(0.0, 1.0), quality=(60, 95)) -> torch.Tensor:
    """``image`` ``(3, H, W)`` in [0, 1] as a camera and a JPEG file would leave it: blurred by a Gaussian of
    σ ~ U(blur) px, then encoded and decoded as JPEG at a quality drawn from ``quality`` (torchvision.io)."""
    g = torch.Generator().manual_seed(seed)
    sigma = float(_uniform(1, *blur, g))
    if sigma > 0.05:
        image = gaussian_blur(image, [5, 5], [sigma, sigma])
    q = int(torch.randint(quality[0], quality[1] + 1, (1,), generator=g))
    jpeg = encode_jpeg((image.clamp(0, 1) * 255).round().to(torch.uint8), quality=q)
    return decode_jpeg(jpeg).to(image.dtype) / 255


class PaintedDamage(Dataset):
    """Adds ``"corrupted"`` (holes painted with :func:`paint_damage`, then the whole image through
    :func:`photograph` when ``photo``) to every sample of a dataset of ``{"image", "mask", ...}`` dicts. A fraction
    ``flakes`` of the samples get a :func:`flake_masks` mask of the same hole ratio in place of theirs (``"mask"``
    and ``"masked"`` follow), and a fraction ``decoys`` get intact :func:`pale_paint` added to their ``"image"``
    first (it is paint, so it is in the truth too). The damage is fixed per (seed, epoch, index); ``set_epoch``
    passes through."""

    def __init__(self, dataset: Dataset, seed: int = 0, flakes: float = 0.5, photo: bool = True,
                 decoys: float = 0.0):
        for name, value in (("flakes", flakes), ("decoys", decoys)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} is a fraction of the samples, in [0, 1]; got {value}")
        self.dataset, self.seed, self.flakes, self.decoys, self.photo = dataset, seed, flakes, decoys, photo
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_epoch(self.dataset, epoch)  # through a Subset too: fresh masks under the fresh paint

    def __getitem__(self, idx: int) -> dict:
        sample = dict(self.dataset[idx])
        seed = (self.seed * 1_000_003 + self.epoch) * 1_000_003 + idx
        image, mask = sample["image"], sample["mask"]
        redraw, decoy = (torch.rand(2, generator=torch.Generator().manual_seed(seed)) < torch.tensor(
            [self.flakes, self.decoys])).tolist()
        if redraw:
            mask = flake_masks(1 - mask.mean().view(1), *mask.shape[-2:], seed=seed)[0]
        if decoy:  # intact pale paint: part of the image, so part of the truth
            image = pale_paint(image, seed=seed)[0]
        if redraw or decoy:
            sample.update(image=image, mask=mask, masked=image * mask)
        sample["corrupted"] = paint_damage(image, mask, seed=seed)
        if self.photo:
            sample["corrupted"] = photograph(sample["corrupted"], seed=seed)
        return sample
