"""Evaluation metrics: MSE and PSNR on the 0-255 scale, and SSIM, over the whole image or over the holes only.

    MSE  = mean over pixels and channels of (255·(pred - target))²          (0 = perfect; 8-bit units²)
    PSNR = 10·log10(255² / MSE) dB                                           (higher is better; inf if identical)
    SSIM = murallab.losses.ssim, equal to scikit-image's Gaussian SSIM       (1 = identical)

Every metric is computed per image and then averaged over the images (``reduction="mean"``), the way papers
report them; ``reduction="none"`` returns the per-image values, shape ``(B,)``. Values are float64.

Hole-only metrics (``mask`` given, 1 = known, 0 = hole) ask "how good is the restoration where the mural was
lost?". Known pixels are copied from the input in a restored mural, so they must not count:

- MSE and PSNR average over the hole pixels only (all channels);
- SSIM compares the composite ``mask·target + (1 - mask)·pred`` with the target and averages the SSIM map over
  the windows *centred on* hole pixels. Windows reach 5 pixels around their centre, so a window near the hole's
  border also sees known pixels; compositing first makes those identical in both images, and the value therefore
  depends on the hole pixels of ``pred`` only. As for the full image, windows that do not fit inside the image
  (centres within 5 pixels of its border) are left out.

An image with no hole (or, for SSIM, no hole centre away from the border) has no hole-only value: it is NaN, and
``reduction="mean"`` averages over the images that have one.

The full-image metrics score ``pred`` as given. A network's raw output differs from the restored mural on known
pixels: composite it first if the restored mural is what you want to score.

The legacy DLCV number
----------------------
:func:`legacy_dlcv_mse` reproduces the "MSE" of the DLCV-2019 challenge's ``evaluate.py``, which subtracted two
``uint8`` arrays. NumPy's uint8 arithmetic wraps around, so every pixel contributes ``d² mod 256`` instead of
``d²``: the "MSE" can never exceed 255, an error of 16 counts as 0, and an unfilled black hole scores about as well
as a good inpainting. The published "MSE 35-36" results are this number. Report exact MSE and PSNR; quote the
legacy number only to compare with those results, and label it.

A ruler for the numbers
-----------------------
What does "PSNR 25.7, SSIM 0.872" look like? :func:`blurred_truth` builds an *oracle*, not a method: the true image
blurred by a Gaussian of σ pixels, composited into the holes. Scoring it for a few σ gives a ruler: a restoration
that scores like the truth blurred at σ = 4 recovers the holes about as well as a perfect but 4-pixel-blurry fill.
A bar such as "+0.03 SSIM over Telea" can be read off the same ruler as the blur a fill must get down to.

Texture
-------
PSNR and SSIM reward the mean of the plausible restorations, which is smooth. :func:`hf_ratio` asks the other
question, "is the hole as textured as the truth?": the hole's high-frequency energy (the squared Laplacian, summed
over the hole's inner pixels, those whose 3×3 neighbourhood is all hole, so the seam with the known paint does not
count) of the restored image over the truth's. 1 = as much fine detail as the truth;
a blur scores near 0; speckle that is not there scores above 1. It says nothing about whether the detail is right:
read it beside PSNR. :func:`blob_share` counts one kind of wrong detail, the saturated blobs a diffusion sampler can
leave: hole pixels far off the truth (an error above 0.3 in some channel) with a channel pinned at 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms.v2.functional import gaussian_blur

from .data.masks import check_mask, composite
from .losses.ssim import ssim as _ssim

__all__ = ["mse", "psnr", "ssim", "legacy_dlcv_mse", "scores", "blurred_truth", "hf_energy", "hf_ratio",
           "saturated_blobs", "blob_share", "iou", "f1", "DAMAGE_THRESHOLD"]

_WINDOW = 11

#: the default threshold of a newly built blind network (``DualDecoderUNet(threshold=...)``): a pixel is called
#: damaged when its damage probability is at least this. Low on purpose: a missed hole keeps its damage in the
#: restored mural, a false alarm only repaints a pixel. Choose your own on validation data (notebook 05); the
#: shipped detector carries the one chosen for it.
DAMAGE_THRESHOLD = 0.1


def _batch(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None):
    """Check and bring to ``(B, C, H, W)`` float64 (and mask ``(B, 1, H, W)``)."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() not in (3, 4):
            raise TypeError(f"{name} must be a float tensor (C, H, W) or (B, C, H, W) in [0, 1], got "
                            f"{type(t).__name__} {getattr(t, 'dtype', '')} {tuple(getattr(t, 'shape', ()))}; "
                            f"divide 8-bit images by 255")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    pred, target = pred.double(), target.double()
    if pred.dim() == 3:
        pred, target = pred[None], target[None]
    if mask is not None:
        check_mask(mask, pred, max_hole_ratio=1.0)
        mask = mask.double() if mask.dim() == 4 else mask.double()[None]
        if mask.shape[0] != pred.shape[0]:
            raise ValueError(f"mask has {mask.shape[0]} images but pred has {pred.shape[0]}")
    return pred, target, mask


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return per_image.nanmean() if per_image.isnan().any() and not per_image.isnan().all() else per_image.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _mse_per_image(pred, target, mask) -> torch.Tensor:
    err = ((pred - target) * 255.0) ** 2
    if mask is None:
        return err.mean((1, 2, 3))
    hole = (1 - mask).expand_as(err)
    count = hole.sum((1, 2, 3))
    return torch.where(count > 0, (err * hole).sum((1, 2, 3)) / count.clamp_min(1), math.nan)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
        reduction: str = "mean") -> torch.Tensor:
    """Exact mean squared error on the 0-255 scale (no wrap-around, no rounding of ``pred``).

    Args:
        pred, target: ``(B, C, H, W)`` or ``(C, H, W)`` float images in [0, 1].
        mask: optional ``(B, 1, H, W)`` / ``(1, H, W)``, 1 = known, 0 = hole: then over the hole pixels only.
        reduction: ``"mean"`` over images, or ``"none"`` for ``(B,)``.
    """
    return _reduce(_mse_per_image(*_batch(pred, target, mask)), reduction)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
         reduction: str = "mean") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10·log10(255² / MSE)`` per image; arguments as :func:`mse`.

    Identical images give ``inf``. The mean is taken over the per-image PSNRs.
    """
    m = _mse_per_image(*_batch(pred, target, mask))
    return _reduce(10 * torch.log10(255.0 ** 2 / m), reduction)


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *,
         reduction: str = "mean") -> torch.Tensor:
    """SSIM per image (Gaussian window 11, σ 1.5, data range 1, as scikit-image); arguments as :func:`mse`.

    The map is computed in float32 (within a few 1e-6 of scikit-image's float64) and averaged in float64.

    With ``mask``: the mean of the SSIM map of the composite against the target over the windows centred on hole
    pixels (module docstring). Images need H, W >= 11.
    """
    pred, target, mask = _batch(pred, target, mask)
    if mask is not None:
        pred = composite(target, mask, pred)
    smap = _ssim(pred.float(), target.float(), reduction="map").double()  # float32 maps: 15x faster, ~1e-6 off
    if mask is None:
        return _reduce(smap.mean((1, 2, 3)), reduction)
    r = _WINDOW // 2
    hole = (1 - mask)[..., r:mask.shape[-2] - r, r:mask.shape[-1] - r].expand_as(smap)
    count = hole.sum((1, 2, 3))
    per_image = torch.where(count > 0, (smap * hole).sum((1, 2, 3)) / count.clamp_min(1), math.nan)
    return _reduce(per_image, reduction)


def legacy_dlcv_mse(gt_uint8, pred_uint8) -> float:
    """The DLCV-2019 ``evaluate.py`` "MSE": ``np.mean((gt - pred) ** 2)`` on uint8 arrays, wrap-around included.

    **This is not the mean squared error.** uint8 subtraction and squaring wrap modulo 256, so each pixel counts
    ``d² mod 256``: the result is at most 255, an error of 16 (or 32, 48, ...) counts 0, and an unfilled hole scores
    about as well as a good inpainting. Use :func:`mse` and :func:`psnr`; this exists to compare with numbers
    published for that challenge, and should be labelled "legacy DLCV MSE" wherever it is shown.

    Args:
        gt_uint8, pred_uint8: ``np.uint8`` arrays (or CPU ``torch.uint8`` tensors) of the same shape, as
            ``plt.imread`` returns for a JPEG: one image ``(H, W, 3)`` or a stack of equal-sized ones.
    Returns:
        A Python float. (evaluate.py averages the per-image values; for equal-sized images that is this mean.)
    """
    gt, pred = np.asarray(gt_uint8), np.asarray(pred_uint8)
    if gt.dtype != np.uint8 or pred.dtype != np.uint8:
        raise TypeError(f"legacy_dlcv_mse reproduces uint8 arithmetic and needs uint8 arrays, got {gt.dtype} and "
                        f"{pred.dtype}; for a real error use murallab.metrics.mse")
    if gt.shape != pred.shape:
        raise ValueError(f"shapes differ: {gt.shape} and {pred.shape}")
    return float(np.mean((gt - pred) ** 2))  # exactly evaluate.py's get_mse: uint8 - uint8, then ** 2, wraps


def scores(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every metric per image, ``{name: (B,) float64 tensor}``.

    Keys: ``mse``, ``psnr``, ``ssim``; with a mask also ``mse_hole``, ``psnr_hole``, ``ssim_hole``; and
    ``legacy_dlcv_mse``, computed on ``pred`` and ``target`` rounded to 8 bits (what evaluate.py saw in the files).
    Inputs as :func:`mse`.
    """
    out = {"mse": mse(pred, target, reduction="none"), "psnr": psnr(pred, target, reduction="none"),
           "ssim": ssim(pred, target, reduction="none")}
    if mask is not None:
        out.update(mse_hole=mse(pred, target, mask, reduction="none"),
                   psnr_hole=psnr(pred, target, mask, reduction="none"),
                   ssim_hole=ssim(pred, target, mask, reduction="none"))
    p8, t8 = ((t if t.dim() == 4 else t[None]).detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
              for t in (pred, target))
    out["legacy_dlcv_mse"] = torch.tensor([legacy_dlcv_mse(a, b) for a, b in zip(t8, p8)], dtype=torch.float64)
    return out


def blurred_truth(target: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """The oracle fill of the ruler (module docstring): ``target`` blurred by a Gaussian of ``sigma`` px (kernel
    ``2·ceil(3σ) + 1``, reflected borders), composited into the holes of ``mask``.

    ``target`` ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1], ``mask`` ``(B, 1, H, W)`` or ``(1, H, W)``, 1 = known. It
    reads the truth, so it calibrates scores; it is never a result to report as a restoration.
    """
    check_mask(mask, target, max_hole_ratio=1.0)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    k = 2 * math.ceil(3 * sigma) + 1
    return composite(target, mask, gaussian_blur(target, [k, k], [sigma, sigma]))


#: the 5-point discrete Laplacian
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def hf_energy(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B,)``: Σ over the inner hole pixels (mask 0 in their whole 3×3 neighbourhood) and the channels of the squared
    Laplacian of ``image`` ``(B, C, H, W)`` (replicate padding at the image border). It reads hole pixels only."""
    c, pad = image.shape[1], torch.nn.functional.pad
    lap = torch.nn.functional.conv2d(pad(image, (1, 1, 1, 1), mode="replicate"),
                                     LAPLACIAN.to(image)[None, None].repeat(c, 1, 1, 1), groups=c)
    inner = 1 - torch.nn.functional.max_pool2d(pad(mask, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return (lap ** 2 * inner).sum((1, 2, 3))


def hf_ratio(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """The texture score (module docstring): the inner hole's high-frequency energy in ``pred`` over the truth's,
    pooled over the batch. ``(B, 3, H, W)`` in [0, 1], mask ``(B, 1, H, W)``, 1 = known."""
    check_mask(mask, target, max_hole_ratio=1.0)
    return (hf_energy(pred, mask).sum() / hf_energy(target, mask).sum()).item()


def saturated_blobs(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, error: float = 0.3,
                    edge: float = 0.02) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: the hole pixels (mask 0) whose largest channel error exceeds ``error`` and that hold a
    saturated channel (at most ``edge`` or at least 1 - ``edge``). Images ``(B, 3, H, W)`` in [0, 1]."""
    check_mask(mask, target, max_hole_ratio=1.0)
    wrong = (pred - target).abs().amax(1, keepdim=True) > error
    pinned = ((pred <= edge) | (pred >= 1 - edge)).any(1, keepdim=True)
    return wrong & pinned & (mask == 0)


def blob_share(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """The share of hole pixels that are :func:`saturated_blobs`, pooled over the batch (0 = none)."""
    return (saturated_blobs(pred, target, mask).sum() / (mask == 0).sum().clamp(min=1)).item()


def _counts(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """True positives, false positives and false negatives per image of two boolean maps ``(B, 1, H, W)``."""
    if pred.dtype != torch.bool or truth.dtype != torch.bool:
        raise ValueError(f"iou/f1 compare boolean damage maps (True = damaged), got {pred.dtype} and {truth.dtype}; "
                         f"threshold a probability first, e.g. prob >= DAMAGE_THRESHOLD")
    if pred.shape != truth.shape:
        raise ValueError(f"the two maps must have the same shape, got {tuple(pred.shape)} and {tuple(truth.shape)}")
    if pred.dim() == 3:
        pred, truth = pred[None], truth[None]
    dims = tuple(range(1, pred.dim()))
    tp = (pred & truth).sum(dims).double()
    return tp, (pred & ~truth).sum(dims).double(), (~pred & truth).sum(dims).double()


def iou(pred: torch.Tensor, truth: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Intersection over union of two boolean damage maps, ``|P ∧ T| / |P ∨ T|`` per image.

    ``pred`` and ``truth``: ``(B, 1, H, W)`` or ``(1, H, W)`` bool, True = damaged. Two empty maps agree
    perfectly: 1.0. Returns float64, averaged over images (``reduction="none"``: shape ``(B,)``).
    """
    tp, fp, fn = _counts(pred, truth)
    union = tp + fp + fn
    return _reduce(torch.where(union > 0, tp / union.clamp(min=1), torch.ones_like(tp)), reduction)


def f1(pred: torch.Tensor, truth: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """F1 (Dice) of two boolean damage maps, ``2|P ∧ T| / (|P| + |T|)`` per image; 1.0 when both are empty.

    Shapes, values and ``reduction`` as :func:`iou`. Always ``f1 = 2·iou / (1 + iou)``.
    """
    tp, fp, fn = _counts(pred, truth)
    total = 2 * tp + fp + fn
    return _reduce(torch.where(total > 0, 2 * tp / total.clamp(min=1), torch.ones_like(tp)), reduction)


#: the damage thresholds ``choose_threshold`` tries by default
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def choose_threshold(prob: torch.Tensor, truth: torch.Tensor, thresholds=THRESHOLDS) -> tuple[float, dict]:
    """The damage threshold τ with the best mean IoU of ``prob >= τ`` against ``truth``: ``(τ, {τ: IoU})``.

    Choose it on *validation* data (never on the images you then report), as a paper must. ``prob``: ``(B, 1, H, W)``
    damage probabilities in [0, 1]; ``truth``: bool of the same shape, True = damaged. Ties go to the lower τ.
    """
    table = {float(t): iou(prob >= t, truth).item() for t in thresholds}
    return max(table, key=lambda t: (table[t], -t)), table
