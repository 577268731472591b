"""Noise schedules: β_t, ᾱ_t, the forward process q(x_t | x_0) and the DDPM posterior q(x_{t'} | x_t, x_0).

Notation (Ho et al. 2020), steps t = 0 … T-1 (0-based, as diffusers):

    α_t = 1 - β_t,      ᾱ_t = ∏_{s<=t} α_s,      ᾱ_{-1} = 1 (the clean image)
    q(x_t | x_0)        = N( sqrt(ᾱ_t) x_0, (1 - ᾱ_t) I )                        -> q_sample
    q(x_{t-1} | x_t, x_0) = N( c1 x_0 + c2 x_t, β̃_t I ),
        c1 = β_t sqrt(ᾱ_{t-1}) / (1 - ᾱ_t),   c2 = sqrt(α_t) (1 - ᾱ_{t-1}) / (1 - ᾱ_t),
        β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)                                     -> posterior

What the network predicts (``prediction``), and how each converts to the others (a = ᾱ_t):

    "eps": ε̂                 x̂_0 = (x_t - sqrt(1 - a) ε̂) / sqrt(a)
    "x0":  x̂_0               ε̂ = (x_t - sqrt(a) x̂_0) / sqrt(1 - a)
    "v":   v̂ = sqrt(a) ε - sqrt(1 - a) x_0 (Salimans & Ho 2022)
                             x̂_0 = sqrt(a) x_t - sqrt(1 - a) v̂,   ε̂ = sqrt(1 - a) x_t + sqrt(a) v̂

They differ in what the plain squared error weights: an ε error is an x_0 error scaled by sqrt(a / (1 - a)), so
"eps" spends almost nothing on the noisy steps, where the content of a hole is decided, and "x0" weights every
noise level alike (BENCHMARKS.md, "Diffusion: why the conditional model ignored its condition").

The posterior also holds between any two steps t' < t (strided sampling, RePaint with fewer steps) with
β_t replaced by 1 - ᾱ_t / ᾱ_{t'}; :meth:`NoiseSchedule.posterior` takes ``t_prev`` for that.

Everything here works in the diffusion space, images in [-1, 1]. The samplers convert from and to [0, 1].
The tables are kept in float64 and cast to the input's dtype and device on use.
"""

from __future__ import annotations

import math

import torch


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 max_beta: float = 0.999) -> torch.Tensor:
    """Ho et al.'s linear schedule, scaled by 1000 / ``num_steps`` (as Nichol & Dhariwal's code does) so that any
    T covers about the same noise range as T = 1000; clipped at ``max_beta`` for very short schedules (T < 20).

    Returns ``(num_steps,)`` float64. With the defaults and ``num_steps=1000``: β from 1e-4 to 0.02.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    scale = 1000 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64).clamp(max=max_beta)


def cosine_betas(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's (2021) cosine schedule: ᾱ(t) = f(t)/f(0), f(t) = cos²(π/2 · (t/T + s)/(1 + s)).

    β_t = 1 - ᾱ(t+1)/ᾱ(t), clipped at ``max_beta`` (the paper's 0.999) so the last step stays finite.
    Returns ``(num_steps,)`` float64.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")

    def f(t):
        return math.cos((t / num_steps + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_steps)]
    return torch.tensor(betas, dtype=torch.float64)


def _take(table: torch.Tensor, t, like: torch.Tensor) -> torch.Tensor:
    """``table[t]`` as ``(B, 1, 1, 1)`` (or a scalar-like ``(1, 1, 1, 1)``) in ``like``'s dtype and device."""
    t = torch.as_tensor(t, device=table.device).long().reshape(-1)
    return table[t].to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))


PREDICTIONS = ("eps", "x0", "v")


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


class NoiseSchedule:
    """The β_t of a diffusion process and every table derived from them (float64, CPU).

    ``NoiseSchedule.linear(T)`` / ``NoiseSchedule.cosine(T)`` build one; ``schedule.config`` is a JSON-able dict
    that rebuilds it with ``NoiseSchedule.from_config``.
    """

    def __init__(self, betas: torch.Tensor, config: dict | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a 1-D tensor with every value in (0, 1)")
        self.config = config or {"kind": "custom", "num_steps": len(betas)}
        self.num_steps = len(betas)
        self.betas = betas
        self.alphas = 1 - betas
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        # ᾱ with ᾱ_{-1} = 1 in front: alpha_bar_ext[t + 1] = ᾱ_t for t = -1 … T-1
        self._alpha_bar_ext = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod])
        self.alphas_cumprod_prev = self._alpha_bar_ext[:-1]
        # DDPM posterior q(x_{t-1} | x_t, x_0) for adjacent steps (Ho et al. eq. 6-7)
        self.posterior_variance = betas * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)
        self.posterior_mean_coef1 = betas * self.alphas_cumprod_prev.sqrt() / (1 - self.alphas_cumprod)
        self.posterior_mean_coef2 = self.alphas.sqrt() * (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod)

    @classmethod
    def linear(cls, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        return cls(linear_betas(num_steps, beta_start, beta_end),
                   {"kind": "linear", "num_steps": num_steps, "beta_start": beta_start, "beta_end": beta_end})

    @classmethod
    def cosine(cls, num_steps: int = 1000, s: float = 0.008) -> NoiseSchedule:
        return cls(cosine_betas(num_steps, s), {"kind": "cosine", "num_steps": num_steps, "s": s})

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        kind = config.get("kind")
        args = {k: v for k, v in config.items() if k != "kind"}
        if kind == "linear":
            return cls.linear(**args)
        if kind == "cosine":
            return cls.cosine(**args)
        raise ValueError(f"cannot rebuild a {kind!r} schedule from its config; expected 'linear' or 'cosine'")

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.config})"

    def alpha_bar(self, t, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t as ``(B, 1, 1, 1)`` like ``like``; t may be -1 (ᾱ_{-1} = 1, the clean image)."""
        t = torch.as_tensor(t).long()
        if bool((t < -1).any()) or bool((t >= self.num_steps).any()):
            raise ValueError(f"t must be in [-1, {self.num_steps - 1}], got {t.tolist()}")
        return _take(self._alpha_bar_ext, t + 1, like)

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε, with ε = ``noise``.

        x0, noise: ``(B, C, H, W)`` in the diffusion space; t: int or ``(B,)`` long, -1 … T-1.
        """
        a = self.alpha_bar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """Invert q_sample for x_0 given the noise: x̂_0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t)."""
        a = self.alpha_bar(t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t, prediction: str = "eps") -> torch.Tensor:
        """What a network of kind ``prediction`` ("eps", "x0" or "v") should output for x_t = q_sample(x0, t, noise)."""
        _check_prediction(prediction)
        if prediction == "eps":
            return noise
        if prediction == "x0":
            return x0
        a = self.alpha_bar(t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def split(self, output: torch.Tensor, x_t: torch.Tensor, t, prediction: str = "eps"
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """A network's ``output`` at x_t, step t, as ``(ε̂, x̂_0)`` (module docstring; x̂_0 is not clipped)."""
        _check_prediction(prediction)
        a = self.alpha_bar(t, x_t)
        if prediction == "eps":
            return output, self.predict_x0(x_t, t, output)
        if prediction == "x0":
            return (x_t - a.sqrt() * output) / (1 - a).sqrt(), output
        return (1 - a).sqrt() * x_t + a.sqrt() * output, a.sqrt() * x_t - (1 - a).sqrt() * output

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t, t_prev=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t'} | x_t, x_0) for t' = ``t_prev`` < t (default t - 1).

        With a_t = ᾱ_t, a' = ᾱ_{t'} and b = 1 - a_t / a' (= β_t when t' = t - 1):
        mean = sqrt(a') b / (1 - a_t) · x_0 + sqrt(a_t / a') (1 - a') / (1 - a_t) · x_t,
        variance = (1 - a') / (1 - a_t) · b. Returns ``(mean (B, C, H, W), variance (B, 1, 1, 1))``.
        """
        t = torch.as_tensor(t).long()
        t_prev = t - 1 if t_prev is None else torch.as_tensor(t_prev).long()
        if bool((t_prev >= t).any()):
            raise ValueError(f"t_prev must be below t, got t={t.tolist()} t_prev={t_prev.tolist()}")
        a_t, a_p = self.alpha_bar(t, x_t), self.alpha_bar(t_prev, x_t)
        b = 1 - a_t / a_p
        mean = a_p.sqrt() * b / (1 - a_t) * x0 + (a_t / a_p).sqrt() * (1 - a_p) / (1 - a_t) * x_t
        return mean, (1 - a_p) / (1 - a_t) * b
