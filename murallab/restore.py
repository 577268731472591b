"""Full-resolution restoration of murals of any size, tile by tile (``murallab.tiling``): ``restore`` with a known
mask, ``detect`` and ``restore_blind`` with a network that finds the damage itself.

Networks say which kind they are with a ``blind`` attribute (``murallab.nn``): a mask-guided network is called
``model(image, mask)``, a blind one ``model(image) -> (image, damage_probability)``. A diffusion model
(``murallab.diffusion.DiffusionRestorer``) restores by sampling: ``model.sample(image, mask, **sampling)``, on tiles
of the size it was trained at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ._device import device as pick_device
from .data.io import warn_if_greyscale
from .data.masks import check_mask, composite
from .metrics import DAMAGE_THRESHOLD
from .tiling import tiled

__all__ = ["restore", "detect", "restore_blind", "is_blind", "default_tiling", "MAX_HOLE_RATIO"]

#: hole ratio above which a mask is taken to be in the opposite convention (check_mask's default)
MAX_HOLE_RATIO = 0.6


def is_blind(model: nn.Module) -> bool:
    """True for a network that finds the damage itself (``model.blind``); any other module is mask-guided."""
    return bool(getattr(model, "blind", False))


def _check_image(image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be one (3, H, W) image, got shape {tuple(image.shape)}; restore a batch "
                         f"one image at a time")
    if not image.is_floating_point():
        raise ValueError(f"image must be a float tensor in [0, 1], got {image.dtype} (for uint8 use image / 255)")
    if image.numel() == 0:
        raise ValueError(f"image is empty: {tuple(image.shape)}")
    lo, hi = float(image.min()), float(image.max())
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"image values must be in [0, 1], found [{lo:.3g}, {hi:.3g}]")


@contextmanager
def _inference(model: nn.Module, device) -> Iterator[torch.device]:
    """Eval mode and no gradients for the duration; yields the compute device. ``device=None`` uses the model's
    device; an explicit device moves the model there. The model's train/eval mode is restored afterwards."""
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    else:
        device = pick_device(device)
        model.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield device
    finally:
        model.train(was_training)


def _dtype(model: nn.Module) -> torch.dtype:
    p = next(model.parameters(), None)
    return p.dtype if p is not None else torch.float32


def default_tiling(model: nn.Module, tile: int | None = None, overlap: int | None = None) -> tuple[int, int]:
    """``(tile, overlap)`` with the defaults filled in: 256 and 32 for the U-Nets; a diffusion model's own size
    (``model.size``) and a quarter of it, since it samples patches of the size it was trained at."""
    size = getattr(model, "size", None)
    tile = tile if tile is not None else size or 256
    return tile, overlap if overlap is not None else (tile // 4 if size else 32)


def restore(model: nn.Module, image: torch.Tensor, mask: torch.Tensor, *, tile: int | None = None,
            overlap: int | None = None, batch_size: int = 4, device=None, max_hole_ratio: float = MAX_HOLE_RATIO,
            progress: bool = False, sampling: dict | None = None) -> torch.Tensor:
    """Restore the holes of a mural of any size with a mask-guided network (``PConvUNet``, ``UNet``, ``FFCUNet``)
    or a diffusion model (``DiffusionRestorer``).

    Args:
        model: ``model(image, mask) -> prediction`` on ``(B, 3, h, w)`` / ``(B, 1, h, w)`` batches, or a model with
            ``sample(image, mask, **sampling)``.
        image: ``(3, H, W)`` float in [0, 1]; hole pixels may hold anything in [0, 1] (they are not read).
        mask: ``(1, H, W)``, binary, **1 = known, 0 = hole**; same H×W as the image.
        tile, overlap, batch_size: tiling (see ``tiled``; defaults from :func:`default_tiling`); peak model memory
            grows with ``batch_size · tile²``.
        device: where the model runs (default: where its parameters are; otherwise the model is moved there).
        max_hole_ratio: a mask with more holes than this is rejected as probably inverted (see ``check_mask``).
        progress: a tqdm bar on stderr when there are many tiles.
        sampling: a diffusion model's ``sample`` arguments (``sampler``, ``steps``, ``eta``, ``seed``); every tile
            is sampled with the same seed, so a run repeats exactly.
    Returns:
        ``(3, H, W)`` on the image's device and in its dtype: ``mask · image + (1 - mask) · prediction``, with the
        blended prediction clamped to [0, 1]. Known pixels are the input's, bit for bit.

    Tiles without a hole pixel are not run through the network: their output would only reach known pixels.
    """
    if is_blind(model):
        raise TypeError(f"a {type(model).__name__} finds the damage itself and takes no mask: use "
                        f"restore_blind(model, image) (or detect(model, image) for the damage map alone)")
    _check_image(image)
    check_mask(mask, image, max_hole_ratio=max_hole_ratio)
    if sampling and not hasattr(model, "sample"):
        raise TypeError(f"sampling= is for a diffusion model; a {type(model).__name__} restores in one pass")
    tile, overlap = default_tiling(model, tile, overlap)
    known = mask.to(image.device).bool()
    dtype = _dtype(model)
    run = (lambda img, m: model.sample(img, m, **(sampling or {}))) if hasattr(model, "sample") else model

    def predict(batch: torch.Tensor) -> torch.Tensor:  # (B, 4, h, w) image and mask -> (B, 3, h, w)
        img, m = batch[:, :3], batch[:, 3:]
        out = img.clone()
        holes = (m == 0).flatten(1).any(1)
        if bool(holes.any()):
            out[holes] = run(img[holes].to(dtype), m[holes].to(dtype)).to(out.dtype)
        return out

    with _inference(model, device) as dev:
        pred = tiled(predict, torch.cat([image, known.to(image.dtype)]), tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc="restore")
    return composite(image, known, pred.clamp_(0, 1))


def _blind_outputs(model, image, *, tile, overlap, batch_size, device, progress, what, desc) -> torch.Tensor:
    """Tiled blind-network outputs: ``(4, H, W)``, the image (3 channels) and the damage probability."""
    if not is_blind(model):
        raise TypeError(f"{what} needs a blind network such as DualDecoderUNet (it predicts the damage itself); "
                        f"got a {type(model).__name__}, which needs a mask: use restore(model, image, mask)")
    _check_image(image)
    warn_if_greyscale(image)
    dtype = _dtype(model)
    with _inference(model, device) as dev:
        return tiled(lambda b: torch.cat(model(b.to(dtype)), dim=1), image, tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc=desc)


def detect(model: nn.Module, image: torch.Tensor, *, tile: int = 256, overlap: int = 32, batch_size: int = 4,
           device=None, progress: bool = False) -> torch.Tensor:
    """The damage probability of a mural of any size, from a blind network (``DualDecoderUNet``): ``(1, H, W)`` in
    [0, 1], **1 = damaged** (the opposite of a mask; ``(prob < threshold)`` is the mask of known pixels).

    ``image`` is ``(3, H, W)`` float in [0, 1]; tiling and ``device`` as in ``restore``.
    """
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="detect", desc="detect")
    return out[3:].clamp(0, 1)  # a convex blend of probabilities; the clamp only removes rounding


def restore_blind(model: nn.Module, image: torch.Tensor, *, threshold: float = DAMAGE_THRESHOLD, tile: int = 256,
                  overlap: int = 32, batch_size: int = 4, device=None,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Detect the damage and restore it, with a blind network (``DualDecoderUNet``) and no mask.

    Returns ``(restored, mask)``: ``restored`` is ``(3, H, W)``, the input wherever the predicted damage
    probability is below ``threshold`` and the network's image elsewhere;
    ``mask`` is ``(1, H, W)`` float, 1 = known (kept), 0 = restored. One tiled pass gives both outputs.
    """
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a damage probability in [0, 1], got {threshold!r}")
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="restore_blind", desc="restore")
    restored, damage = out[:3].clamp(0, 1), out[3:]
    known = damage < threshold
    return composite(image, known, restored), known.to(image.dtype)


