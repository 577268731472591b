"""Notebook 01, data: a random-walk stroke, patch coverage, and reading a mask file's convention."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data import load_mask, patch_coverage
from ._common import NotYet, call, check, number


def _walk_parts(out, size: int):
    """Split ``(mask, (x, y))`` into a (size, size) float mask and two float64 path arrays, or raise NotYet."""
    try:
        mask, (x, y) = out
        mask = torch.as_tensor(mask).double()
        x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise NotYet("return (mask, (x, y)): the (1, size, size) mask and the path's two coordinate arrays") from None
    if tuple(mask.shape) != (1, size, size):
        raise NotYet(f"the mask has shape {tuple(mask.shape)}, expected (1, {size}, {size})")
    if len(x) != len(y) or len(x) < 2:
        raise NotYet("x and y must hold one coordinate per step of the walk")
    if not set(mask.unique().tolist()) <= {0.0, 1.0}:
        raise NotYet("the mask must be binary: 1 = known, 0 = hole")
    return mask[0], x, y


def check_walk(fn) -> bool:
    """``fn(n_steps, sigma, radius, step, size, rng) -> (mask, (x, y))``: one random-walk stroke.

    Checked against the definition, not against one implementation: consecutive path points are ``step`` apart;
    the heading turns by ``ε_k ~ N(0, σ²)`` each step (so the turning angles have standard deviation σ); the walk
    starts within one step of the canvas centre; it draws from ``rng``; and the holes (0) are exactly the pixels
    within ``radius`` of a path point, pixel (row, column) = (y, x)."""
    what = "random-walk stroke"

    def body():
        size, n, sigma, radius, step = 48, 1500, 0.3, 2.5, 1.5
        mask, x, y = _walk_parts(call(fn, n, sigma, radius, step, size, np.random.default_rng(7)), size)
        _, x2, y2 = _walk_parts(call(fn, n, sigma, radius, step, size, np.random.default_rng(7)), size)
        _, x3, y3 = _walk_parts(call(fn, n, sigma, radius, step, size, np.random.default_rng(8)), size)
        if not (np.array_equal(x, x2) and np.array_equal(y, y2)):
            raise NotYet("the same rng seed must give the same walk: draw every random number from rng")
        if np.array_equal(x, x3) and np.array_equal(y, y3):
            raise NotYet("different rng seeds gave the same walk: draw the start heading and the turns from rng")
        dx, dy = np.diff(x), np.diff(y)
        if not np.allclose(np.hypot(dx, dy), step, rtol=1e-6):
            raise NotYet(f"consecutive path points must be `step` = {step} apart: p_(k+1) = p_k + s·(cos θ_k, "
                         f"sin θ_k)")
        if np.hypot(x[0] - size / 2, y[0] - size / 2) > step * (1 + 1e-6):
            raise NotYet("start the walk at the centre of the canvas, (size/2, size/2)")
        turns = np.angle(np.exp(1j * np.diff(np.arctan2(dy, dx))))  # heading changes, wrapped to (-π, π]
        spread = float(turns.std())
        if abs(spread - sigma) > 0.12 * sigma:
            hint = (f"the heading turns by {spread:.3g} per step (standard deviation), expected σ = {sigma}: "
                    f"θ_(k+1) = θ_k + ε_k, a running sum of the turns (np.cumsum)")
            if abs(spread - np.sqrt(2) * sigma) < 0.12 * sigma:
                hint += "; it looks as if θ_k = θ_0 + ε_k, without the running sum"
            raise NotYet(hint)
        # the truth: every pixel within `radius` of a path point is a hole (pixel (i, j) sits at y = i, x = j)
        ii, jj = np.mgrid[:size, :size]
        d2 = ((ii.ravel()[:, None] - y[None]) ** 2 + (jj.ravel()[:, None] - x[None]) ** 2).min(1).reshape(size, size)
        inside, outside = d2 < radius ** 2 - 1e-9, d2 > radius ** 2 + 1e-9
        hole = mask.numpy() == 0
        if (hole[inside].all() and not hole[outside].any()) and hole.any():
            return f"{what}: steps of length s, turns of spread σ, a disc of radius r at every point"
        if (~hole[inside]).all() and hole[outside].all():
            raise NotYet("the mask is inverted: murallab masks are 1 = known, 0 = hole")
        d2t = ((ii.ravel()[:, None] - x[None]) ** 2 + (jj.ravel()[:, None] - y[None]) ** 2).min(1).reshape(size, size)
        if hole[d2t < radius ** 2 - 1e-9].all() and not hole[d2t > radius ** 2 + 1e-9].any():
            raise NotYet("x and y are swapped in the mask: x is the column (second index), y the row")
        raise NotYet("the holes must be the pixels within `radius` of some path point: "
                     "(row - y_k)² + (column - x_k)² <= r²")

    return check(what, body)


def check_coverage(fn) -> bool:
    """``fn(positions, height, width, patch_size) -> float``: the fraction of an image's pixels that at least one
    ``patch_size`` square patch covers; ``positions`` holds (top, left) corners. Compared with
    :func:`murallab.data.patch_coverage`."""
    what = "patch coverage"

    def body():
        cases = [([(0, 0), (10, 10), (20, 40)], 64, 96, 32),      # two patches overlap
                 ([(0, 0), (0, 0)], 40, 40, 20),                   # the same patch twice
                 ([(5, 7)], 30, 50, 16),
                 ([], 32, 32, 8)]                                  # no patch at all
        for positions, h, w, p in cases:
            got = number(call(fn, list(positions), h, w, p), "a fraction between 0 and 1")
            want = patch_coverage(positions, h, w, p)
            if abs(got - want) <= 1e-9:
                continue
            if abs(got - len(positions) * p * p / (h * w)) <= 1e-9:
                raise NotYet("overlapping patches were counted twice: mark the covered pixels (a boolean image) "
                             "and count each pixel once")
            if abs(got * h * w - want * h * w) < 1e-6 * h * w or got > 1:
                raise NotYet(f"return a fraction of the image ({got:.4g} for {len(positions)} patches on {h}×{w})")
            raise NotYet(f"for {len(positions)} patch(es) of {p} px at {positions} on a {h}×{w} image: got "
                         f"{got:.4g}, expected {want:.4g}")
        return f"{what} matches murallab.data.patch_coverage"

    return check(what, body)


def check_mask_convention(fn) -> bool:
    """``fn(levels, hole_value) -> (1, H, W)`` float mask, 1 = known, 0 = hole, from a mask file's grey levels
    ``levels`` (uint8 ``(H, W)``; a JPEG's edges are grey): a pixel is white when its level is above 127, and
    ``hole_value`` (0 or 255) says which colour marks the holes. Compared with :func:`murallab.data.load_mask`
    reading the same levels from a PNG file."""
    what = "reading a mask file's convention"

    def body():
        g = np.random.default_rng(5)
        for hole_value in (255, 0):
            levels = np.where(g.random((12, 20)) < 0.3, 255, 0).astype(np.uint8)
            levels[3, :] = np.arange(110, 150, 2)  # grey edge values around the threshold
            with tempfile.TemporaryDirectory() as tmp:
                Image.fromarray(levels).save(Path(tmp) / "mask.png")
                want = load_mask(Path(tmp) / "mask.png", hole_value=hole_value, white_level=255)
            try:
                got = torch.as_tensor(call(fn, levels.copy(), hole_value)).float()
            except (TypeError, ValueError, RuntimeError):
                raise NotYet("return a float tensor (1, H, W)") from None
            if got.dim() == 2:
                raise NotYet(f"return shape (1, H, W), a channel axis first; got {tuple(got.shape)}")
            if tuple(got.shape) != tuple(want.shape):
                raise NotYet(f"return shape {tuple(want.shape)}, got {tuple(got.shape)}")
            if torch.equal(got, want):
                continue
            if not set(got.unique().tolist()) <= {0.0, 1.0}:
                raise NotYet("binarise: a pixel is white when its level is above 127; the mask holds only 0 and 1")
            if torch.equal(got, 1 - want):
                raise NotYet(f"inverted for hole_value={hole_value}: murallab masks are 1 = known, and the file's "
                             f"{'white' if hole_value == 255 else 'black'} pixels are the holes")
            raise NotYet("grey levels near the threshold differ: a pixel is white when its level is > 127")
        return f"{what}: both conventions read as murallab's 1 = known"

    return check(what, body)
