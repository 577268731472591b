"""Notebook 06, diffusion: the forward process, one DDIM step, and what averaging samples buys."""

from __future__ import annotations

import math

import torch

from ..diffusion import NoiseSchedule
from ..diffusion.samplers import ddim_step
from ._common import NotYet, call, check, number


def _tensor(out, like: torch.Tensor, what: str) -> torch.Tensor:
    out = torch.as_tensor(out, dtype=like.dtype)
    if out.shape != like.shape:
        raise NotYet(f"{what}: expected shape {tuple(like.shape)}, got {tuple(out.shape)}")
    return out


def check_q_sample(fn) -> bool:
    """``fn(x0, t, noise, alphas_cumprod) -> x_t``: one draw of the forward process,
    ``x_t = sqrt(ᾱ_t) · x0 + sqrt(1 - ᾱ_t) · noise`` with ``ᾱ_t = alphas_cumprod[t]``. Compared with
    :meth:`murallab.diffusion.NoiseSchedule.q_sample` on both schedules."""
    what = "the forward process q(x_t | x_0)"

    def body():
        g = torch.Generator().manual_seed(6)
        for schedule in (NoiseSchedule.cosine(1000), NoiseSchedule.linear(1000)):
            ab = schedule.alphas_cumprod
            for t in (0, 250, 999):
                x0 = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
                noise = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
                want = schedule.q_sample(x0, t, noise)
                got = _tensor(call(fn, x0.clone(), t, noise.clone(), ab.clone()), want, "x_t")
                if torch.allclose(got, want, atol=1e-8):
                    continue
                a = ab[t]
                if torch.allclose(got, a * x0 + (1 - a) * noise, atol=1e-8):
                    raise NotYet("the weights are the square roots: sqrt(ᾱ_t) and sqrt(1 - ᾱ_t), so that the "
                                 "variance of x_t stays 1")
                if torch.allclose(got, (1 - a).sqrt() * x0 + a.sqrt() * noise, atol=1e-8):
                    raise NotYet("swapped: sqrt(ᾱ_t) weighs the clean image (ᾱ_t is near 1 at t = 0)")
                raise NotYet(f"at t = {t}: x_t = sqrt(ᾱ_t) · x0 + sqrt(1 - ᾱ_t) · noise, ᾱ_t = alphas_cumprod[t]")
        return "q_sample matches NoiseSchedule.q_sample on the cosine and linear schedules"

    return check(what, body)


def check_ddim_step(fn) -> bool:
    """``fn(x_t, x0_hat, a_t, a_prev) -> x_prev``: one deterministic DDIM step (η = 0) from noise level ``a_t``
    (ᾱ_t, a float) to ``a_prev`` given the network's clean-image estimate ``x0_hat``: the noise it implies,
    ``ε̂ = (x_t - sqrt(a_t) · x0_hat) / sqrt(1 - a_t)``, is put back at the lower level,
    ``x_prev = sqrt(a_prev) · x0_hat + sqrt(1 - a_prev) · ε̂``. Compared with :func:`murallab.diffusion.samplers.ddim_step`
    and with the invariant that a perfect estimate lands exactly on ``q_sample(x0, t_prev, ε)``."""
    what = "one DDIM step"

    def body():
        schedule = NoiseSchedule.cosine(1000)
        g = torch.Generator().manual_seed(7)
        for t, t_prev in ((999, 799), (500, 250), (100, 0)):
            x0 = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
            eps = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
            x_t = schedule.q_sample(x0, t, eps)
            a_t, a_p = (float(schedule.alphas_cumprod[s]) for s in (t, t_prev))
            # a perfect estimate: DDIM moves along the same noise, to exactly q_sample(x0, t_prev, eps)
            got = _tensor(call(fn, x_t.clone(), x0.clone(), a_t, a_p), x_t, "x_prev")
            exact = schedule.q_sample(x0, t_prev, eps)
            if not torch.allclose(got, exact, atol=1e-6):
                if torch.allclose(got, math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * x_t, atol=1e-6):
                    raise NotYet("the direction term uses the noise ε̂ that x_t and x0_hat imply, not x_t itself")
                raise NotYet(f"with a perfect x0_hat, a step from t = {t} to {t_prev} must land on "
                             "sqrt(a_prev) · x0 + sqrt(1 - a_prev) · ε, the same noise at the lower level")
            # an imperfect estimate, against the library's step (ε̂ computed from it, no clipping)
            x0_hat = x0 + 0.3 * torch.randn(x0.shape, generator=g, dtype=x0.dtype)
            eps_hat = (x_t - math.sqrt(a_t) * x0_hat) / math.sqrt(1 - a_t)
            want = ddim_step(schedule, eps_hat, t, t_prev, x_t, clip=False)
            got = _tensor(call(fn, x_t.clone(), x0_hat.clone(), a_t, a_p), x_t, "x_prev")
            if not torch.allclose(got, want, atol=1e-6):
                raise NotYet("use the network's estimate x0_hat (not the truth) in both terms; ε̂ = (x_t - "
                             "sqrt(a_t) · x0_hat) / sqrt(1 - a_t)")
        return "DDIM step matches murallab.diffusion.samplers.ddim_step (η = 0)"

    return check(what, body)


def check_mean_gain(fn) -> bool:
    """``fn(n) -> dB``: the PSNR gain of the mean of ``n`` independent posterior samples over one sample. A sample is
    the truth's twin: truth and sample are independent draws around the posterior mean μ with the same spread σ²,
    so one sample's squared error is 2σ², and the mean of n samples' is σ² (1 + 1/n). Compared with that formula and
    with a simulation of Gaussian draws."""
    what = "the gain of averaging n samples"

    def body():
        g = torch.Generator().manual_seed(8)
        truth = torch.randn(200_000, generator=g, dtype=torch.float64)  # around μ = 0, σ = 1
        samples = torch.randn(16, 200_000, generator=g, dtype=torch.float64)
        one = (samples[0] - truth).pow(2).mean()
        for n in (1, 2, 4, 16):
            simulated = 10 * math.log10(one / (samples[:n].mean(0) - truth).pow(2).mean())
            want = 10 * math.log10(2 / (1 + 1 / n))
            got = number(call(fn, n), "a gain in dB")
            if abs(got - want) > 1e-6:
                if n == 1 and abs(got) > 1e-6:
                    raise NotYet("the mean of one sample is that sample: the gain at n = 1 is 0 dB")
                if abs(got - 10 * math.log10(n)) < 1e-6:
                    raise NotYet("the truth is a draw too: averaging shrinks the samples' spread (σ²/n), not the "
                                 "truth's, so the error falls from 2σ² to σ²(1 + 1/n), never below σ²")
                raise NotYet(f"n = {n}: the simulation gives {simulated:.2f} dB; the error is 2σ² for one sample "
                             "and σ²(1 + 1/n) for the mean of n")
            assert abs(simulated - want) < 0.05  # the simulation agrees with the formula
        return "averaging n samples gains 10 · log10(2 / (1 + 1/n)) dB, at most 3 dB"

    return check(what, body)
