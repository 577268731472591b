"""Diffusion restoration: noise schedules, a time-conditioned U-Net, samplers (DDPM, DDIM), RePaint, DiffuMural-lite
multi-scale co-diffusion, and ``DiffusionRestorer``, which wraps them for the trainer (``murallab.train.fit`` with
``murallab.losses.DiffusionLoss``: the one way a diffusion model trains), ``murallab.restore`` and the pretrained
weights.

Kept apart as diffusers does: the schedule holds the math of the noise (``schedule.py``), the network only predicts
noise, the clean image or v (``unet.py``), samplers own the loop (``samplers.py``, ``repaint.py``,
``multiscale.py``). So one trained model can be sampled with DDPM, DDIM or inside RePaint. Images at the API are
``(B, 3, H, W)`` in [0, 1], masks ``(B, 1, H, W)`` with 1 = known; the diffusion itself runs in [-1, 1]. Every
sampler returns a composite: known pixels exactly as given.
"""

from .multiscale import (damage_contour, downsample, downsample_mask, kmeans, kmeans_damage_mask, multiscale_sample,
                         scale_condition, upsample)
from .repaint import RePaintPlan, repaint, repaint_plan
from .samplers import (CallCounter, ddim_sample, ddim_step, ddpm_sample, ddpm_step, from_diffusion,
                       mask_condition, paste_known, predict_eps, timesteps, to_diffusion)
from .restorer import SAMPLERS, DiffusionRestorer
from .schedule import PREDICTIONS, NoiseSchedule, cosine_betas, linear_betas
from .unet import TimeUNet, timestep_embedding

__all__ = [
    "NoiseSchedule", "linear_betas", "cosine_betas", "TimeUNet", "timestep_embedding", "CallCounter",
    "ddim_sample", "ddim_step", "ddpm_sample", "ddpm_step", "from_diffusion", "mask_condition", "timesteps",
    "to_diffusion", "RePaintPlan", "repaint", "repaint_plan", "damage_contour",
    "downsample", "downsample_mask", "kmeans", "kmeans_damage_mask", "multiscale_sample", "scale_condition",
    "upsample", "predict_eps", "paste_known", "PREDICTIONS", "DiffusionRestorer", "SAMPLERS",
]
