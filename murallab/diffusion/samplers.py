"""Samplers for any diffusion model ``model(x_t, t, cond)``: DDPM ancestral sampling and DDIM.

The model's ``prediction`` attribute says what it outputs ("eps" if it has none, "x0" or "v");
:func:`predict_eps` turns that into ε̂ with ``NoiseSchedule.split``, and the steps below are written in ε̂.

A sampler owns the loop; the schedule owns the math of one step; the network only predicts noise. So the same
trained model can be sampled with DDPM, with DDIM in fewer steps, or inside RePaint (``repaint.py``).

    DDPM  (Ho et al. 2020):   x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε̂) / sqrt(ᾱ_t)   (clipped to [-1, 1])
                             x_{t'} ~ q(x_{t'} | x_t, x̂_0)                  (the posterior; t' = t - 1, or strided)
    DDIM  (Song et al. 2021): σ = η · sqrt((1 - ᾱ_{t'}) / (1 - ᾱ_t)) · sqrt(1 - ᾱ_t / ᾱ_{t'})
                             x_{t'} = sqrt(ᾱ_{t'}) x̂_0 + sqrt(1 - ᾱ_{t'} - σ²) ε̂ + σ z
                             η = 0: deterministic; η = 1: the DDPM posterior variance.

Conventions: ``known`` images and results are ``(B, 3, H, W)`` in [0, 1]; the loop runs in the diffusion space
[-1, 1]. When ``known`` and ``mask`` (1 = known, 0 = hole) are given, the result is the composite
``mask·known + (1 - mask)·sample``: known pixels are returned exactly. ``cond`` is passed to the model unchanged
(build it with :func:`mask_condition` for a mask-conditioned model). Randomness comes from ``seed`` (an int or a
``torch.Generator`` on the samples' device), never from the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.masks import check_mask, composite
from .schedule import NoiseSchedule


def to_diffusion(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] image -> [-1, 1] diffusion space."""
    return image * 2 - 1


def from_diffusion(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] diffusion space -> [0, 1] image (clamped)."""
    return ((x + 1) / 2).clamp(0, 1)


def mask_condition(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The conditioning of a mask-conditioned model: ``[masked image in [-1, 1] (holes 0) ; mask]``, (B, 4, H, W)."""
    check_mask(mask, known, max_hole_ratio=1.0)
    mask = mask.to(known.dtype)
    return torch.cat([to_diffusion(known) * mask, mask], dim=1)


def generator(seed, device) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` from an int seed (a Generator is returned as is)."""
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def _randn(shape, g: torch.Generator, like_device, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=g, device=like_device, dtype=dtype)


def timesteps(num_train_steps: int, steps: int | None = None, start: int | None = None, end: int = 0) -> list[int]:
    """The ``steps`` model-call times, from ``start`` (default T-1) down to ``end`` (default 0), evenly spaced (every
    step between them when ``steps`` is None)."""
    start = num_train_steps - 1 if start is None else start
    if not 0 <= start < num_train_steps:
        raise ValueError(f"start must be in [0, {num_train_steps - 1}], got {start}")
    if not 0 <= end <= start:
        raise ValueError(f"end (the last model call's step) must be in [0, start={start}], got {end}")
    steps = start - end + 1 if steps is None else steps
    if not 1 <= steps <= start - end + 1:
        raise ValueError(f"steps must be in [1, {start - end + 1}] between steps {start} and {end}, got {steps}")
    ts = torch.linspace(start, end, steps, dtype=torch.float64).round().long().tolist()
    return list(dict.fromkeys(ts))  # rounding cannot repeat a step for steps <= start - end + 1, but keep it safe


class CallCounter(nn.Module):
    """Wraps a model and counts its forward calls (``.calls``), for cost tables. Keeps its ``prediction``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.calls = model, 0
        self.prediction = getattr(model, "prediction", "eps")

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.model(*args, **kwargs)


def predict_eps(model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int, cond=None) -> torch.Tensor:
    """ε̂ at x_t from one model call, whatever the model predicts (its ``prediction``: "eps", "x0" or "v")."""
    out = model(x_t, torch.full((x_t.shape[0],), t, device=x_t.device), cond)
    return schedule.split(out, x_t, t, getattr(model, "prediction", "eps"))[0]


def ddpm_step(schedule: NoiseSchedule, eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor,
              noise: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """One ancestral step x_t -> x_{t'}: the posterior mean from x̂_0 plus sqrt(variance)·noise (none at t' = -1)."""
    x0 = schedule.predict_x0(x_t, t, eps)
    if clip:
        x0 = x0.clamp(-1, 1)
    mean, var = schedule.posterior(x0, x_t, t, t_prev)
    return mean + var.clamp_min(1e-20).sqrt() * noise if t_prev >= 0 else mean


def ddim_step(schedule: NoiseSchedule, eps: torch.Tensor, t: int, t_prev: int, x_t: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None, clip: bool = True) -> torch.Tensor:
    """One DDIM step x_t -> x_{t'} (Song et al. eq. 12); ``t_prev = -1`` lands on the clean image (ᾱ = 1).

    ``noise`` is needed when η > 0. As diffusers' DDIMScheduler (``use_clipped_model_output=False``), clipping
    x̂_0 does not change the ε̂ of the direction term.
    """
    a_t, a_p = schedule.alpha_bar(t, x_t), schedule.alpha_bar(t_prev, x_t)
    x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if clip:
        x0 = x0.clamp(-1, 1)
    sigma = eta * ((1 - a_p) / (1 - a_t) * (1 - a_t / a_p)).sqrt()
    x_prev = a_p.sqrt() * x0 + (1 - a_p - sigma ** 2).clamp_min(0).sqrt() * eps
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * noise
    return x_prev


def _start(schedule, shape, known, mask, device, seed, x_T=None):
    if known is not None:
        shape = tuple(known.shape)
        device = known.device if device is None else device
        if mask is not None:
            check_mask(mask, known, max_hole_ratio=1.0)
    elif mask is not None:
        raise ValueError("a mask needs the known image it belongs to (known=...)")
    if shape is None:
        raise ValueError("give shape=(B, C, H, W) or a known image")
    device = torch.device("cpu") if device is None else torch.device(device)
    g = generator(seed, device)
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T must have the samples' shape {tuple(shape)}, got {tuple(x_T.shape)}")
        return x_T.to(device), g
    return _randn(shape, g, device), g


def paste_known(schedule: NoiseSchedule, x: torch.Tensor, known: torch.Tensor, mask: torch.Tensor, t: int,
                g: torch.Generator) -> torch.Tensor:
    """x_t with its known pixels replaced by the known image noised to step t, ``q_sample(known, t, z)``: the state
    a model trained on noised true images expects there (RePaint's paste; t = -1 pastes the clean pixels)."""
    known_t = schedule.q_sample(to_diffusion(known), t, _randn(x.shape, g, x.device))
    return composite(known_t, mask, x)


def _finish(x, known, mask):
    image = from_diffusion(x)
    return composite(known, mask, image) if mask is not None else image


@torch.no_grad()
def ddpm_sample(model, schedule: NoiseSchedule, shape=None, *, known=None, mask=None, cond=None,
                steps: int | None = None, seed=0, device=None, clip: bool = True, x_T=None,
                paste: bool = False, end: int = 0) -> torch.Tensor:
    """DDPM ancestral sampling: ``steps`` model calls (all T by default; fewer = strided DDPM).

    ``x_T`` (optional) is the starting noise, in the diffusion space; by default it is drawn from ``seed``.
    ``paste``: before every model call, the known pixels of x_t are the known image noised to step t
    (:func:`paste_known`), so the model sees what it was trained on there, however it predicts them.
    ``end``: the step of the last model call; its estimate x̂_0 is the result (0: the sampler runs to the clean
    end; ``DiffusionRestorer.sample``'s ``stop`` explains why to stop earlier).
    Returns ``(B, C, H, W)`` in [0, 1], composited with ``known`` where ``mask`` is 1.
    """
    x, g = _start(schedule, shape, known, mask, device, seed, x_T)
    ts = timesteps(schedule.num_steps, steps, end=end)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        if paste:
            x = paste_known(schedule, x, known, mask, t, g)
        eps = predict_eps(model, schedule, x, t, cond)
        x = ddpm_step(schedule, eps, t, t_prev, x, _randn(x.shape, g, x.device), clip)
    return _finish(x, known, mask)


@torch.no_grad()
def ddim_sample(model, schedule: NoiseSchedule, shape=None, *, known=None, mask=None, cond=None, steps: int = 50,
                eta: float = 0.0, seed=0, device=None, clip: bool = True, x_T=None,
                start: int | None = None, paste: bool = False, end: int = 0) -> torch.Tensor:
    """DDIM sampling in ``steps`` model calls (any number up to T), stochasticity ``eta`` (0 = deterministic
    given the starting noise ``x_T``, drawn from ``seed`` unless given; with ``paste`` the pasted noise comes from
    ``seed`` too).

    ``start`` (default T-1): begin at that step instead of pure noise; ``x_T`` is then the state x_start, e.g. a
    guess noised with ``schedule.q_sample(guess, start, noise)`` (SDEdit: only the detail below that noise level is
    sampled anew). ``paste`` and ``end``: as in :func:`ddpm_sample`. Returns ``(B, C, H, W)`` in [0, 1], composited with
    ``known`` where ``mask`` is 1."""
    x, g = _start(schedule, shape, known, mask, device, seed, x_T)
    ts = timesteps(schedule.num_steps, steps, start, end)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        if paste:
            x = paste_known(schedule, x, known, mask, t, g)
        eps = predict_eps(model, schedule, x, t, cond)
        noise = _randn(x.shape, g, x.device) if eta > 0 else None
        x = ddim_step(schedule, eps, t, t_prev, x, eta, noise, clip)
    return _finish(x, known, mask)
