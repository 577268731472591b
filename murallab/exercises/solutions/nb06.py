"""Notebook 06: reference answers."""

import math


def my_q_sample(x0, t, noise, alphas_cumprod):
    """``sqrt(ᾱ_t) · x0 + sqrt(1 - ᾱ_t) · noise``."""
    a = alphas_cumprod[t]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def my_ddim_step(x_t, x0_hat, a_t, a_prev):
    """The noise that x_t and x0_hat imply, put back at the lower noise level."""
    eps_hat = (x_t - math.sqrt(a_t) * x0_hat) / math.sqrt(1 - a_t)
    return math.sqrt(a_prev) * x0_hat + math.sqrt(1 - a_prev) * eps_hat


def my_mean_gain(n):
    """One sample's error 2σ², the mean of n samples' σ²(1 + 1/n): ``10 · log10(2 / (1 + 1/n))`` dB."""
    return 10 * math.log10(2 / (1 + 1 / n))
