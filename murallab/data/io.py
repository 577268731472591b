"""Loading and saving images and masks.

Images come back as float32 ``(3, H, W)`` in [0, 1]; masks as float32 ``(1, H, W)`` with
**1 = known, 0 = hole**. Files disagree about masks, so ``load_mask`` makes you name the convention of
the file you read: ``hole_value=0`` (black = hole, white = valid: DLCV-2019 and murallab's own files) or
``hole_value=255`` (white = hole: OpenCV, scikit-image, LaMa). A 0/1 mask file (pixels 0 and 1 only) is
read with 1 as white; see ``load_mask``'s ``white_level``.

Both are read as a viewer shows them: a file's EXIF orientation tag (a phone photograph stored sideways) is
applied, so a mask drawn on the image as it appears on screen lands on the same pixels, and a saved result (which
carries no orientation tag) looks like its input.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .._atomic import atomic_path
from .masks import MAX_HOLE_RATIO, hole_ratio

__all__ = ["IMAGE_SUFFIXES", "image_from_pil", "load_image", "load_mask", "load_mask_for", "save_image", "save_mask",
           "list_images",
           "is_greyscale", "warn_if_greyscale"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


#: the raw modes in which Pillow decodes a 16-bit-per-channel PNG to 8 bits (their high bytes), and the raw modes that
#: give the low bytes of the same samples instead
_LOW_BYTES = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


def _open(path, *, low_bytes: bool = False) -> Image.Image:
    """The image in ``path``, loaded, in the orientation its EXIF tag gives (as viewers show it).

    ``low_bytes``: for a 16-bit RGB(A) PNG, the low byte of each sample instead of the high byte Pillow keeps."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    try:
        img = Image.open(path)
        if low_bytes:
            name, box, offset, rawmode = img.tile[0]
            img.tile = [(name, box, offset, _LOW_BYTES[rawmode])]
        img.load()
        return ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot read {path} as an image (corrupt or not an image file): {e}") from e


def _sixteen_bit_colour(path) -> bool:
    """Whether ``path`` is a PNG with 16 bits per colour channel (RGB or RGBA), which Pillow reads as 8-bit."""
    try:
        with Image.open(path) as img:
            return img.format == "PNG" and len(img.tile) == 1 and img.tile[0][3] in _LOW_BYTES
    except (UnidentifiedImageError, OSError, SyntaxError):
        return False  # _open says what is wrong with it


def _to_float(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 array in [0, 1]: (H, W) for single-band modes, (H, W, 3) otherwise."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit int) greyscale
        a = np.asarray(img, dtype=np.float32)
        return a / (65535.0 if a.max() > 255 or img.mode.startswith("I;16") else 255.0)
    if img.mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0, 1)
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels have no colour of their own: composite onto black (they carry no data).
        rgba = img.convert("RGBA")
        a = np.asarray(rgba, dtype=np.float32) / 255.0
        return a[..., :3] * a[..., 3:]
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def image_from_pil(img: Image.Image) -> torch.Tensor:
    """A PIL image as ``(3, H, W)`` float32 in [0, 1], as viewers show it (its EXIF orientation applied): RGB, RGBA
    (composited onto black), greyscale (repeated to 3 channels), 16-bit and palette images are handled."""
    a = _to_float(ImageOps.exif_transpose(img))
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous()


def load_image(path) -> torch.Tensor:
    """Read an image file as ``(3, H, W)`` float32 in [0, 1] (the conversions of :func:`image_from_pil`).

    A missing file raises ``FileNotFoundError``; a corrupt one ``ValueError``; both name the path.
    """
    return image_from_pil(_open(path))


def _mask_levels(path) -> tuple[np.ndarray, int]:
    """A mask file's pixel values as stored, ``(H, W)`` or ``(H, W, 3)``, and the white of its bit depth."""
    img = _open(path)
    if _sixteen_bit_colour(path):  # 48- or 64-bit PNG: both bytes of every sample
        a = np.asarray(img, dtype=np.float64) * 256 + np.asarray(_open(path, low_bytes=True), dtype=np.float64)
        if a.shape[2] == 4:  # transparent pixels carry no colour: onto black, as for 8-bit files
            a = a[..., :3] * a[..., 3:] / 65535.0
        return a, 65535
    if img.mode.startswith("I;16"):
        return np.asarray(img).astype(np.float64), 65535
    if img.mode == "I":  # 32-bit int (older Pillow opens 16-bit PNGs so): 16-bit scale only if it is used
        a = np.asarray(img).astype(np.float64)
        return a, (65535 if a.size and a.max() > 255 else 255)
    if img.mode in ("1", "L"):
        return np.asarray(img.convert("L")).astype(np.float64), 255
    if img.mode in ("RGB", "P") and "transparency" not in img.info:
        return np.asarray(img.convert("RGB")).astype(np.float64), 255
    return _to_float(img).astype(np.float64) * 255.0, 255  # float, alpha (composited onto black), CMYK, ...


def _detect_white(levels: np.ndarray, full: int) -> int:
    """The pixel value that means white: 1 for a 0/1 mask, 255 for 0/255 in a 16-bit file, else ``full``."""
    top = float(levels.max()) if levels.size else 0.0
    if top == 1 and np.isin(levels, (0, 1)).all():
        return 1
    if full == 65535 and top == 255 and np.isin(levels, (0, 255)).all():
        return 255
    return full


#: a mask pixel is in colour when its channels differ by more than this share of the full scale (a grey JPEG's
#: chroma noise stays far below it)
COLOUR_SPREAD = 0.25


def _refuse_colour(levels: np.ndarray, path) -> None:
    """``ValueError`` for a mask whose pixels are coloured rather than grey (``levels``: ``(H, W, 3)``)."""
    spread = levels.max(axis=2) - levels.min(axis=2)
    coloured = spread > COLOUR_SPREAD * max(float(levels.max()), 1.0)
    if coloured.any():
        y, x = np.argwhere(coloured)[0]
        rgb = tuple(int(v) for v in levels[y, x])
        raise ValueError(f"the mask {path} is in colour ({coloured.mean():.1%} of its pixels, e.g. RGB {rgb} at "
                         f"x={x}, y={y}): a mask file must be black and white: paint the holes black on white "
                         f"(hole value 0) or white on black (hole value 255)")


def load_mask(path, *, hole_value: int, threshold: int = 127, white_level: int | None = None) -> torch.Tensor:
    """Read a mask file as ``(1, H, W)`` float32 with 1 = known, 0 = hole.

    Args:
        hole_value: the file's convention, required: ``0`` if black marks holes (white = valid, as in the
            DLCV-2019 data and masks murallab saves), ``255`` if white marks holes (OpenCV, scikit-image,
            LaMa).
        threshold: grey level (0-255 scale) separating black from white; JPEG masks are grey at their
            edges and are binarised here. A mask in colour (green strokes on white, say) is refused with a
            ``ValueError``: read as grey, its strokes could be black or white, so it could mark no holes at all.
        white_level: the pixel value that means white in this file. ``None`` (default) detects it:

            - **0/1 masks**: a file whose every pixel is 0 or 1 (and some pixel is 1), as
              ``Image.fromarray(mask.astype(np.uint8))`` or ``cv2.imwrite(path, mask.astype(np.uint8))``
              write a boolean mask, at 8 or 16 bits, grey or RGB. Its 1 is white: with ``hole_value=0``,
              0 = hole and 1 = known; with ``hole_value=255``, 1 = hole and 0 = known.
            - **8-bit levels in a 16-bit file**: every pixel 0 or 255 in a 16-bit file; 255 is white.
            - otherwise the full scale of the file's bit depth: 255 (8-bit) or 65535 (16-bit).

            Read on their full scale, those two kinds of file would be entirely black: all holes with one
            ``hole_value`` and no holes with the other. A file that is all 0 stays all black. Pass
            ``white_level=255`` (or 65535) to read a file strictly on its bit depth's scale. The threshold
            scales with the white level (a pixel is white when ``value * 255 > threshold * white_level``).

    Bilevel (mode ``"1"``) files read as 0/255; palette files by their palette colours; 16-bit files (greyscale,
    RGB or RGBA) at their full depth.
    """
    if hole_value not in (0, 255):
        raise ValueError(f"hole_value must be 0 (black = hole) or 255 (white = hole), got {hole_value!r}")
    integer = isinstance(white_level, (int, np.integer)) and not isinstance(white_level, bool)
    if white_level is not None and not (integer and white_level > 0):
        raise ValueError(f"white_level must be a positive integer pixel value (e.g. 1, 255, 65535) or None to "
                         f"detect it, got {white_level!r}")
    levels, full = _mask_levels(path)
    if white_level is None:
        white_level = _detect_white(levels, full)
    if levels.ndim == 3:
        _refuse_colour(levels, path)
        levels = levels @ np.array([0.299, 0.587, 0.114])
    white = levels * 255.0 > threshold * white_level  # exact for integer levels
    known = ~white if hole_value == 255 else white
    return torch.from_numpy(known.astype(np.float32))[None]


def load_mask_for(path, image: torch.Tensor, *, hole_value: int, holes_needed: bool = True,
                  option: str = "--mask-hole-value") -> torch.Tensor:
    """:func:`load_mask` for ``image`` ``(3, H, W)``, checked as a mask file a person drew: ``(1, H, W)``, 1 = known.

    One-line ``ValueError`` naming the convention's ``option`` when the mask is not the image's size, is all one
    colour (no convention gives it a hole; with ``holes_needed=False`` no holes is allowed, all holes is not), or marks
    more than :data:`~murallab.data.masks.MAX_HOLE_RATIO` of the pixels as holes (most likely the other convention).
    """
    mask = load_mask(path, hole_value=hole_value)
    (h, w), (mh, mw) = image.shape[-2:], mask.shape[-2:]
    if (mh, mw) != (h, w):
        raise ValueError(f"the mask {path} is {mw}×{mh} but its image is {w}×{h} (W×H): a mask must have exactly its "
                         f"image's size")
    ratio = float(hole_ratio(mask))
    hole, other = ("black", 255) if hole_value == 0 else ("white", 0)
    if ratio == 1.0 or (ratio == 0.0 and holes_needed):  # all one colour: no convention gives it a hole
        colour = "black" if (ratio == 1.0) == (hole == "black") else "white"
        given, flipped = ("only", "no") if ratio else ("no", "only")
        raise ValueError(f"the mask {path} is all {colour}: it marks {given} holes with {option} {hole_value} and "
                         f"{flipped} holes with {other}, so there is nothing to restore; paint the damage on it, black "
                         f"on white ({option} 0) or white on black (255)")
    if ratio > MAX_HOLE_RATIO:  # the other convention holds the holes (1 - ratio of the pixels, more than none)
        raise ValueError(f"read with {option} {hole_value} ({hole} = hole), the mask {path} marks {ratio:.0%} of the "
                         f"pixels as holes: it is most likely in the other convention; try {option} {other}")
    return mask


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu().float()
    if not torch.isfinite(t).all():
        raise ValueError("cannot save an image with NaN or inf values")
    return (t.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()


def _save(img: Image.Image, path) -> None:
    """Write atomically (temp file + rename) so an interrupted run never leaves a half-written file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        img.save(tmp, format=Image.registered_extensions().get(path.suffix.lower()))


def save_image(image: torch.Tensor, path) -> None:
    """Write a ``(3, H, W)`` (or ``(1, H, W)``) image in [0, 1] as an 8-bit file (format from suffix)."""
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"save_image expects (3, H, W) or (1, H, W), got {tuple(image.shape)}")
    a = _to_uint8(image).transpose(1, 2, 0)
    _save(Image.fromarray(a[..., 0] if a.shape[2] == 1 else a), path)


def save_mask(mask: torch.Tensor, path, *, hole_value: int = 0) -> None:
    """Write a ``(1, H, W)`` mask (1 = known) as an 8-bit greyscale file, holes as ``hole_value``.

    The default writes white = valid, black = hole: the DLCV-2019 convention, read back with
    ``load_mask(path, hole_value=0)``. Use a lossless format (PNG): JPEG greys the edges.
    """
    if hole_value not in (0, 255):
        raise ValueError(f"hole_value must be 0 or 255, got {hole_value!r}")
    if mask.dim() != 3 or mask.shape[0] != 1:
        raise ValueError(f"save_mask expects (1, H, W), got {tuple(mask.shape)}")
    known = mask[0].detach().cpu() > 0.5
    white = known if hole_value == 0 else ~known
    _save(Image.fromarray(white.numpy().astype(np.uint8) * 255), path)


def list_images(folder) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def is_greyscale(image: torch.Tensor, tolerance: float = 4 / 255) -> bool:
    """Whether a ``(3, H, W)`` image is grey: its channels differ nowhere by more than ``tolerance`` (a greyscale
    JPEG saved as RGB differs by a level or two)."""
    return bool((image.amax(dim=-3) - image.amin(dim=-3)).max() <= tolerance)


def warn_if_greyscale(image: torch.Tensor) -> None:
    """Warn (``UserWarning``) that a damage detector trained on colour murals sees little damage in a grey image."""
    if image.shape[-3] == 3 and is_greyscale(image):
        warnings.warn("the image is greyscale: a damage detector learns from colour murals and finds little of the "
                      "damage in a grey photograph; give a colour photograph, or mark the damage with a mask",
                      UserWarning, stacklevel=4)  # the caller of restore or detect
