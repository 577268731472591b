"""Paired augmentation: the same flip and rotation on an image and its mask, and optional colour jitter of the image.

Built on ``torchvision.transforms.v2``: the image is wrapped as ``tv_tensors.Image`` and the mask as
``tv_tensors.Mask``, so the v2 kernels resample the image bilinearly and the mask with nearest
neighbour; the mask stays exactly binary.

Rotating a square leaves its corners without data. ``outside="reflect"`` (default) pads image and mask
by reflection before rotating and crops back afterwards, so every output pixel is real mural content
with a meaningful mask value (no black wedges for the network to learn). ``outside="hole"`` rotates
without padding and marks the empty corners as holes (mask 0, image 0), as in many inpainting repos;
their ground truth is then black, so exclude them from losses yourself.

Colour jitter (off by default) changes the image only, with torchvision's meaning of the four strengths: brightness,
contrast and saturation factors drawn from ``[1 - s, 1 + s]``, a hue shift from ``[-h, h]`` of a turn, applied in
that order. Murals differ in pigment, fading and photography; jitter keeps a network trained on one wall from
learning its palette.

Two more differences between photographs, also off by default and applied to the image only, after the jitter:
white balance (each channel's gain drawn from ``[1 - w, 1 + w]``, then divided by the three gains' mean so that
only the tint changes, not the exposure) and JPEG compression (quality drawn uniformly from ``jpeg = (low, high)``,
the camera's or the website's last step).
"""

from __future__ import annotations

import math

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

__all__ = ["PairedAugment"]


class PairedAugment:
    """Random horizontal flip and rotation, applied identically to ``image`` and ``mask``.

    Args:
        hflip_p: probability of a horizontal flip.
        rotate_degrees: rotation angle drawn uniformly from ``[-d, d]``.
        rotate_p: probability of rotating at all.
        outside: ``"reflect"`` or ``"hole"``: what fills pixels rotated in from outside (module docstring).
        interpolation: image resampling for rotation (the mask always uses nearest).
        brightness, contrast, saturation, hue: colour-jitter strengths (module docstring); 0 = off.
        white_balance: strength ``w`` of the per-channel gains (module docstring); 0 = off.
        jpeg: ``(low, high)`` JPEG quality range, 1-100; None = off.
        seed: seeds this augmenter's own ``torch.Generator``; a ``generator`` passed to ``__call__`` wins.

    Call:
        ``aug(image, mask, generator=None) -> (image, mask)`` with ``image`` ``(..., C, H, W)`` and
        ``mask`` ``(..., 1, H, W)``, 1 = known. Leading batch dimensions share one draw.
    """

    def __init__(self, hflip_p: float = 0.5, rotate_degrees: float = 30.0, rotate_p: float = 0.5, *,
                 outside: str = "reflect", interpolation=InterpolationMode.BILINEAR, brightness: float = 0.0,
                 contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0, white_balance: float = 0.0,
                 jpeg=None, seed=None):
        if outside not in ("reflect", "hole"):
            raise ValueError(f"outside must be 'reflect' or 'hole', got {outside!r}")
        if not (0 <= hflip_p <= 1 and 0 <= rotate_p <= 1):
            raise ValueError("hflip_p and rotate_p are probabilities in [0, 1]")
        if not 0 <= rotate_degrees <= 180:
            raise ValueError(f"rotate_degrees must be in [0, 180], got {rotate_degrees}")
        if not (0 <= brightness < 1 and 0 <= contrast < 1 and 0 <= saturation < 1 and 0 <= hue <= 0.5):
            raise ValueError("brightness, contrast and saturation must be in [0, 1) and hue in [0, 0.5], got "
                             f"{brightness}, {contrast}, {saturation}, {hue}")
        if not 0 <= white_balance < 1:
            raise ValueError(f"white_balance must be in [0, 1), got {white_balance}")
        if jpeg is not None and not (len(jpeg) == 2 and 1 <= jpeg[0] <= jpeg[1] <= 100):
            raise ValueError(f"jpeg must be a (low, high) quality range with 1 <= low <= high <= 100, got {jpeg}")
        self.white_balance, self.jpeg = white_balance, None if jpeg is None else (int(jpeg[0]), int(jpeg[1]))
        self.jitter = {"brightness": brightness, "contrast": contrast, "saturation": saturation, "hue": hue}
        self.hflip_p, self.rotate_degrees, self.rotate_p = hflip_p, rotate_degrees, rotate_p
        self.outside, self.interpolation = outside, interpolation
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

    def __repr__(self):
        return (f"PairedAugment(hflip_p={self.hflip_p}, rotate_degrees={self.rotate_degrees}, "
                f"rotate_p={self.rotate_p}, outside={self.outside!r}"
                + "".join(f", {k}={v}" for k, v in self.jitter.items() if v)
                + (f", white_balance={self.white_balance}" if self.white_balance else "")
                + (f", jpeg={self.jpeg}" if self.jpeg else "") + ")")

    def sample_params(self, generator: torch.Generator | None = None) -> dict:
        """Draw ``{"hflip": bool, "angle": float}`` and, with jitter on, its factors: what one call will do."""
        g = self.generator if generator is None else generator
        u = torch.rand(3, generator=g).tolist()
        angle = (2 * u[2] - 1) * self.rotate_degrees if u[1] < self.rotate_p else 0.0
        params = {"hflip": u[0] < self.hflip_p, "angle": angle}
        if any(self.jitter.values()):
            v = (2 * torch.rand(4, generator=g) - 1).tolist()  # each in [-1, 1]
            params |= {k: (k != "hue") + u * self.jitter[k] for k, u in zip(self.jitter, v)}  # factors, hue a shift
        if self.white_balance:
            gains = 1 + self.white_balance * (2 * torch.rand(3, generator=g) - 1)
            params["gains"] = (gains / gains.mean()).tolist()
        if self.jpeg:
            lo, hi = self.jpeg
            params["quality"] = lo + int(torch.randint(hi - lo + 1, (1,), generator=g))
        return params

    def apply(self, image: torch.Tensor, mask: torch.Tensor, params: dict):
        """Apply given ``params`` (from :meth:`sample_params`) to an image/mask pair."""
        if image.shape[-2:] != mask.shape[-2:]:
            raise ValueError(f"image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in size")
        img, msk = tv_tensors.Image(image), tv_tensors.Mask(mask)
        if params["hflip"]:
            img, msk = TF.horizontal_flip(img), TF.horizontal_flip(msk)
        angle = params["angle"]
        if angle:
            h, w = image.shape[-2:]
            if self.outside == "reflect":
                # Half-extent of the rotated window, minus the image's own: how far it reaches outside.
                c, s = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
                pad_y = math.ceil((h * c + w * s - h) / 2) + 1
                pad_x = math.ceil((w * c + h * s - w) / 2) + 1
                if pad_y >= h or pad_x >= w:
                    raise ValueError(f"a {h}x{w} image is too small to reflect-pad for {angle:.0f} degrees")
                pad = [pad_x, pad_y, pad_x, pad_y]
                img = TF.pad(img, pad, padding_mode="reflect")
                msk = TF.pad(msk, pad, padding_mode="reflect")
            img = TF.rotate(img, angle, interpolation=self.interpolation, fill=0.0)
            msk = TF.rotate(msk, angle, interpolation=InterpolationMode.NEAREST, fill=0.0)
            if self.outside == "reflect":
                img, msk = TF.center_crop(img, [h, w]), TF.center_crop(msk, [h, w])
        if "brightness" in params:
            img = TF.adjust_brightness(img, params["brightness"])
            img = TF.adjust_contrast(img, params["contrast"])
            img = TF.adjust_saturation(img, params["saturation"])
            img = TF.adjust_hue(img, params["hue"])
        img = img.as_subclass(torch.Tensor)
        if "gains" in params:
            img = (img * torch.tensor(params["gains"], dtype=img.dtype).view(3, 1, 1)).clamp(0, 1)
        if "quality" in params:
            as_bytes = (img.clamp(0, 1) * 255).round().to(torch.uint8)
            img = TF.jpeg(as_bytes, params["quality"]).to(image.dtype) / 255
        return img, msk.as_subclass(torch.Tensor)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None):
        return self.apply(image, mask, self.sample_params(generator))
