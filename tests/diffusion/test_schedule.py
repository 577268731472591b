"""Noise schedules against the closed forms (float64, written out independently) and diffusers' DDPMScheduler."""

import math

import numpy as np
import pytest
import torch

from murallab.diffusion import NoiseSchedule, cosine_betas, linear_betas

diffusers = pytest.importorskip("diffusers")


def test_linear_betas_endpoints_and_scaling():
    b = linear_betas(1000)
    assert b.dtype == torch.float64 and len(b) == 1000
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    assert linear_betas(250)[-1].item() == pytest.approx(0.08)  # 1000 / T scaling keeps the noise range


def test_cosine_alpha_bar_is_the_closed_form():
    """ᾱ_t = f(t+1)/f(0) with f(t) = cos²(π/2 (t/T + s)/(1 + s)), wherever β was not clipped."""
    T, s = 100, 0.008
    alpha_bar = NoiseSchedule(cosine_betas(T, s)).alphas_cumprod.numpy()
    f = np.cos((np.arange(T + 1) / T + s) / (1 + s) * np.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-1], f[1:-1] / f[0], rtol=1e-10)
    assert cosine_betas(T).max() <= 0.999


def test_q_sample_statistics_match_the_closed_form():
    """x_t = q_sample(x0, t, ε): mean sqrt(ᾱ_t) x0 and variance 1 - ᾱ_t, over many ε."""
    sched = NoiseSchedule.cosine(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-0.8, 0.1, 0.6]).view(1, 3, 1, 1).expand(40000, 3, 1, 1)
    for t in (0, 100, 500, 999):
        xt = sched.q_sample(x0, t, torch.randn(x0.shape, generator=g)).double()
        a = sched.alphas_cumprod[t].item()
        n = x0.shape[0]
        se_mean = math.sqrt((1 - a) / n)
        assert torch.allclose(xt.mean(0).flatten(), math.sqrt(a) * x0[0].flatten().double(), atol=5 * se_mean + 1e-7)
        assert torch.allclose(xt.var(0).flatten(), torch.full((3,), 1 - a, dtype=torch.float64),
                              rtol=5 * math.sqrt(2 / n), atol=1e-9)


def test_q_sample_per_sample_t_and_clean_end():
    sched = NoiseSchedule.linear(50)
    x0, noise = torch.rand(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([-1, 0, 10, 49])
    xt = sched.q_sample(x0, t, noise)
    assert torch.equal(xt[0], x0[0])  # ᾱ_{-1} = 1: the clean image
    for i in range(1, 4):
        assert torch.allclose(xt[i], sched.q_sample(x0[i:i + 1], int(t[i]), noise[i:i + 1])[0])
    with pytest.raises(ValueError, match="t must be in"):
        sched.q_sample(x0, 50, noise)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_posterior_coefficients_match_the_ddpm_formulas(kind):
    """Ho et al. eq. 7, evaluated in float64 with plain Python loops: c1, c2, β̃."""
    T = 200
    sched = NoiseSchedule.linear(T) if kind == "linear" else NoiseSchedule.cosine(T)
    betas = sched.betas.tolist()
    abar, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        abar.append(prod)
    for t in range(T):
        ap = abar[t - 1] if t > 0 else 1.0
        c1 = betas[t] * math.sqrt(ap) / (1 - abar[t])
        c2 = math.sqrt(1 - betas[t]) * (1 - ap) / (1 - abar[t])
        var = betas[t] * (1 - ap) / (1 - abar[t])
        assert sched.posterior_mean_coef1[t].item() == pytest.approx(c1, rel=1e-12)
        assert sched.posterior_mean_coef2[t].item() == pytest.approx(c2, rel=1e-12)
        assert sched.posterior_variance[t].item() == pytest.approx(var, rel=1e-12, abs=1e-300)
        x0, xt = torch.full((1, 1, 1, 1), 0.3, dtype=torch.float64), torch.full((1, 1, 1, 1), -0.7, dtype=torch.float64)
        mean, v = sched.posterior(x0, xt, t)
        assert mean.item() == pytest.approx(c1 * 0.3 - c2 * 0.7, rel=1e-10, abs=1e-14)
        assert v.item() == pytest.approx(var, rel=1e-10, abs=1e-300)


def test_posterior_matches_diffusers_ddpm_step():
    """Our posterior mean + sqrt(variance)·z equals diffusers' DDPMScheduler.step for the same betas and noise."""
    from diffusers import DDPMScheduler

    T = 100
    sched = NoiseSchedule.cosine(T)
    ref = DDPMScheduler(num_train_timesteps=T, trained_betas=sched.betas.numpy(), clip_sample=False)
    x0, xt = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    for t in (99, 50, 1, 0):
        eps = (xt - sched.alphas_cumprod[t].sqrt().float() * x0) / (1 - sched.alphas_cumprod[t]).sqrt().float()
        out = ref.step(eps, t, xt, generator=torch.Generator().manual_seed(t)).prev_sample
        mean, var = sched.posterior(x0, xt, t)
        z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(t))
        ours = mean + (var.sqrt() * z if t > 0 else 0)
        assert torch.allclose(out, ours, atol=1e-4, rtol=1e-4), t
        if t > 0:
            assert var.item() == pytest.approx(ref._get_variance(t).item(), rel=1e-4)


def test_strided_posterior_matches_diffusers_custom_timesteps():
    """The posterior between non-adjacent steps (strided sampling) as diffusers computes it."""
    from diffusers import DDPMScheduler

    T = 100
    sched = NoiseSchedule.linear(T)
    ref = DDPMScheduler(num_train_timesteps=T, trained_betas=sched.betas.numpy(), clip_sample=False)
    ref.set_timesteps(timesteps=[90, 60, 25, 0])
    x0, xt = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    for t, t_prev in ((90, 60), (60, 25), (25, 0)):
        eps = (xt - sched.alphas_cumprod[t].sqrt().float() * x0) / (1 - sched.alphas_cumprod[t]).sqrt().float()
        out = ref.step(eps, t, xt, generator=torch.Generator().manual_seed(1)).prev_sample
        mean, var = sched.posterior(x0, xt, t, t_prev)
        z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(1))
        assert torch.allclose(out, mean + var.sqrt() * z, atol=1e-4, rtol=1e-4)


def test_schedule_config_round_trip_and_bad_betas():
    for s in (NoiseSchedule.linear(30), NoiseSchedule.cosine(40)):
        assert torch.equal(NoiseSchedule.from_config(s.config).betas, s.betas)
    with pytest.raises(ValueError, match="betas"):
        NoiseSchedule(torch.tensor([0.1, 1.2]))
