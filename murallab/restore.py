"""Full-resolution restoration of murals of any size, tile by tile: ``restore``, ``detect``, ``restore_blind``,
and the ``murallab restore`` / ``murallab detect`` commands.

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
compare tiled and whole-image results exactly.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ._device import device as pick_device
from .data.io import IMAGE_SUFFIXES, load_image, load_mask, save_image, save_mask
from .data.masks import check_mask, composite, hole_ratio
from .nn import DualDecoderUNet

__all__ = ["tile_windows", "tiled", "restore", "detect", "restore_blind", "restore_command", "detect_command"]

#: a progress bar is shown (when asked for) only above this many tiles
PROGRESS_MIN_TILES = 4
#: hole ratio above which a mask is taken to be in the opposite convention (check_mask's default)
MAX_HOLE_RATIO = 0.6


# --- tiling --------------------------------------------------------------------------------------------------------

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


# --- restoration ---------------------------------------------------------------------------------------------------

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


def restore(model: nn.Module, image: torch.Tensor, mask: torch.Tensor, *, tile: int = 256, overlap: int = 32,
            batch_size: int = 4, device=None, max_hole_ratio: float = MAX_HOLE_RATIO,
            progress: bool = False) -> torch.Tensor:
    """Restore the holes of a mural of any size with a mask-guided network (``PConvUNet``, ``UNet``).

    Args:
        model: ``model(image, mask) -> prediction`` on ``(B, 3, h, w)`` / ``(B, 1, h, w)`` batches.
        image: ``(3, H, W)`` float in [0, 1]; hole pixels may hold anything in [0, 1] (they are not read).
        mask: ``(1, H, W)``, binary, **1 = known, 0 = hole**; same H×W as the image.
        tile, overlap, batch_size: tiling (see ``tiled``); peak model memory grows with ``batch_size · tile²``.
        device: where the model runs (default: where its parameters are; otherwise the model is moved there).
        max_hole_ratio: a mask with more holes than this is rejected as probably inverted (see ``check_mask``).
        progress: a tqdm bar on stderr when there are many tiles.
    Returns:
        ``(3, H, W)`` on the image's device and in its dtype: ``mask · image + (1 - mask) · prediction``, with the
        blended prediction clamped to [0, 1]. Known pixels are the input's, bit for bit.

    Tiles without a hole pixel are not run through the network: their output would only reach known pixels.
    """
    if isinstance(model, DualDecoderUNet):
        raise TypeError("a DualDecoderUNet finds the damage itself and takes no mask: use restore_blind(model, "
                        "image) (or detect(model, image) for the damage map alone)")
    _check_image(image)
    check_mask(mask, image, max_hole_ratio=max_hole_ratio)
    known = mask.to(image.device).bool()
    dtype = _dtype(model)

    def predict(batch: torch.Tensor) -> torch.Tensor:  # (B, 4, h, w) image and mask -> (B, 3, h, w)
        img, m = batch[:, :3], batch[:, 3:]
        out = img.clone()
        holes = (m == 0).flatten(1).any(1)
        if bool(holes.any()):
            out[holes] = model(img[holes].to(dtype), m[holes].to(dtype)).to(out.dtype)
        return out

    with _inference(model, device) as dev:
        pred = tiled(predict, torch.cat([image, known.to(image.dtype)]), tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc="restore")
    return composite(image, known, pred.clamp_(0, 1))


def _check_blind(model: nn.Module, what: str) -> None:
    if not isinstance(model, DualDecoderUNet):
        raise TypeError(f"{what} needs a DualDecoderUNet (it predicts the damage itself); "
                        f"got a {type(model).__name__}, which needs a mask: use restore(model, image, mask)")


def _blind_outputs(model, image, *, tile, overlap, batch_size, device, progress, what, desc) -> torch.Tensor:
    """Tiled ``DualDecoderUNet`` outputs: ``(4, H, W)``, the image (3 channels) and the damage probability."""
    _check_blind(model, what)
    _check_image(image)
    dtype = _dtype(model)
    with _inference(model, device) as dev:
        return tiled(lambda b: torch.cat(model(b.to(dtype)), dim=1), image, tile=tile, overlap=overlap,
                     batch_size=batch_size, device=dev, progress=progress, desc=desc)


def detect(model: nn.Module, image: torch.Tensor, *, tile: int = 256, overlap: int = 32, batch_size: int = 4,
           device=None, progress: bool = False) -> torch.Tensor:
    """The damage probability of a mural of any size, from a ``DualDecoderUNet``: ``(1, H, W)`` in [0, 1],
    **1 = damaged** (the opposite of a mask; ``(prob < threshold)`` is the mask of known pixels).

    ``image`` is ``(3, H, W)`` float in [0, 1]; tiling and ``device`` as in ``restore``.
    """
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="detect", desc="detect")
    return out[3:].clamp(0, 1)  # a convex blend of probabilities; the clamp only removes rounding


def restore_blind(model: nn.Module, image: torch.Tensor, *, threshold: float = 0.1, tile: int = 256,
                  overlap: int = 32, batch_size: int = 4, device=None,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Detect the damage and restore it, with a ``DualDecoderUNet`` and no mask.

    Returns ``(restored, mask)``: ``restored`` is ``(3, H, W)``, the input wherever the predicted damage
    probability is below ``threshold`` and the network's image elsewhere (``DualDecoderUNet.composite``);
    ``mask`` is ``(1, H, W)`` float, 1 = known (kept), 0 = restored. One tiled pass gives both outputs.
    """
    if not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"threshold must be a damage probability in [0, 1], got {threshold!r}")
    out = _blind_outputs(model, image, tile=tile, overlap=overlap, batch_size=batch_size, device=device,
                         progress=progress, what="restore_blind", desc="restore")
    restored, damage = out[:3].clamp(0, 1), out[3:]
    known = damage < threshold
    return DualDecoderUNet.composite(image, restored, damage, threshold), known.to(image.dtype)


# --- the command line ----------------------------------------------------------------------------------------------

class _UserError(Exception):
    """A problem with what the user gave the command: printed as one line, exit status 2."""


LOSSLESS_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def _run(command: str, body: Callable, args) -> int:
    try:
        body(args)
    except _UserError as e:
        print(f"murallab {command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    return 0


def _check_args(args, *, output_suffixes, what) -> torch.device:
    """Tiling, output path and device: checked before anything is loaded."""
    try:
        check_tiling(args.tile, args.overlap)
    except ValueError as e:
        raise _UserError(f"--tile {args.tile} --overlap {args.overlap}: {e}") from None
    out = Path(args.output)
    if out.suffix.lower() not in output_suffixes:
        raise _UserError(f"cannot tell the format of --output {out}: {what}, e.g. {out.with_suffix('.png')}")
    if out.resolve() == Path(args.image).resolve():
        raise _UserError(f"--output {out} is the input image; write the result to a new file")
    if not 0.0 <= args.threshold <= 1.0:
        raise _UserError(f"--threshold is a damage probability in [0, 1], got {args.threshold}")
    try:
        return pick_device(args.device)
    except RuntimeError as e:
        raise _UserError(str(e)) from None


def _load_model(path, device, *, blind: bool, instead: str) -> nn.Module:
    """The checkpoint's network, checked to be the kind the command needs (``blind``: a DualDecoderUNet)."""
    from .train.checkpoint import load_model  # the training package is only needed by the commands

    try:
        model, _ = load_model(path, device)
    except FileNotFoundError as e:
        raise _UserError(f"{e} (give the .pt file written by murallab train)") from None
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        # ValueError: load_checkpoint's own message, or an unknown network; the others come from a file torch reads
        # as something else, or from a state_dict that does not fit the network the config names.
        msg = _one_line(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {_one_line(e)}"
        raise _UserError(msg if str(path) in msg else f"cannot load the checkpoint {path}: it is not a murallab "
                                                      f"checkpoint, or its weights do not fit the network its "
                                                      f"config names ({msg})") from None
    if isinstance(model, DualDecoderUNet) != blind:
        kind = type(model).__name__
        raise _UserError(f"the checkpoint {path} holds a {kind}; {instead}")
    return model


def _load_image(path) -> torch.Tensor:
    try:
        return load_image(path)
    except (FileNotFoundError, ValueError) as e:
        raise _UserError(str(e)) from None


def _save(save, tensor, path) -> None:
    try:
        save(tensor, path)
    except OSError as e:
        raise _UserError(f"cannot write {path}: {e}") from None


def _tiles(image, tile, overlap) -> int:
    h, w = image.shape[-2:]
    return len(tile_windows(h, tile, overlap)[0]) * len(tile_windows(w, tile, overlap)[0])


def _out_of_memory(tile) -> _UserError:
    return _UserError(f"out of memory with --tile {tile}; try a smaller --tile (peak memory grows with its square)")


def _restore_main(args) -> None:
    if args.blind and args.mask is not None:
        raise _UserError("--blind detects the damage itself; drop --mask (or drop --blind to use your mask)")
    if not args.blind:
        if args.mask is None:
            raise _UserError("give the damage mask with --mask MASK --mask-hole-value 0|255, or use --blind with "
                             "a DualDecoderUNet checkpoint to detect the damage")
        if args.mask_hole_value is None:
            raise _UserError("--mask-hole-value is required with --mask: 0 if black = hole (DLCV, murallab's own "
                             "masks), 255 if white = hole (OpenCV, scikit-image, LaMa). murallab reads masks as "
                             "1 = known, 0 = hole")
    device = _check_args(args, output_suffixes=IMAGE_SUFFIXES,
                         what=f"give it one of the suffixes {', '.join(IMAGE_SUFFIXES)}")
    if args.blind:
        instead = ("--blind needs a DualDecoderUNet checkpoint (it detects the damage itself); this network "
                   "needs a mask: drop --blind and give --mask MASK --mask-hole-value 0|255")
    else:
        instead = ("a blind-restoration network that finds the damage itself and takes no mask: use --blind "
                   "(without --mask), or a PConvUNet / UNet checkpoint to restore with your mask")
    model = _load_model(args.checkpoint, device, blind=args.blind, instead=instead)
    image = _load_image(args.image)
    h, w = image.shape[-2:]

    if not args.blind:
        try:
            mask = load_mask(args.mask, hole_value=args.mask_hole_value)
        except (FileNotFoundError, ValueError) as e:
            raise _UserError(str(e)) from None
        if mask.shape[-2:] != image.shape[-2:]:
            raise _UserError(f"the mask {args.mask} is {mask.shape[-1]}×{mask.shape[-2]} but the image {args.image} "
                             f"is {w}×{h} (W×H): a mask must have exactly its image's size")
        ratio = float(hole_ratio(mask))
        if ratio > MAX_HOLE_RATIO:
            hole, other = ("black", 255) if args.mask_hole_value == 0 else ("white", 0)
            raise _UserError(f"read with --mask-hole-value {args.mask_hole_value} ({hole} = hole), the mask "
                             f"{args.mask} marks {ratio:.0%} of the pixels as holes: it is most likely in the "
                             f"other convention; try --mask-hole-value {other}")

    start = time.perf_counter()
    try:
        if args.blind:
            restored, mask = restore_blind(model, image, threshold=args.threshold, tile=args.tile,
                                           overlap=args.overlap, progress=True)
        else:
            restored = restore(model, image, mask, tile=args.tile, overlap=args.overlap, progress=True)
    except torch.OutOfMemoryError:
        raise _out_of_memory(args.tile) from None
    seconds = time.perf_counter() - start
    _save(save_image, restored, args.output)
    source = f"detected, threshold {args.threshold}" if args.blind else f"from {args.mask}"
    print(f"restored {w}×{h} image: {float(hole_ratio(mask)):.1%} holes ({source}), "
          f"{_tiles(image, args.tile, args.overlap)} tiles of {args.tile} px, {seconds:.1f} s -> {args.output}")


def _detect_main(args) -> None:
    device = _check_args(args, output_suffixes=LOSSLESS_SUFFIXES,
                         what=f"a mask must be stored losslessly: use {', '.join(LOSSLESS_SUFFIXES)}")
    model = _load_model(args.checkpoint, device, blind=True,
                        instead="detect needs a DualDecoderUNet checkpoint (the blind-restoration network with a "
                                "damage decoder); with this network restore with a known mask instead: "
                                "murallab restore IMAGE --mask MASK --mask-hole-value 0|255")
    image = _load_image(args.image)
    h, w = image.shape[-2:]
    start = time.perf_counter()
    try:
        damage = detect(model, image, tile=args.tile, overlap=args.overlap, progress=True)
    except torch.OutOfMemoryError:
        raise _out_of_memory(args.tile) from None
    seconds = time.perf_counter() - start
    known = (damage < args.threshold).float()
    _save(save_mask, known, args.output)
    print(f"detected {float(hole_ratio(known)):.1%} damaged pixels in a {w}×{h} image (threshold {args.threshold}), "
          f"{_tiles(image, args.tile, args.overlap)} tiles of {args.tile} px, {seconds:.1f} s -> {args.output} "
          f"(white = known, black = damaged)")


def restore_command(args) -> int:
    """``murallab restore``: returns the exit status (0, or 2 after a one-line error on stderr)."""
    return _run("restore", _restore_main, args)


def detect_command(args) -> int:
    """``murallab detect``: returns the exit status (0, or 2 after a one-line error on stderr)."""
    return _run("detect", _detect_main, args)
