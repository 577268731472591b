"""Training a diffusion model: the plain DDPM loss, an optional cycle-consistency term, a checkpoint cache.

    t ~ U{0 … T-1},  ε ~ N(0, I),  x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε
    loss = ‖y - ŷ(x_t, t, cond)‖²,  y = ε, x_0 or v by the model's ``prediction``   (Ho et al.'s "simple" loss)
         + cycle_weight · ‖m ⊙ x̂_0 - m ⊙ x_0‖² / ‖m‖₁                   (optional, DiffuMural-style)

Which target matters more than anything else here: with "eps" a mask-conditioned model learned to ignore its
condition (hiding it cost 0.17 dB); with "x0" it restores (``schedule.py`` says why; BENCHMARKS.md measures it).

A mask-conditioned model sees the known pixels in its condition, so on them ε is a matter of arithmetic
(ε = (x_t - sqrt(ᾱ_t) x_0) / sqrt(1 - ᾱ_t)); their error soon dominates the average, while the holes, the only
pixels a sampler keeps, learn slowly. ``hole_only=True`` averages the same ε error over the holes only (as
Palette-style inpainting models are trained); with a tiny budget it is the difference between a fill and noise.

The cycle term degrades the restoration the way the input was degraded (keep only the known pixels, ``m ⊙ ·``)
and compares it with the input: a restoration must explain what was seen. x̂_0 is the model's one-step estimate
of the clean image from x_t (clamped to [-1, 1]).

``condition(image, mask) -> cond`` builds the model's conditioning from the clean batch and a damage mask (None
for an unconditional model; :func:`murallab.diffusion.mask_condition` for a mask-conditioned one). Masks come
from a pool (random-walk masks by default); images are ``(N, 3, H, W)`` in [0, 1].

``train_diffusion(..., checkpoint=path)`` saves the weights with the config that made them; a later call with the
same config (model, schedule, optimisation, condition, data fingerprint) loads them instead of training again.
The file has the schema of every murallab checkpoint (``murallab.checkpoint``): ``config["model"]`` is
``{"name": "TimeUNet", **model.config}``, so ``model, ckpt = murallab.models.load_model(path)`` rebuilds the network
and ``NoiseSchedule.from_config(ckpt["config"]["schedule"])`` its schedule.
"""

from __future__ import annotations

import hashlib
import json
import math
import time

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..data.masks import random_walk_masks
from .samplers import to_diffusion
from .schedule import NoiseSchedule


def diffusion_loss(model, schedule: NoiseSchedule, x0: torch.Tensor, *, cond=None, mask=None,
                   cycle_weight: float = 0.0, hole_only: bool = False,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The squared error of the model's prediction (ε, x_0 or v: ``model.prediction``, default "eps"), plus the
    cycle term when ``cycle_weight > 0``, on one batch; ``x0`` in [-1, 1].

    ``hole_only``: average the error over the hole pixels only (``mask`` = 0), the pixels a sampler keeps.
    Returns ``(loss, {"eps": float, "cycle": float})``. ``mask`` (1 = known) is needed for the cycle term and for
    ``hole_only``.
    """
    b = x0.shape[0]
    t = torch.randint(0, schedule.num_steps, (b,), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.q_sample(x0, t, noise)
    prediction = getattr(model, "prediction", "eps")
    out = model(x_t, t, cond)
    error = (out - schedule.target(x0, noise, t, prediction)) ** 2
    if hole_only:
        if mask is None:
            raise ValueError("hole_only needs the damage mask")
        hole = 1 - mask.to(x0.dtype)
        eps_loss = (error * hole).sum() / (hole.sum() * x0.shape[1]).clamp_min(1)
    else:
        eps_loss = error.mean()
    loss = eps_loss
    parts = {"eps": eps_loss.item(), "cycle": 0.0}
    if cycle_weight > 0:
        if mask is None:
            raise ValueError("the cycle-consistency term needs the damage mask")
        x0_hat = schedule.split(out, x_t, t, prediction)[1].clamp(-1, 1)
        m = mask.to(x0.dtype)
        cycle = ((m * (x0_hat - x0)) ** 2).sum() / (m.sum() * x0.shape[1]).clamp_min(1)
        loss = loss + cycle_weight * cycle
        parts["cycle"] = cycle.item()
    return loss, parts


def fingerprint(images: torch.Tensor) -> str:
    """A short hash of a tensor's values, so a cached model is not reused for other data."""
    return hashlib.sha1(images.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:12]


def train_diffusion(model, schedule: NoiseSchedule, images: torch.Tensor, *, condition=None, masks=None,
                    steps: int = 500, batch_size: int = 16, lr: float = 2e-3, cycle_weight: float = 0.0,
                    hole_only: bool = False, hole_ratio=(0.1, 0.4), seed: int = 0, device=None, checkpoint=None,
                    config: dict | None = None) -> dict:
    """Train ``model`` in place with AdamW (warm-up, then cosine decay to 10 %) and gradient clipping at 1.

    Args:
        images: ``(N, 3, H, W)`` clean training images in [0, 1].
        condition: ``condition(image, mask) -> cond`` or None (unconditional).
        masks: ``(M, 1, H, W)`` pool of masks (1 = known); default 256 random-walk masks with ``hole_ratio``.
        checkpoint: path of the cache file; reused when its config equals this run's.
        config: extra JSON-able facts that identify the run (e.g. data_dir) for the cache.
    Returns ``{"losses": [per-step loss], "seconds": float, "cached": bool, "config": dict}``; the model is left
    in eval mode.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    n, _, h, w = images.shape
    needs_mask = condition is not None or cycle_weight > 0 or hole_only
    if masks is None and needs_mask:
        masks = random_walk_masks(256, h, w, hole_ratio=hole_ratio, seed=seed)
    model_spec = {"name": type(model).__name__, **getattr(model, "config", {})}  # what load_model rebuilds
    cfg = {"model": model_spec, "schedule": schedule.config, "steps": steps,
           "batch_size": batch_size, "lr": lr, "cycle_weight": cycle_weight, "hole_only": hole_only, "seed": seed,
           "condition": getattr(condition, "name", getattr(condition, "__name__", None)),
           "data": fingerprint(images), "masks": fingerprint(masks) if needs_mask else None, **(config or {})}
    cfg = json.loads(json.dumps(cfg))  # the form it has after a save/load round trip
    model.to(device)
    if checkpoint is not None:
        try:
            ckpt = load_checkpoint(checkpoint)
        except (FileNotFoundError, ValueError):
            ckpt = None
        if ckpt is not None and ckpt.get("config") == cfg:
            model.load_state_dict(ckpt["model"])
            return {**ckpt["progress"], "cached": True, "config": cfg}

    g = torch.Generator().manual_seed(seed)
    gd = torch.Generator(device=device).manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.45 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    losses, t0 = [], time.perf_counter()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        x = images[idx].to(device)
        m = masks[torch.randint(0, len(masks), (batch_size,), generator=g)].to(device) if needs_mask else None
        cond = condition(x, m) if condition is not None else None
        loss, _ = diffusion_loss(model, schedule, to_diffusion(x), cond=cond, mask=m, cycle_weight=cycle_weight,
                                 hole_only=hole_only, generator=gd)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    progress = {"losses": losses, "seconds": time.perf_counter() - t0}
    if checkpoint is not None:
        save_checkpoint(checkpoint, model=model.state_dict(), config=cfg, progress=progress)
    return {**progress, "cached": False, "config": cfg}
