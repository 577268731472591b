"""murallab.losses: every loss in a functional form and a Module form; shapes and ranges in the docstrings.

- ``ssim.py``: ``ssim`` / ``SSIM`` / ``SSIMLoss``, ``ms_ssim`` / ``MSSSIM`` (equal to scikit-image's reference SSIM).
- ``pixel.py``: ``l1_loss``, ``mse_loss``, ``PixelLoss`` over the whole image, the holes or the valid pixels.
- ``perceptual.py``: ``VGG16Features``, ``perceptual_loss``, ``style_loss`` (Gram / C·H·W), Module forms.
- ``smoothness.py``: ``total_variation`` (whole image, or the PConv paper's hole dilation), ``edge_loss`` (Sobel).
- ``presets.py``: the seeds' recipes ``MuralLoss``, ``PConvLoss``, ``DualDecoderLoss``, ``MSESSIMLoss``, and
  ``DiffusionLoss`` for the diffusion restorer, each returning ``(total, {term: weighted value})``.

Images are ``(B, C, H, W)`` floats in [0, 1]; masks ``(B, 1, H, W)``, 1 = known, 0 = hole.
"""

from .perceptual import (VGG16Features, VGGWeightsNotFoundError, PerceptualLoss, StyleLoss, gram_matrix,
                         perceptual_distance, perceptual_loss, style_distance, style_loss)
from .pixel import PixelLoss, l1_loss, mse_loss
from .presets import DiffusionLoss, DualDecoderLoss, MSESSIMLoss, MuralLoss, PConvLoss
from .smoothness import EdgeLoss, TotalVariation, dilate_holes, edge_loss, sobel_gradients, total_variation
from .ssim import MSSSIM, SSIM, SSIMLoss, gaussian_window, ms_ssim, ssim

__all__ = [
    "ssim", "SSIM", "SSIMLoss", "ms_ssim", "MSSSIM", "gaussian_window",
    "l1_loss", "mse_loss", "PixelLoss",
    "VGG16Features", "VGGWeightsNotFoundError", "gram_matrix", "perceptual_distance", "style_distance",
    "perceptual_loss", "style_loss", "PerceptualLoss", "StyleLoss",
    "total_variation", "TotalVariation", "dilate_holes", "sobel_gradients", "edge_loss", "EdgeLoss",
    "MuralLoss", "PConvLoss", "DualDecoderLoss", "MSESSIMLoss", "DiffusionLoss",
]
