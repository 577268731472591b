"""Notebook 01: reference answers."""

import numpy as np
import torch


def my_walk(n_steps, sigma, radius, step, size=256, rng=None):
    """A single random-walk stroke as a (1, size, size) mask, 1 = known, 0 = hole, and its path (x, y)."""
    rng = rng or np.random.default_rng(0)
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, sigma, n_steps))  # θ_(k+1) = θ_k + ε_k
    y = size / 2 + np.cumsum(step * np.sin(theta))                                # p_(k+1) = p_k + s (cos, sin)
    x = size / 2 + np.cumsum(step * np.cos(theta))
    yy, xx = np.mgrid[:size, :size]
    hole = np.zeros((size, size), bool)
    for cy, cx in zip(y, x):  # the per-step loop: clear, and slow (bench/masks.py times it)
        hole |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    return torch.from_numpy(~hole).float()[None], (x, y)


def my_coverage(positions, height, width, patch_size):
    """Fraction of the image's pixels that at least one patch covers: mark them, then count each pixel once."""
    covered = np.zeros((height, width), dtype=bool)
    for top, left in positions:
        covered[top:top + patch_size, left:left + patch_size] = True
    return float(covered.mean())


def to_known_mask(levels, hole_value):
    """A mask file's grey levels (uint8 (H, W)) as murallab's (1, H, W) float mask, 1 = known."""
    white = np.asarray(levels) > 127
    known = ~white if hole_value == 255 else white
    return torch.from_numpy(known.astype(np.float32))[None]
