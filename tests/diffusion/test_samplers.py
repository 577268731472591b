"""DDPM and DDIM: one step against diffusers, whole loops against diffusers' loop, invariants of the samplers."""

import pytest
import torch

from murallab.data import random_walk_masks
from murallab.diffusion import (CallCounter, NoiseSchedule, TimeUNet, ddim_sample, ddim_step, ddpm_sample, ddpm_step,
                                mask_condition, timesteps)

diffusers = pytest.importorskip("diffusers")


def fake_eps(x, t, cond=None):
    """A deterministic stand-in for a network: depends on x_t and t, so the samplers' bookkeeping shows."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return 0.3 * x + 0.1 * torch.sin(t / 7 + x)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [False, True])
def test_ddim_step_matches_diffusers(eta, clip):
    from diffusers import DDIMScheduler

    T, steps = 1000, 50
    sched = NoiseSchedule.linear(T)
    ref = DDIMScheduler(num_train_timesteps=T, trained_betas=sched.betas.numpy(), clip_sample=clip)
    ref.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=g)
    for t in ref.timesteps.tolist()[::7] + [0]:
        t_prev = t - T // steps  # diffusers' previous step; -20 at the end stands for ᾱ = 1
        eps, noise = fake_eps(x, t), torch.randn(x.shape, generator=g)
        want = ref.step(eps, t, x, eta=eta, variance_noise=noise).prev_sample
        got = ddim_step(sched, eps, t, max(t_prev, -1), x, eta, noise, clip)
        assert torch.allclose(got, want, atol=2e-5, rtol=1e-4), t


def test_ddim_eta_one_equals_the_ddpm_step():
    """With adjacent steps and η = 1, DDIM's step is the DDPM posterior step (Song et al., sec. 4.1)."""
    sched = NoiseSchedule.cosine(100)
    x, noise = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    for t in (99, 40, 3):
        eps = fake_eps(x, t)
        a = ddim_step(sched, eps, t, t - 1, x, 1.0, noise, clip=False)
        b = ddpm_step(sched, eps, t, t - 1, x, noise, clip=False)
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("steps", [None, 13])
def test_ddpm_sample_matches_the_diffusers_loop(steps):
    """The whole ancestral loop, full and strided, against DDPMScheduler with the same seed and timesteps."""
    from diffusers import DDPMScheduler

    T = 60
    sched = NoiseSchedule.cosine(T)
    ref = DDPMScheduler(num_train_timesteps=T, trained_betas=sched.betas.numpy(), clip_sample=True)
    ts = timesteps(T, steps)
    if steps is not None:
        ref.set_timesteps(timesteps=ts)
    assert ref.timesteps.tolist() == ts
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 8, 8, generator=g)
    for t in ref.timesteps:
        x = ref.step(fake_eps(x, t), t, x, generator=g).prev_sample
    ours = ddpm_sample(fake_eps, sched, (2, 3, 8, 8), steps=steps, seed=3)
    assert torch.allclose(ours, ((x + 1) / 2).clamp(0, 1), atol=1e-4)


def test_timesteps():
    assert timesteps(10) == list(range(9, -1, -1))
    ts = timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and all(a > b for a, b in zip(ts, ts[1:]))
    with pytest.raises(ValueError):
        timesteps(10, 11)


def test_ddim_eta_zero_is_deterministic():
    """η = 0: the result depends on x_T only, not on the generator; η > 0 draws fresh noise every step."""
    sched = NoiseSchedule.cosine(100)
    x_T = torch.randn(2, 3, 8, 8)
    a = ddim_sample(fake_eps, sched, x_T.shape, steps=10, eta=0.0, seed=1, x_T=x_T)
    b = ddim_sample(fake_eps, sched, x_T.shape, steps=10, eta=0.0, seed=2, x_T=x_T)
    assert torch.equal(a, b)
    c = ddim_sample(fake_eps, sched, x_T.shape, steps=10, eta=1.0, seed=1, x_T=x_T)
    d = ddim_sample(fake_eps, sched, x_T.shape, steps=10, eta=1.0, seed=2, x_T=x_T)
    assert not torch.equal(c, d)
    assert torch.equal(ddim_sample(fake_eps, sched, x_T.shape, steps=10, seed=5),
                       ddim_sample(fake_eps, sched, x_T.shape, steps=10, seed=5))


def test_samplers_keep_known_pixels_exactly_and_count_calls():
    sched = NoiseSchedule.cosine(50)
    known = torch.rand(3, 3, 16, 16) * 0.9 + 0.05  # values that the [-1, 1] round trip would not reproduce exactly
    mask = random_walk_masks(3, 16, hole_ratio=(0.2, 0.4), seed=0)
    model = CallCounter(TimeUNet(cond_channels=4, base=8, mults=(1, 2)).eval())
    cond = mask_condition(known, mask)
    for name, fn, calls in (("ddpm", lambda: ddpm_sample(model, sched, known=known, mask=mask, cond=cond), 50),
                            ("ddpm-10", lambda: ddpm_sample(model, sched, known=known, mask=mask, cond=cond,
                                                            steps=10), 10),
                            ("ddim", lambda: ddim_sample(model, sched, known=known, mask=mask, cond=cond, steps=7,
                                                         eta=0.3), 7)):
        model.calls = 0
        out = fn()
        assert model.calls == calls, name
        assert out.shape == known.shape and out.dtype == known.dtype
        assert torch.equal(out[mask.expand_as(out) == 1], known[mask.expand_as(known) == 1]), name
        assert out.min() >= 0 and out.max() <= 1
        assert not torch.equal(out, known)


def test_mask_condition_channels():
    known, mask = torch.rand(2, 3, 8, 8), random_walk_masks(2, 8, hole_ratio=(0.2, 0.4), seed=1)
    c = mask_condition(known, mask)
    assert c.shape == (2, 4, 8, 8)
    assert torch.equal(c[:, 3:], mask)
    assert torch.equal(c[:, :3] * (1 - mask), torch.zeros_like(known))  # hole content is hidden
    assert torch.allclose(c[:, :3] * mask, (known * 2 - 1) * mask)
    with pytest.raises(ValueError, match="binary"):
        mask_condition(known, mask * 0.5)


def test_sampler_argument_errors():
    sched = NoiseSchedule.linear(10)
    with pytest.raises(ValueError, match="shape"):
        ddpm_sample(fake_eps, sched)
    with pytest.raises(ValueError, match="known image"):
        ddim_sample(fake_eps, sched, (1, 3, 8, 8), mask=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="needs noise"):
        ddim_step(sched, torch.zeros(1, 3, 2, 2), 5, 4, torch.zeros(1, 3, 2, 2), eta=0.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_samplers_on_cuda():
    sched = NoiseSchedule.cosine(20)
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2)).cuda().eval()
    known = torch.rand(2, 3, 16, 16, device="cuda")
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=0).cuda()
    out = ddim_sample(model, sched, known=known, mask=mask, cond=mask_condition(known, mask), steps=5)
    assert out.device.type == "cuda" and torch.equal(out[mask.expand_as(out) == 1], known[mask.expand_as(out) == 1])
