"""Figures for the notebooks: image grids, mask overlays and interactive explorers.

Every function takes library tensors (images ``(3, H, W)`` in [0, 1], masks ``(1, H, W)`` with
1 = known) and returns a matplotlib ``Figure`` so notebooks can show it and scripts can save it.
Explorers build an ipywidgets UI *and* draw once with their defaults, so a headless run (papermill,
nbval) still produces the figure.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from .data.masks import hole_ratio, random_walk_masks

__all__ = ["to_hwc", "overlay_mask", "show_images", "mask_explorer"]


def to_hwc(image: torch.Tensor):
    """``(3, H, W)`` or ``(1, H, W)`` tensor -> ``(H, W, 3)`` / ``(H, W)`` numpy array for ``imshow``."""
    a = image.detach().cpu().float().clamp(0, 1)
    return a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()


def overlay_mask(image: torch.Tensor, mask: torch.Tensor, color=(0.9, 0.1, 0.6), alpha: float = 0.7) -> torch.Tensor:
    """Tint the holes (``mask == 0``) of ``image`` with ``color``: ``(3, H, W)`` in [0, 1]."""
    if image.shape[-2:] != mask.shape[-2:]:
        raise ValueError(f"mask is {tuple(mask.shape[-2:])} but the image is {tuple(image.shape[-2:])}: "
                         f"they must have the same size")
    tint = torch.tensor(color, dtype=image.dtype).view(3, 1, 1)
    hole = (1 - mask) * alpha
    return image * (1 - hole) + tint * hole


def show_images(images, titles=None, ncols: int | None = None, size: float = 2.4, suptitle: str | None = None):
    """A grid of images (tensors ``(3|1, H, W)``); masks are shown in grey (white = known)."""
    images = list(images)
    ncols = ncols or min(len(images), 8)
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(to_hwc(images[i]), cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def mask_explorer(image: torch.Tensor | None = None, *, size: int = 256, n: int = 6, hole_lo: float = 0.1,
                  hole_hi: float = 0.4, seed: int = 0):
    """Interactive random-walk mask explorer: sliders for the hole-ratio range and the seed.

    Draws the masks once with the given defaults (so headless runs get the figure) and returns the
    ipywidgets UI, sliders above an area where moving them redraws; ``None`` without ipywidgets.
    """
    def draw(hole_lo=hole_lo, hole_hi=hole_hi, seed=seed):
        lo, hi = min(hole_lo, hole_hi), max(hole_lo, hole_hi)
        hi = max(hi, lo + 0.01)
        masks = random_walk_masks(n, size, hole_ratio=(lo, hi), seed=seed)
        shown = [overlay_mask(image, m) if image is not None else m for m in masks]
        fig = show_images(shown, [f"holes {float(hole_ratio(m)):.0%}" for m in masks], ncols=n,
                          suptitle=f"random-walk masks, hole ratio in [{lo:.2f}, {hi:.2f}], seed {seed}")
        plt.show()
        return fig

    draw()  # the default figure, drawn straight into the cell: headless runs get it too
    try:
        import ipywidgets as w
    except ImportError:
        return None
    sliders = {"hole_lo": w.FloatSlider(value=hole_lo, min=0.01, max=0.9, step=0.01, description="hole min"),
               "hole_hi": w.FloatSlider(value=hole_hi, min=0.02, max=0.95, step=0.01, description="hole max"),
               "seed": w.IntSlider(value=seed, min=0, max=100, description="seed")}
    out = w.Output()

    def redraw(_change):
        with out:
            out.clear_output(wait=True)
            draw(**{k: v.value for k, v in sliders.items()})

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    # Nothing is drawn into the Output until a slider moves: executing an Output widget's first draw
    # headless makes nbclient (papermill, nbval) wait forever now and then (jupyter/nbclient#312).
    return w.VBox([w.HBox(list(sliders.values())), out])
