"""Tiling: run a per-tile function over an image of any size and blend the tiles back without seams.

A wall photograph of 3000×2000 pixels does not fit a network's memory in one piece, and the networks are trained
on 256² patches anyway. So the image is cut into tiles of ``tile`` pixels that overlap by ``overlap`` pixels, each
tile is run on its own (at most ``batch_size`` at a time, so peak memory depends on the tile, not the image), and
the tiles' outputs are blended back with smooth weights.

Tiles along one axis of length ``L`` start at ``0, S, 2S, …`` with ``S = tile - overlap``; the last tile is moved
back to end exactly at ``L`` (it may overlap its neighbour by more). An axis shorter than a tile gets one tile of
the axis's length (the networks pad their input to their stride themselves). Every tile has the same size.

Blending. Along each axis tile ``k`` gets a 1-D window ``w_k``: 1 in its interior, rising over its first
``overlap`` pixels if it has a neighbour before it, and falling over its last ``overlap`` pixels if it has one after.
The ramp is a raised cosine, ``r(i) = ½ - ½ cos(π (i + ½) / overlap)``, so ``r(i) + r(overlap - 1 - i) = 1``: two
tiles meeting with the nominal overlap already sum to 1. The windows are then divided by their sum at each position
(which fixes the larger last overlap), so along each axis ``Σ_k w_k = 1``. The 2-D weight of tile ``(i, j)`` is the
outer product ``w_i^y ⊗ w_j^x``, and ``Σ_ij w_i^y ⊗ w_j^x = (Σ_i w_i^y)(Σ_j w_j^x) = 1``: a partition of unity, so
the output is a weighted average of the tiles that cover each pixel, and a function that is the same in every tile
(the identity, say) comes back unchanged. No seams: each tile's weight fades to nearly 0 at its inner edges, where
its prediction is worst (it has no context beyond the edge).

A network with ``2**k`` downsampling sees the same sampling grid in a tile as in the whole image when the tile starts
at a multiple of ``2**k``; away from the tile's edges (further than its receptive field) the tile's output is then
the whole-image output. With the defaults (256, 32) the step is 224 = 7·32, aligned for up to 5 stride-2 layers.
Misaligned tiles still work (the blend averages the slightly different outputs); the tests use aligned ones to
compare tiled and whole-image results (equal up to rounding).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

__all__ = ["check_tiling", "tile_windows", "tiled", "count_tiles"]

#: a progress bar is shown (when asked for) only above this many tiles
PROGRESS_MIN_TILES = 4

def check_tiling(tile: int, overlap: int, batch_size: int = 1) -> None:
    """Raise ``ValueError`` unless ``tile >= 1``, ``0 <= overlap < tile / 2`` and ``batch_size >= 1`` (all ints)."""
    for name, v in (("tile", tile), ("overlap", overlap), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    if overlap < 0 or 2 * overlap >= tile:
        raise ValueError(f"overlap must be at least 0 and less than half the tile ({tile} px), got {overlap}: "
                         f"tiles step by tile - overlap, and each tile's two blending ramps (overlap px each) "
                         f"must fit inside it")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def tile_windows(length: int, tile: int, overlap: int) -> tuple[list[int], torch.Tensor]:
    """Tile starts and blending windows along one axis of ``length`` pixels.

    Returns ``(starts, windows)``: ``windows`` is ``(len(starts), t)`` float64 with ``t = min(tile, length)``;
    tile ``k`` covers ``[starts[k], starts[k] + t)`` with weights ``windows[k]``. Every pixel is covered, every
    weight is positive, and at every pixel the weights of the tiles covering it sum to 1 (see the module docstring).
    """
    check_tiling(tile, overlap)
    if length < 1:
        raise ValueError(f"cannot tile an axis of {length} pixels")
    t = min(tile, length)
    starts = [0] if length <= tile else list(range(0, length - tile, tile - overlap)) + [length - tile]
    windows = torch.ones(len(starts), t, dtype=torch.float64)
    if overlap and len(starts) > 1:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap, dtype=torch.float64) + 0.5) / overlap)
        windows[1:, :overlap] *= ramp  # rises where the tile meets the one before it
        windows[:-1, -overlap:] *= ramp.flip(0)  # falls where it meets the one after it
    total = torch.zeros(length, dtype=torch.float64)
    for s, w in zip(starts, windows):
        total[s:s + t] += w
    windows /= torch.stack([total[s:s + t] for s in starts])
    return starts, windows


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, tile: int = 256, overlap: int = 32,
          batch_size: int = 4, device=None, progress: bool = False, desc: str = "tiles") -> torch.Tensor:
    """Apply a per-tile function to an image of any size, tile by tile, and blend the results.

    Args:
        fn: ``(B, C, t_h, t_w) -> (B, C_out, t_h, t_w)``, called on ``device`` with at most ``batch_size`` tiles.
        x: ``(C, H, W)`` float tensor, any H×W.
        tile, overlap: tile side and overlap in pixels (``0 <= overlap < tile / 2``).
        device: where ``fn`` runs (default: ``x``'s device); the output is assembled on ``x``'s device.
        progress: show a tqdm bar on stderr when there are more than ``PROGRESS_MIN_TILES`` tiles.
    Returns:
        ``(C_out, H, W)`` in ``x``'s dtype: at each pixel the weighted average of the outputs of the tiles covering
        it, with the blending windows of ``tile_windows`` (weights sum to 1 at every pixel).
    """
    check_tiling(tile, overlap, batch_size)
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        raise ValueError(f"tiled expects a float (C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    _, h, w = x.shape
    ys, wy = tile_windows(h, tile, overlap)
    xs, wx = tile_windows(w, tile, overlap)
    th, tw = wy.shape[1], wx.shape[1]
    wy, wx = wy.to(x.device, x.dtype), wx.to(x.device, x.dtype)
    grid = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    device = x.device if device is None else torch.device(device)
    out = None
    show = progress and len(grid) > PROGRESS_MIN_TILES
    with tqdm(total=len(grid), desc=desc, unit="tile", file=sys.stderr, disable=not show) as bar:
        for k in range(0, len(grid), batch_size):
            chunk = grid[k:k + batch_size]
            batch = torch.stack([x[:, ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in chunk]).to(device)
            y = fn(batch)
            if y.dim() != 4 or y.shape[0] != len(chunk) or tuple(y.shape[-2:]) != (th, tw):
                raise ValueError(f"the per-tile function must map (B, C, {th}, {tw}) to (B, C_out, {th}, {tw}); "
                                 f"it returned {tuple(y.shape)} for B = {len(chunk)}")
            y = y.to(x.device, x.dtype)
            if out is None:
                out = x.new_zeros(y.shape[1], h, w)
            for (i, j), yk in zip(chunk, y):
                out[:, ys[i]:ys[i] + th, xs[j]:xs[j] + tw] += yk * (wy[i][:, None] * wx[j])
            bar.update(len(chunk))
    return out


def count_tiles(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles ``tiled`` runs on a ``height × width`` image."""
    return len(tile_windows(height, tile, overlap)[0]) * len(tile_windows(width, tile, overlap)[0])
