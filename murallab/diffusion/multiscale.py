"""DiffuMural-lite: coarse-to-fine co-diffusion guided by the contour of the damage (after arXiv 2504.09513).

DiffuMural restores Dunhuang murals with diffusion at several scales that inform one another, a
ControlNet-style condition on the contour of the damaged region, and a cycle-consistency loss. Its code is not
published; this module keeps the three ideas at course scale, built on the plain samplers:

1. **Coarse to fine.** One small ε-model per scale, e.g. sizes (16, 32). The coarsest scale is restored first
   (global colour and layout are easy to get right at low resolution); its result is upsampled and becomes a
   condition of the next scale, which only has to add detail (a cascade, as in Ho et al.'s cascaded diffusion).
2. **Contour guidance.** Each scale also sees a contour map of the damage boundary, :func:`damage_contour`: the
   band where known paint meets the hole, which is where lines and colour fields have to be continued. (DiffuMural
   feeds it through a ControlNet branch; here it is one more input channel, the cheapest form of that idea.)
3. **Blind damage.** Without a mask, DiffuMural segments the damage by K-means (K = 2) on colour.
   :func:`kmeans_damage_mask` does that with a small torch K-means on pixel colours and calls "damage" the
   cluster whose centre is nearest the colour of bare plaster (an assumption: flaked paint shows the ground).
4. **Cycle consistency** is the ``cycle`` term of :class:`murallab.losses.DiffusionLoss`.

``DiffusionRestorer(scales=[32, 64])`` (``restorer.py``) trains such a pair with ``murallab train`` and samples it
with ``sampler="multiscale"``; ``pretrained:diffumural-64`` is one.

Every scale's condition is ``scale_condition``: ``[coarser result ↑ (3, [-1, 1]; zeros at the coarsest scale) ;
masked image (3, [-1, 1], holes 0) ; mask (1) ; contour (1)]``, 8 channels, so each scale's model is a
``TimeUNet(cond_channels=8)``. Training feeds the ground truth downsampled and upsampled as the "coarser result"
(teacher forcing), or, with ``DiffusionRestorer(coarse_steps=k)``, the coarser network's own sample in a few calls;
sampling feeds the previous scale's sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.masks import check_mask, composite
from ..data.synthetic import PALETTE
from .samplers import ddim_sample, ddpm_sample, to_diffusion
from .schedule import NoiseSchedule


def downsample(image: torch.Tensor, size: int) -> torch.Tensor:
    """Area-average ``(B, C, H, W)`` down to ``size × size`` (H, W multiples of ``size``)."""
    return F.adaptive_avg_pool2d(image, size)


def downsample_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A coarse mask that is 1 (known) only where *every* fine pixel below it is known: ``(B, 1, size, size)``."""
    return -F.adaptive_max_pool2d(-mask, size)


def upsample(image: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear ``(B, C, h, w) -> (B, C, size, size)``."""
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)


def damage_contour(mask: torch.Tensor, width: int = 1) -> torch.Tensor:
    """The boundary band of the damage: pixels within ``width`` of where known meets hole, on both sides.

    The morphological gradient of the hole map, dilate(hole) - erode(hole), with a (2·width+1)² square.
    ``(B, 1, H, W)`` mask (1 = known) -> ``(B, 1, H, W)`` in {0, 1}.
    """
    hole = 1 - mask.float()
    k = 2 * width + 1
    dilated = F.max_pool2d(hole, k, 1, width)
    eroded = -F.max_pool2d(-hole, k, 1, width)
    return (dilated - eroded).to(mask.dtype)


def kmeans(points: torch.Tensor, centres: torch.Tensor, iters: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's K-means: ``points (N, D)``, initial ``centres (K, D)`` -> ``(labels (N,), centres (K, D))``.

    Stops early when no label changes. An empty cluster keeps its previous centre.
    """
    labels = None
    for _ in range(iters):
        new = torch.cdist(points, centres).argmin(1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        for k in range(len(centres)):
            sel = labels == k
            if sel.any():
                centres[k] = points[sel].mean(0)
    return labels, centres


def kmeans_damage_mask(image: torch.Tensor, k: int = 2, iters: int = 20, damage_colour=PALETTE["plaster"],
                       max_damage: float = 0.6) -> torch.Tensor:
    """Blind damage segmentation as in DiffuMural: K-means (K = 2) on each image's pixel colours.

    Centres start at the darkest and brightest pixels (by the sum of RGB; K > 2 adds evenly spaced quantiles),
    so the result is deterministic. The cluster whose centre is nearest ``damage_colour`` is the damage, unless it
    covers more than ``max_damage`` of the image: then it is the plaster ground itself, colour cannot tell damage
    from it, and nothing is flagged (a blind restoration then leaves the image as it is rather than repaint it).
    ``(B, 3, H, W)`` in [0, 1] -> mask ``(B, 1, H, W)``, 1 = known, 0 = damage. Crude by design: paint the same
    colour as the plaster is called damage, and damage of another colour is missed.
    """
    b, c, h, w = image.shape
    ref = torch.tensor(damage_colour, dtype=image.dtype, device=image.device)
    masks = []
    for img in image:
        pts = img.reshape(c, -1).T
        order = pts.sum(1).argsort()
        init = pts[order[torch.linspace(0, len(order) - 1, k).round().long()]].clone()
        labels, centres = kmeans(pts, init, iters)
        damage = (centres - ref).norm(dim=1).argmin()
        known = labels != damage
        if 1 - known.float().mean() > max_damage:  # the ground, not damage
            known = torch.ones_like(known)
        masks.append(known.to(image.dtype).reshape(1, h, w))
    return torch.stack(masks)


def scale_condition(known: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
    """The 8-channel condition of one scale (module docstring); ``coarse`` is the coarser result in [0, 1] at any
    size (upsampled here), or None at the coarsest scale."""
    size = known.shape[-1]
    mask = mask.to(known.dtype)
    up = torch.zeros_like(known) if coarse is None else to_diffusion(upsample(coarse, size))
    return torch.cat([up, to_diffusion(known) * mask, mask, damage_contour(mask)], dim=1)


@torch.no_grad()
def multiscale_sample(models, schedule: NoiseSchedule, known: torch.Tensor, mask: torch.Tensor | None, sizes, *,
                      sampler: str = "ddim", steps: int | list[int] = 20, eta: float = 0.0, seed=0,
                      refine_from: float | None = None, condition=scale_condition, paste: bool = False,
                      return_scales: bool = False, end: int = 0):
    """Restore ``known`` coarse to fine: each scale is sampled conditioned on the previous scale's result, its
    mask and the damage contour, and composited with the known pixels at that scale.

    ``mask=None`` is the blind case: the mask is estimated with :func:`kmeans_damage_mask`. ``sampler`` is
    "ddim" (``steps`` calls per scale, ``eta``) or "ddpm" (``steps`` strided ancestral calls per scale); ``steps``
    may also be a list, one count per scale, coarsest first (``[1, 49]``: the coarse layout in one call, a
    regression to its mean, and the detail sampled at the finest scale).
    ``refine_from`` (DDIM only, a fraction of T such as 0.5): every scale after the first starts from the coarser
    result, upsampled and noised to that step, instead of from pure noise, so its calls refine detail (SDEdit).
    ``condition(known, mask, coarse)`` builds each scale's condition (default :func:`scale_condition`); ``paste``
    and ``end`` (every scale's last model call) as in :func:`murallab.diffusion.ddim_sample`.
    Returns ``(B, 3, H, W)`` in [0, 1] at ``sizes[-1]`` (and the list of per-scale results with
    ``return_scales``); known pixels are exactly ``known``.
    """
    if known.shape[-1] != sizes[-1] or known.shape[-2] != sizes[-1]:
        raise ValueError(f"known must be square at the finest size {sizes[-1]}, got {tuple(known.shape)}")
    per_scale = [steps] * len(sizes) if isinstance(steps, int) else [int(n) for n in steps]
    if len(per_scale) != len(sizes) or min(per_scale) < 1:
        raise ValueError(f"steps must be an int or one count >= 1 per scale ({len(sizes)}), got {steps}")
    mask = kmeans_damage_mask(known) if mask is None else check_mask(mask, known, max_hole_ratio=1.0)
    coarse, results = None, []
    for i, (model, size, n) in enumerate(zip(models, sizes, per_scale)):
        k, m = downsample(known, size), downsample_mask(mask.to(known.dtype), size)
        cond = condition(k, m, coarse)
        kw = dict(known=k, mask=m, cond=cond, steps=n, seed=seed + i if isinstance(seed, int) else seed,
                  paste=paste, end=end)
        if sampler == "ddim" and refine_from is not None and coarse is not None:
            start = round(refine_from * (schedule.num_steps - 1))
            g = torch.Generator(device=k.device).manual_seed(seed + 1000 * i if isinstance(seed, int) else 0)
            guess = to_diffusion(upsample(coarse, size))
            x_start = schedule.q_sample(guess, start, torch.randn(guess.shape, generator=g, device=k.device))
            coarse = ddim_sample(model, schedule, eta=eta, x_T=x_start, start=start, **kw)
        elif sampler == "ddim":
            coarse = ddim_sample(model, schedule, eta=eta, **kw)
        elif sampler == "ddpm":
            coarse = ddpm_sample(model, schedule, **kw)
        else:
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {sampler!r}")
        results.append(coarse)
    out = composite(known, mask, coarse)
    return (out, results) if return_scales else out
