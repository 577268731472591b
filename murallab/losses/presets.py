"""The seed projects' loss recipes, each an ``nn.Module`` whose forward returns ``(total, {term: value})``.

Every weight is a constructor argument. The dict holds each term's *weighted* contribution, detached for logging,
so its values add up to ``total`` and show directly which term dominates; divide by the weight for the raw term.
A term whose weight is 0 is not computed and logs 0. The keys are always the ones listed in ``TERMS``.

- ``MuralLoss`` (seed 000): 1.0·L1 + 0.5·(1 - SSIM) + 0.1·perceptual + 0.2·edge.
- ``PConvLoss`` (Liu et al. 2018, seed 001): 1·valid + 6·hole + 0.05·perceptual + 120·style + 0.1·TV, and
  5·(1 - SSIM) in seed 001's variant (off by default).
- ``DualDecoderLoss`` (seed 002): 2·L1 over the holes + 1·BCE(damage probability, 1 - mask).
- ``MSESSIMLoss`` (seed 003): 1·MSE + 1·(1 - SSIM).
- ``DiffusionLoss`` (``murallab.diffusion.DiffusionRestorer``): the squared error of the predicted ε, x_0 or v over
  the holes (and optionally the known pixels), plus DiffuMural's cycle-consistency term.

Presets with VGG terms take ``features=`` (a shared :class:`VGG16Features`) or ``weights=`` (``"imagenet"`` by
default, which needs torchvision's weights file on disk; ``weights=None`` gives untrained random features, for
tests and CPU demos, and should be labelled as such wherever its numbers are shown). On a CPU the VGG terms dominate the
cost of a step: for a quick CPU run, set their weights to 0 (no network is built) or use small images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.masks import composite
from .perceptual import VGG16Features, perceptual_distance, style_distance
from .pixel import l1_loss, mse_loss
from .smoothness import edge_loss, total_variation
from .ssim import ssim

__all__ = ["MuralLoss", "PConvLoss", "DualDecoderLoss", "MSESSIMLoss", "DiffusionLoss"]


class _Preset(nn.Module):
    """Holds the term weights (``term_weights``), builds VGG features only if a VGG term is weighted, and sums the
    terms. (The constructors' ``weights=`` argument names the VGG weights, as in :class:`VGG16Features`.)"""

    TERMS: tuple[str, ...] = ()
    VGG_TERMS: tuple[str, ...] = ()

    def __init__(self, term_weights: dict[str, float], features: VGG16Features | None = None,
                 vgg_weights="imagenet"):
        super().__init__()
        for name, w in term_weights.items():
            if not w >= 0:
                raise ValueError(f"weight {name}={w} must be >= 0")
        self.term_weights = dict(term_weights)
        if features is None and any(self.term_weights[t] for t in self.VGG_TERMS):
            features = VGG16Features(weights=vgg_weights)
        self.features = features

    def _combine(self, terms: dict, like: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``terms``: name -> zero-argument function computing the raw term, called only if weighted."""
        values = {name: self.term_weights[name] * fn() for name, fn in terms.items() if self.term_weights[name]}
        zero = like.new_zeros(())
        total = sum(values.values()) if values else zero
        return total, {name: values[name].detach() if name in values else zero for name in self.TERMS}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.term_weights.items())


def _check_mask(pred: torch.Tensor, mask: torch.Tensor) -> None:
    if mask is None or mask.shape != (pred.shape[0], 1, *pred.shape[-2:]):
        got = None if mask is None else tuple(mask.shape)
        raise ValueError(f"mask must be (B, 1, H, W) = {(pred.shape[0], 1, *pred.shape[-2:])}, 1 = known, 0 = hole; "
                         f"got {got}")


class MuralLoss(_Preset):
    """Seed 000's full-image restoration loss: ``l1·L1 + ssim·(1 - SSIM) + perceptual·P + edge·E``.

    Terms (``TERMS``): ``"l1"`` (mean absolute error), ``"ssim"`` (1 - SSIM, :func:`~murallab.losses.ssim`),
    ``"perceptual"`` (VGG-16 pool1-3 feature L1), ``"edge"`` (Sobel derivative L1).
    Call ``loss(pred, target, mask=None) -> (total, terms)`` with ``(B, 3, H, W)`` images in [0, 1]; the mask is
    accepted for a uniform signature and not used (the loss covers the whole image).
    """

    TERMS = ("l1", "ssim", "perceptual", "edge")
    VGG_TERMS = ("perceptual",)

    def __init__(self, l1: float = 1.0, ssim: float = 0.5, perceptual: float = 0.1, edge: float = 0.2, *,
                 features: VGG16Features | None = None, weights="imagenet"):
        super().__init__(dict(l1=l1, ssim=ssim, perceptual=perceptual, edge=edge), features, weights)

    def forward(self, pred, target, mask=None):
        return self._combine({
            "l1": lambda: l1_loss(pred, target),
            "ssim": lambda: 1 - ssim(pred, target),
            "perceptual": lambda: perceptual_distance(self.features(pred), self.features(target)),
            "edge": lambda: edge_loss(pred, target),
        }, pred)


class PConvLoss(_Preset):
    """The PConv paper's loss (Liu et al. 2018), as seed 001 used it, with an optional structural term.

    With ``comp = mask·target + (1 - mask)·pred`` (the composite; the target equals the input on known pixels)
    and N = C·H·W per image:

    - ``"valid"``: ‖M ⊙ (pred - target)‖₁ / N, ``"hole"``: ‖(1 - M) ⊙ (pred - target)‖₁ / N (the paper's 1/N,
      not the region's size: see :mod:`murallab.losses.pixel`);
    - ``"perceptual"``: feature L1 of pred *and* of comp against the target, summed (pool1-3);
    - ``"style"``: Gram L1 (normalised by C·H·W) of pred and of comp, summed;
    - ``"tv"``: total variation of comp over the one-pixel dilation of the holes (the paper's P);
    - ``"structural"``: 1 - SSIM(pred, target), weight 5 in seed 001's variant, 0 (off) by default;
    - ``"edge"``: the Sobel edge loss of pred against the target (seed 001's third ablation step), 0 by default.

    Call ``loss(pred, target, mask) -> (total, terms)``: ``pred`` and ``target`` ``(B, 3, H, W)``, ``mask``
    ``(B, 1, H, W)``, 1 = known, 0 = hole.
    """

    TERMS = ("valid", "hole", "perceptual", "style", "tv", "structural", "edge")
    VGG_TERMS = ("perceptual", "style")

    def __init__(self, valid: float = 1.0, hole: float = 6.0, perceptual: float = 0.05, style: float = 120.0,
                 tv: float = 0.1, structural: float = 0.0, edge: float = 0.0, *,
                 features: VGG16Features | None = None, weights="imagenet"):
        super().__init__(dict(valid=valid, hole=hole, perceptual=perceptual, style=style, tv=tv,
                              structural=structural, edge=edge), features, weights)

    def forward(self, pred, target, mask):
        _check_mask(pred, mask)
        mask = mask.to(pred.dtype)
        comp = composite(target, mask, pred)
        feats = {}

        def vgg():  # features of output, composite and target, computed once for both VGG terms
            if not feats:
                feats.update(out=self.features(pred), comp=self.features(comp), gt=self.features(target))
            return feats

        return self._combine({
            "valid": lambda: l1_loss(pred, target, mask, region="valid", normalise="image"),
            "hole": lambda: l1_loss(pred, target, mask, region="hole", normalise="image"),
            "perceptual": lambda: perceptual_distance(vgg()["out"], vgg()["gt"])
            + perceptual_distance(vgg()["comp"], vgg()["gt"]),
            "style": lambda: style_distance(vgg()["out"], vgg()["gt"]) + style_distance(vgg()["comp"], vgg()["gt"]),
            "tv": lambda: total_variation(comp, mask),
            "structural": lambda: 1 - ssim(pred, target),
            "edge": lambda: edge_loss(pred, target),
        }, pred)


class DualDecoderLoss(_Preset):
    """Seed 002's blind-restoration loss: ``hole·L1(holes) + damage·BCE``.

    The dual-decoder network (:class:`murallab.nn.DualDecoderUNet`) returns ``(image, damage_prob)``, where
    ``damage_prob`` is the probability that a pixel is *damaged*: 1 = damaged, the opposite of a mask. Its target
    is therefore ``1 - mask``.

    - ``"hole"``: mean absolute error of the image over the corrupted pixels (normalised by their count);
    - ``"damage"``: binary cross-entropy of ``damage_prob`` against ``1 - mask`` (in float32, outside autocast).

    Call ``loss((image, damage_prob), target, mask) -> (total, terms)``: image and target ``(B, 3, H, W)``,
    damage_prob and mask ``(B, 1, H, W)`` (probabilities in [0, 1], not logits; mask 1 = known, 0 = hole).
    """

    TERMS = ("hole", "damage")

    def __init__(self, hole: float = 2.0, damage: float = 1.0):
        super().__init__(dict(hole=hole, damage=damage))

    def forward(self, pred, target, mask):
        if not (isinstance(pred, (tuple, list)) and len(pred) == 2):
            raise TypeError("pred must be the dual decoder's (image, damage_prob) pair")
        image, damage_prob = pred
        _check_mask(image, mask)
        if damage_prob.shape != mask.shape:
            raise ValueError(f"damage_prob must be (B, 1, H, W) like the mask {tuple(mask.shape)}, got "
                             f"{tuple(damage_prob.shape)}")

        def bce():
            with torch.autocast(damage_prob.device.type, enabled=False):
                return F.binary_cross_entropy(damage_prob.float(), 1 - mask.float())

        return self._combine({"hole": lambda: l1_loss(image, target, mask, region="hole"), "damage": bce}, image)


class MSESSIMLoss(_Preset):
    """Seed 003's loss: ``mse·MSE + ssim·(1 - SSIM)`` over the whole image.

    Terms: ``"mse"`` (mean squared error, images in [0, 1]) and ``"ssim"`` (1 - SSIM). On [0, 1] images the MSE
    of a decent restoration is around 1e-3 while 1 - SSIM is around 0.05 to 0.2, so with equal weights SSIM
    drives the training and MSE anchors the colours. Call ``loss(pred, target, mask=None)``; the mask is not used.
    """

    TERMS = ("mse", "ssim")

    def __init__(self, mse: float = 1.0, ssim: float = 1.0):
        super().__init__(dict(mse=mse, ssim=ssim))

    def forward(self, pred, target, mask=None):
        return self._combine({"mse": lambda: mse_loss(pred, target), "ssim": lambda: 1 - ssim(pred, target)}, pred)


def _masked_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of ``values (B, C, H, W)`` over the pixels where ``weight (B, 1, H, W)`` is 1 (0 when there are none)."""
    return (values * weight).sum() / (weight.sum() * values.shape[1]).clamp_min(1)


class DiffusionLoss(_Preset):
    """The training objective of :class:`murallab.diffusion.DiffusionRestorer`, averaged over its scales:

    - ``"hole"``: ‖y - ŷ‖² over the hole pixels, y = ε, x_0 or v (the model's ``prediction``): the pixels a sampler
      keeps. (On known pixels the model sees the answer in its condition; their easy error would dominate a mean
      over the whole image.)
    - ``"valid"``: the same error over the known pixels (0 by default);
    - ``"cycle"``: DiffuMural's cycle consistency, ‖m ⊙ (clip(x̂_0) - x_0)‖² over the known pixels: the one-step
      restoration, degraded as the input was, must give the input back.

    Call ``loss(output, image, mask)`` with the model's output (a list of per-scale dicts with ``pred``, ``target``,
    ``mask``, ``x0_hat``, ``x0``; ``image`` and ``mask`` are not used: each scale's own are in it).
    """

    TERMS = ("hole", "valid", "cycle")

    def __init__(self, hole: float = 1.0, valid: float = 0.0, cycle: float = 0.0):
        super().__init__(dict(hole=hole, valid=valid, cycle=cycle))

    def forward(self, output, image=None, mask=None):
        if not (isinstance(output, (list, tuple)) and output and isinstance(output[0], dict)):
            raise TypeError("DiffusionLoss takes a DiffusionRestorer's output: a list of per-scale dicts")

        def mean(term):
            return sum(term(o) for o in output) / len(output)

        return self._combine({
            "hole": lambda: mean(lambda o: _masked_mean((o["pred"] - o["target"]) ** 2, 1 - o["mask"])),
            "valid": lambda: mean(lambda o: _masked_mean((o["pred"] - o["target"]) ** 2, o["mask"])),
            "cycle": lambda: mean(lambda o: _masked_mean((o["x0_hat"].clamp(-1, 1) - o["x0"]) ** 2, o["mask"])),
        }, output[0]["pred"])
