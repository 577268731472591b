"""Smoothness and edges: total variation (TV) and a Sobel edge loss.

Total variation sums the absolute differences between neighbouring pixels:

    TV(x) = ( Σ_{i,j} |x[i, j+1] - x[i, j]|  +  Σ_{i,j} |x[i+1, j] - x[i, j]| ) / N,      N = C·H·W per image

over all channels, averaged over the batch. It is small for smooth images and large for noisy ones.

The PConv paper (Liu et al. 2018) does not smooth the whole image: its TV term runs over P, "the region of 1-pixel
dilation of the hole region", on the composite I_comp = M·I_in + (1 - M)·I_out, and counts a pair of neighbours only
when *both* lie in P. That penalises seams at the hole border and noise inside the hole, and leaves the known mural
alone (its brush texture is not the network's to smooth). N stays C·H·W, as in the paper's other terms. We dilate
with a 3×3 square (8-neighbourhood). naoto0804's popular port takes TV over the whole composite instead, normalised
by the number of differences. On the composite the two give the same gradient (a pair of two known pixels is a
constant there, and a pair that touches a hole lies inside P), but not the same number: the port's value adds the
known mural's own texture, so its logged "tv" mostly measures the input, not the restoration.
``total_variation(x)`` without a mask is that whole-image TV (with our C·H·W normalisation).

The Sobel edge loss compares image gradients: L1 between the Sobel derivatives (∂x, ∂y per channel) of the
prediction and the target, valid windows only. We compare the two gradient *components*, not the magnitudes
√(∂x² + ∂y²): components keep the edge's direction and polarity (a dark line restored as a light one has the same
magnitude), and have a gradient everywhere (the square root has none on flat areas). Kernels are divided by 8,
so a ramp rising by s per pixel has derivative exactly s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["dilate_holes", "total_variation", "TotalVariation", "sobel_gradients", "edge_loss", "EdgeLoss"]


def dilate_holes(mask: torch.Tensor, pixels: int = 1) -> torch.Tensor:
    """The hole region grown by ``pixels`` in every direction (3×3 square steps).

    Args:
        mask: ``(B, 1, H, W)``, 1 = known, 0 = hole.
    Returns:
        ``(B, 1, H, W)`` float, **1 = in the dilated hole region** (the PConv paper's P), 0 elsewhere.
    """
    k = 2 * pixels + 1
    holes = 1 - (mask if mask.is_floating_point() else mask.float())
    return F.max_pool2d(holes, k, stride=1, padding=pixels)


def total_variation(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Total variation of ``(B, C, H, W)`` images, normalised by C·H·W and averaged over the batch.

    Without ``mask``: over the whole image. With ``mask`` (``(B, 1, H, W)``, 1 = known, 0 = hole): over the PConv
    paper's region, pairs of neighbours that both lie in the one-pixel dilation of the holes (module docstring);
    pass the composite. Returns a scalar >= 0; 0 for a constant image, or with a mask that has no hole.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got {tuple(x.shape)}")
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs()
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs()
    if mask is not None:
        if mask.shape != (x.shape[0], 1, *x.shape[-2:]):
            raise ValueError(f"mask must be (B, 1, H, W) = {(x.shape[0], 1, *x.shape[-2:])}, got {tuple(mask.shape)}")
        p = dilate_holes(mask.to(x.dtype))
        dh = dh * (p[..., :, 1:] * p[..., :, :-1])
        dv = dv * (p[..., 1:, :] * p[..., :-1, :])
    return (dh.sum() + dv.sum()) / x.numel()


class TotalVariation(nn.Module):
    """Module form of :func:`total_variation`: ``tv(x, mask=None)``."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return total_variation(x, mask)


def sobel_gradients(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, 2, H - 2, W - 2)``: per channel, the Sobel derivatives (∂/∂x, ∂/∂y) / 8."""
    if x.dim() != 4 or min(x.shape[-2:]) < 3:
        raise ValueError(f"x must be (B, C, H, W) with H, W >= 3, got {tuple(x.shape)}")
    b, c, h, w = x.shape
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device) / 8
    k = torch.stack([kx, kx.t()]).unsqueeze(1).repeat(c, 1, 1, 1)  # (2C, 1, 3, 3): [∂x, ∂y] per channel
    return F.conv2d(x, k, groups=c).view(b, c, 2, h - 2, w - 2)


def edge_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the Sobel derivatives of ``(B, C, H, W)`` images (scalar, >= 0).

    0 when ``pred - target`` is constant (a uniform brightness offset has no edges); see the module docstring.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    return (sobel_gradients(pred) - sobel_gradients(target)).abs().mean()


class EdgeLoss(nn.Module):
    """Module form of :func:`edge_loss`: ``edge(pred, target)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return edge_loss(pred, target)
