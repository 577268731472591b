"""Classical inpainting, the references every learned method is compared with.

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
            out.append(torch.where(m.bool().cpu(), img.cpu(), filled.to(img.dtype)))
        result = torch.stack(out).to(image.device)
        return result[0] if single else result
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


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


METHODS = {"Telea": telea, "Navier-Stokes": navier_stokes, "biharmonic": biharmonic}


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
