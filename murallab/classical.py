"""Classical inpainting, the references every learned method is compared with.

- ``push_pull``: the pyramid fill of Gortler et al. 1996 (The Lumigraph), in torch: batched, differentiable, on any
  device, and the starting point that ``PConvUNet(refine=True)`` and ``UNet(refine=True)`` learn to correct;
- ``telea``: OpenCV's fast-marching method (Telea 2004);
- ``navier_stokes``: OpenCV's fluid-dynamics method (Bertalmio et al. 2001);
- ``biharmonic``: scikit-image's biharmonic inpainting (smooth, slow on large holes).

Each takes murallab tensors (images ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1]; masks ``(1, H, W)`` or
``(B, 1, H, W)`` with 1 = known) and converts to the library's own convention inside: OpenCV wants an 8-bit mask
with 255 = hole, scikit-image a boolean mask with True = hole. Known pixels are returned unchanged. OpenCV works on
8-bit images, so its fill is quantised to 1/255. OpenCV and scikit-image are optional: a missing one raises an
ImportError that says what to install.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data.masks import composite


def _batched(fn):
    def run(image: torch.Tensor, mask: torch.Tensor, **kw) -> torch.Tensor:
        single = image.dim() == 3
        images, masks = (image[None], mask[None]) if single else (image, mask)
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:] or masks.shape[1] != 1:
            raise ValueError(f"mask {tuple(mask.shape)} does not fit image {tuple(image.shape)}: expected "
                             f"(B, 1, H, W) with 1 = known")
        out = []
        for img, m in zip(images, masks):
            rgb = img.detach().cpu().permute(1, 2, 0).double().numpy()
            hole = m[0].detach().cpu().numpy() < 0.5
            filled = torch.from_numpy(np.asarray(fn(rgb, hole, **kw), dtype=np.float64)).permute(2, 0, 1)
            out.append(composite(img.cpu(), m.cpu(), filled.to(img.dtype)))
        result = torch.stack(out).to(image.device)
        return result[0] if single else result
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


def push_pull(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the holes from a mask-weighted image pyramid ("push-pull", Gortler et al. 1996).

    Push: halve the image again and again, each pixel the mask-weighted mean of its 2×2 block, with weight
    ``w' = min(1, sum of the 4 weights)``, until no weight is below 1:

        x'  = sum(w ⊙ x) / sum(w),      w' = min(1, sum(w))

    Pull: from the coarsest level back up, ``x ← w ⊙ x + (1 - w) ⊙ upsample(x')`` (bilinear). Known pixels
    (``w = 1``) keep their value exactly; a hole takes the smooth average of the known pixels around it, over a
    radius that grows with the hole. No learning, O(HW), and it beats OpenCV Telea on mural patches
    (BENCHMARKS.md).

    Shapes: image ``(B, C, H, W)`` or ``(C, H, W)``, any range; mask ``(B, 1, H, W)`` or ``(1, H, W)``, 1 = known.
    Returns the filled image, same shape and dtype. An all-hole image comes back as zeros.
    """
    if mask.dim() != image.dim() or mask.shape[-3] != 1 or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} does not fit image {tuple(image.shape)}: expected "
                         f"(B, 1, H, W) with 1 = known")
    single = image.dim() == 3
    x, w = (image[None], mask[None]) if single else (image, mask)
    w = w.to(x.dtype)
    x = x * w
    levels = []
    # push; the early stop reads values, so a compiled graph pushes to 1 px (levels with w = 1 change nothing)
    while min(x.shape[-2:]) > 1 and (torch.compiler.is_compiling() or bool((w < 1).any())):
        levels.append((x, w))
        total = F.avg_pool2d(w, 2, ceil_mode=True) * 4
        x = F.avg_pool2d(x * w, 2, ceil_mode=True) * 4 / total.clamp_min(1e-12)
        w = total.clamp(max=1)
    for fine, fine_w in reversed(levels):  # pull
        x = fine_w * fine + (1 - fine_w) * F.interpolate(x, size=fine.shape[-2:], mode="bilinear", align_corners=False)
    return x[0] if single else x


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("OpenCV is needed for this reference: pip install opencv-python-headless") from e
    return cv2


def _opencv(rgb: np.ndarray, hole: np.ndarray, flag_name: str, radius: int) -> np.ndarray:
    cv2 = _cv2()
    u8 = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    return cv2.inpaint(u8, hole.astype(np.uint8) * 255, radius, getattr(cv2, flag_name)) / 255.0  # 255 = hole


@_batched
def telea(rgb: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV Telea inpainting: ``telea(image, mask, radius=3)``, shapes as the module docstring."""
    return _opencv(rgb, hole, "INPAINT_TELEA", radius)


@_batched
def navier_stokes(rgb: np.ndarray, hole: np.ndarray, radius: int = 3) -> np.ndarray:
    """OpenCV Navier-Stokes inpainting: ``navier_stokes(image, mask, radius=3)``."""
    return _opencv(rgb, hole, "INPAINT_NS", radius)


@_batched
def biharmonic(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """scikit-image biharmonic inpainting: ``biharmonic(image, mask)``."""
    try:
        from skimage.restoration import inpaint_biharmonic
    except ImportError as e:
        raise ImportError("scikit-image is needed for this reference: pip install scikit-image") from e
    return inpaint_biharmonic(rgb, hole, channel_axis=-1)


METHODS = {"push-pull": push_pull, "Telea": telea, "Navier-Stokes": navier_stokes, "biharmonic": biharmonic}


def available() -> dict:
    """The classical methods whose library is installed, by display name."""
    out = {}
    for name, fn in METHODS.items():
        try:
            fn(torch.zeros(3, 8, 8), torch.ones(1, 8, 8))
            out[name] = fn
        except ImportError:
            pass
    return out
