"""Pixel losses: L1 and MSE over the whole image, over the holes only, or over the known (valid) pixels only.

With a mask M (1 = known, 0 = hole, ``(B, 1, H, W)``) and the per-element error e (``|pred - target|`` for L1,
``(pred - target)²`` for MSE), a region is a weight map W:

    region="all":    W = 1          region="hole":   W = 1 - M          region="valid":   W = M

    loss = Σ W·e / Σ W           (normalise="region": the mean over the elements the region covers)
    loss = Σ W·e / (B·C·H·W)     (normalise="image":  the PConv paper's 1/N_Igt, N = C·H·W per image)

Sums run over the whole batch and every channel: a (B, 1, H, W) mask covers C elements per pixel, so Σ W counts
C·(pixels in the region). A region that covers nothing (no holes in the batch, say) gives 0, not NaN.

Why two normalisations? "region" is the honest mean error of the pixels you asked about: a hole L1 of 0.05 means
the holes are off by 0.05 on average, whatever their size. The PConv paper (Liu et al. 2018) divides both its hole
and valid terms by the image size instead, so its weights (valid 1, hole 6) were tuned for that; with
"region" a 10 % hole would count 10 times more. ``PConvLoss`` therefore uses "image".
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["l1_loss", "mse_loss", "PixelLoss"]

_REGIONS = ("all", "hole", "valid")


def _weights(pred: torch.Tensor, target: torch.Tensor, mask, region: str) -> torch.Tensor | None:
    """The region's weight map, broadcastable to ``pred`` (None = everywhere)."""
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if region not in _REGIONS:
        raise ValueError(f"region must be one of {_REGIONS}, got {region!r}")
    if region == "all":
        return None
    if mask is None:
        raise ValueError(f"region={region!r} needs a mask (B, 1, H, W), 1 = known, 0 = hole")
    if mask.dim() != pred.dim() or mask.shape[0] != pred.shape[0] or mask.shape[-2:] != pred.shape[-2:] \
            or mask.shape[1] not in (1, pred.shape[1]):
        raise ValueError(f"mask must be (B, 1, H, W) or (B, C, H, W) matching the images {tuple(pred.shape)}, "
                         f"got {tuple(mask.shape)}")
    mask = mask.to(pred.dtype)
    return 1 - mask if region == "hole" else mask


def _region_mean(err: torch.Tensor, w: torch.Tensor | None, normalise: str) -> torch.Tensor:
    if normalise not in ("region", "image"):
        raise ValueError(f"normalise must be 'region' or 'image', got {normalise!r}")
    if w is None:
        return err.mean()
    total = (w * err).sum()
    if normalise == "image":
        return total / err.numel()
    count = w.expand_as(err).sum()
    return total / count.clamp_min(1e-8)  # an empty region has total 0, so this is 0


def l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *, region: str = "all",
            normalise: str = "region") -> torch.Tensor:
    """Mean absolute error over a region (module docstring).

    Args:
        pred, target: ``(B, C, H, W)`` images (any range).
        mask: ``(B, 1, H, W)`` (or ``(B, C, H, W)``), 1 = known, 0 = hole; needed for ``"hole"`` and ``"valid"``.
        region: ``"all"``, ``"hole"`` or ``"valid"``.
        normalise: ``"region"`` (divide by the elements covered) or ``"image"`` (divide by B·C·H·W).

    Returns:
        A scalar, >= 0; 0 when pred equals target on the region, or when the region is empty.
    """
    return _region_mean((pred - target).abs(), _weights(pred, target, mask, region), normalise)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *, region: str = "all",
             normalise: str = "region") -> torch.Tensor:
    """Mean squared error over a region; arguments and result as :func:`l1_loss`."""
    return _region_mean((pred - target) ** 2, _weights(pred, target, mask, region), normalise)


class PixelLoss(nn.Module):
    """Module form: ``PixelLoss(kind="l1" | "mse", region="all" | "hole" | "valid", normalise="region")``.

    Call ``loss(pred, target, mask=None)``; shapes as :func:`l1_loss`.
    """

    def __init__(self, kind: str = "l1", region: str = "all", normalise: str = "region"):
        super().__init__()
        if kind not in ("l1", "mse"):
            raise ValueError(f"kind must be 'l1' or 'mse', got {kind!r}")
        if region not in _REGIONS:
            raise ValueError(f"region must be one of {_REGIONS}, got {region!r}")
        self.kind, self.region, self.normalise = kind, region, normalise

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        fn = l1_loss if self.kind == "l1" else mse_loss
        return fn(pred, target, mask, region=self.region, normalise=self.normalise)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, region={self.region!r}, normalise={self.normalise!r}"
