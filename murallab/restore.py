"""Full-resolution restoration of murals of any size, tile by tile (``murallab.tiling``): one
``restore(model, image, mask=None, **sampling)`` for every kind of network, and ``detect`` for a damage map.

A network says which kind it is in its ``task`` attribute (``murallab.models``):

- ``"guided"``: ``model(image, mask) -> prediction``; ``restore`` needs the mask;
- ``"blind"``: ``model(image) -> (image, damage_probability)``; no mask: the damage is where the probability reaches
  the network's own ``threshold`` (it travels with the weights);
- ``"diffusion"``: ``model.sample(image, mask, **sampling)`` on tiles of the size it was trained at.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ._device import device as pick_device
from .data.io import warn_if_greyscale
from .data.masks import MAX_HOLE_RATIO, check_mask, composite
from .tiling import check_tiling, tiled

__all__ = ["restore", "detect", "task_of", "default_tiling", "MAX_HOLE_RATIO", "TASKS"]

#: what a network's ``task`` may say
TASKS = ("guided", "blind", "diffusion")


def task_of(model: nn.Module) -> str:
    """The network's ``task`` ("guided", "blind" or "diffusion"); a module without one is taken as mask-guided."""
    task = getattr(model, "task", "guided")
    if task not in TASKS:
        raise ValueError(f"{type(model).__name__}.task is {task!r}; expected one of {', '.join(TASKS)}")
    return task


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


def _float32(model: nn.Module) -> nn.Module:
    """The model itself if its floating-point weights are float32, else a float32 copy: the shipped files are fp16,
    and not every layer runs in half precision (on a CPU, or the Fourier units, which compute in float32)."""
    if all(p.dtype == torch.float32 for p in model.parameters() if p.is_floating_point()):
        return model
    return copy.deepcopy(model).float()


def default_tiling(model: nn.Module, tile: int | None = None, overlap: int | None = None) -> tuple[int, int]:
    """``(tile, overlap)`` with the defaults filled in: 256 and 32 for the U-Nets (a quarter of a tile under 128 px);
    a diffusion model's own size (``model.size``) and a quarter of it, since it samples patches of the size it was
    trained at. ``ValueError`` for a tiling :func:`~murallab.tiling.check_tiling` refuses, or a tile larger than a
    multi-scale model's finest scale."""
    size = getattr(model, "size", None)
    tile = tile if tile is not None else size or 256
    overlap = overlap if overlap is not None else (tile // 4 if size or tile < 128 else 32)
    scales = getattr(model, "scales", [])
    if len(scales) > 1 and tile > scales[-1]:
        raise ValueError(f"tile {tile}: this multi-scale diffusion model samples tiles of at most {scales[-1]} px "
                         f"(its finest scale)")
    check_tiling(tile, overlap)
    return tile, overlap


def restore(model: nn.Module, image: torch.Tensor, mask: torch.Tensor | None = None, *, tile: int | None = None,
            overlap: int | None = None, batch_size: int = 4, device=None, max_hole_ratio: float = MAX_HOLE_RATIO,
            threshold: float | None = None, progress: bool = False, return_mask: bool = False, **sampling):
    """Restore the holes of a mural of any size with any murallab network: mask-guided (``PConvUNet``, ``UNet``,
    ``FFCUNet``), blind (``DualDecoderUNet``, ``mask=None``) or diffusion (``DiffusionRestorer``).

    Args:
        model: a network whose ``task`` is "guided", "blind" or "diffusion" (module docstring); any precision
            (a half-precision model runs as a float32 copy).
        image: ``(3, H, W)`` float in [0, 1]; hole pixels may hold anything in [0, 1] (they are not read).
        mask: ``(1, H, W)``, binary, **1 = known, 0 = hole**, same H×W as the image; None for a blind network,
            which detects the damage itself.
        tile, overlap, batch_size: tiling (see ``tiled``; defaults from :func:`default_tiling`); peak model memory
            grows with ``batch_size · tile²``.
        device: where the model runs (default: where its parameters are; otherwise the model is moved there).
        max_hole_ratio: a mask with more holes than this is rejected as probably inverted (see ``check_mask``).
        threshold: a blind network's threshold on P(damage) (default: its own ``model.threshold``).
        progress: a tqdm bar on stderr when there are many tiles.
        return_mask: also return the mask used (the one given, or the one detected).
        sampling: a diffusion model's ``sample`` arguments (``sampler``, ``steps``, ``eta``, ``seed``, ...); every
            tile is sampled with the same seed, so a run repeats exactly.
    Returns:
        ``(3, H, W)`` on the image's device and in its dtype: ``mask · image + (1 - mask) · prediction``, the
        prediction clamped to [0, 1], known pixels the input's bit for bit; with ``return_mask``, ``(restored,
        mask)``, the mask ``(1, H, W)`` float, 1 = known.

    Tiles without a hole pixel are not run through the network: their output would only reach known pixels.
    """
    task = task_of(model)
    if task == "blind":
        if mask is not None:
            raise TypeError(f"a {type(model).__name__} finds the damage itself: call restore(model, image) without a "
                            f"mask (or use a mask-guided network with your mask)")
        if sampling:
            raise TypeError(f"{', '.join(sampling)}: sampling arguments are for a diffusion model; a "
                            f"{type(model).__name__} restores in one pass")
        return _restore_blind(model, image, threshold=threshold, tile=tile, overlap=overlap, batch_size=batch_size,
                              device=device, progress=progress, return_mask=return_mask)
    if threshold is not None:
        raise TypeError(f"threshold= is for a blind network; a {type(model).__name__} is told the damage by its mask")
    if mask is None:
        raise TypeError(f"a {type(model).__name__} restores the holes of a mask: call restore(model, image, mask) "
                        f"(1 = known, 0 = hole), or use a blind network such as pretrained:detector")
    _check_image(image)
    check_mask(mask, image, max_hole_ratio=max_hole_ratio)
    if sampling and task != "diffusion":
        raise TypeError(f"{', '.join(sampling)}: sampling arguments are for a diffusion model; a "
                        f"{type(model).__name__} restores in one pass")
    tile, overlap = default_tiling(model, tile, overlap)
    known = mask.to(image.device).bool()
    net = _float32(model)
    run = (lambda img, m: net.sample(img, m, **sampling)) if task == "diffusion" else net

    def predict(batch: torch.Tensor) -> torch.Tensor:  # (B, 4, h, w) image and mask -> (B, 3, h, w)
        img, m = batch[:, :3], batch[:, 3:]
        out = img.clone()
        holes = (m == 0).flatten(1).any(1)
        if bool(holes.any()):
            out[holes] = run(img[holes].float(), m[holes].float()).to(out.dtype)
        return out

    with _inference(net, device) as dev:
        pred = tiled(predict, torch.cat([image, known.to(image.dtype)]), tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc="restore")
    restored = composite(image, known, pred.clamp_(0, 1))
    return (restored, known.to(image.dtype)) if return_mask else restored


def _blind_outputs(model, image, *, tile, overlap, batch_size, device, progress, what, desc) -> torch.Tensor:
    """Tiled blind-network outputs: ``(4, H, W)``, the image (3 channels) and the damage probability."""
    if task_of(model) != "blind":
        raise TypeError(f"{what} needs a blind network such as DualDecoderUNet (it predicts the damage itself); "
                        f"got a {type(model).__name__}, which needs a mask: use restore(model, image, mask)")
    _check_image(image)
    warn_if_greyscale(image)
    net = _float32(model)
    with _inference(net, device) as dev:
        return tiled(lambda b: torch.cat(net(b.float()), dim=1), image, tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc=desc)


def detect(model: nn.Module, image: torch.Tensor, *, tile: int | None = None, overlap: int | None = None,
           batch_size: int = 4, device=None, progress: bool = False) -> torch.Tensor:
    """The damage probability of a mural of any size, from a blind network (``DualDecoderUNet``): ``(1, H, W)`` in
    [0, 1], **1 = damaged** (the opposite of a mask; ``(prob < threshold)`` is the mask of known pixels).

    ``image`` is ``(3, H, W)`` float in [0, 1]; tiling and ``device`` as in ``restore``.
    """
    tile, overlap = default_tiling(model, tile, overlap)
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="detect", desc="detect")
    return out[3:].clamp(0, 1)  # a convex blend of probabilities; the clamp only removes rounding


def _restore_blind(model, image, *, threshold, tile, overlap, batch_size, device, progress, return_mask):
    """``restore`` with a blind network: the input wherever the predicted damage probability is below
    ``threshold`` (default ``model.threshold``), the network's image elsewhere. One tiled pass gives both."""
    threshold = getattr(model, "threshold", None) if threshold is None else threshold
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a damage probability in [0, 1], got {threshold!r}")
    tile, overlap = default_tiling(model, tile, overlap)
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="restore without a mask", desc="restore")
    restored, damage = out[:3].clamp(0, 1), out[3:]
    known = damage < threshold
    restored = composite(image, known, restored)
    return (restored, known.to(image.dtype)) if return_mask else restored
