"""What a diffusion network predicts ("eps", "x0", "v"): ``NoiseSchedule.target`` / ``split`` against each other and
against diffusers, DDIM driven by x0- and v-models against diffusers' DDIMScheduler, and ``predict_eps``."""

import pytest
import torch
from torch import nn

from murallab.diffusion import PREDICTIONS, CallCounter, NoiseSchedule, TimeUNet, ddim_step, predict_eps

diffusers = pytest.importorskip("diffusers")

T = 1000
SCHEDULES = {"cosine": NoiseSchedule.cosine, "linear": NoiseSchedule.linear}


def _pair(seed=0, shape=(2, 3, 8, 8), dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    noise = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    return x0, noise


def _alpha_bar(schedule, t) -> float:
    """ᾱ_t computed here from the betas (not with the schedule's tables)."""
    return float(torch.prod(1 - schedule.betas[: t + 1]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [0, T // 2, T - 1])
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_split_inverts_target(kind, prediction, t, dtype):
    """split(target(x0, ε, t), x_t, t) gives back (ε, x0) for x_t = q_sample(x0, t, ε), at every noise level.

    Tolerance: x_t is rounded to the dtype (a few ulps of |x_t| <= ~5). Recovering ε from an "x0" output divides
    x_t - sqrt(ᾱ) x̂_0 by sqrt(1 - ᾱ), and recovering x_0 from an "eps" output divides by sqrt(ᾱ); those divisions
    amplify the rounding of x_t by 1 / sqrt(...). At t = 0, 1 - ᾱ_0 is ~1e-4 (linear) or ~4e-5 (cosine), so the ε
    recovered from an x0 output carries ~100x the rounding error (measured ~5e-6 in float32); at t = T-1 on the
    cosine schedule ᾱ is ~2e-9 and the x_0 recovered from an eps output carries ~2e4x it (measured ~3e-3). The
    tolerance is scaled by exactly that amplification, nothing else: a wrong formula misses by O(1) or more.
    """
    schedule = SCHEDULES[kind](T)
    x0, noise = _pair(dtype=dtype)
    x_t = schedule.q_sample(x0, t, noise)
    a = _alpha_bar(schedule, t)
    base = 8 * torch.finfo(dtype).eps * 5  # a few ulps of |x_t|
    eps_tol = base * (1 / (1 - a) ** 0.5 if prediction == "x0" else 1.0)
    x0_tol = base * (1 / a ** 0.5 if prediction == "eps" else 1.0)
    out = schedule.target(x0, noise, t, prediction)
    eps_hat, x0_hat = schedule.split(out, x_t, t, prediction)
    assert eps_hat.shape == x0_hat.shape == x0.shape and eps_hat.dtype == dtype
    assert torch.allclose(eps_hat, noise, rtol=0, atol=eps_tol), (eps_hat - noise).abs().max()
    assert torch.allclose(x0_hat, x0, rtol=0, atol=x0_tol), (x0_hat - x0).abs().max()


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_target_and_split_by_formula_with_a_batch_of_steps(kind):
    """A batch whose samples sit at different t: each sample's target is its own formula (Salimans & Ho's v with
    ᾱ from the betas), and split is consistent with q_sample per sample."""
    schedule = SCHEDULES[kind](T)
    x0, noise = _pair(seed=1, shape=(3, 3, 4, 4))
    t = torch.tensor([0, 400, 999])
    x_t = schedule.q_sample(x0, t, noise)
    assert torch.equal(schedule.target(x0, noise, t, "eps"), noise)  # copied
    assert torch.equal(schedule.target(x0, noise, t, "x0"), x0)
    v = schedule.target(x0, noise, t, "v")
    for i, ti in enumerate(t.tolist()):
        a = _alpha_bar(schedule, ti)
        want = a ** 0.5 * noise[i] - (1 - a) ** 0.5 * x0[i]
        assert torch.allclose(v[i], want, atol=1e-6), ti
        eps_i, x0_i = schedule.split(v[i:i + 1], x_t[i:i + 1], ti, "v")
        assert torch.allclose(eps_i[0], noise[i], atol=1e-5) and torch.allclose(x0_i[0], x0[i], atol=1e-5)
    # "v" is a rotation of (ε, x0): ε² + x0² = v² + x_t² pixelwise
    assert torch.allclose(noise ** 2 + x0 ** 2, v ** 2 + x_t ** 2, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_v_target_matches_diffusers_get_velocity(kind):
    from diffusers import DDPMScheduler

    schedule = SCHEDULES[kind](T)
    ref = DDPMScheduler(num_train_timesteps=T, trained_betas=schedule.betas.numpy())
    x0, noise = _pair(seed=2, shape=(4, 3, 8, 8))
    t = torch.tensor([0, 1, 500, 999])
    want = ref.get_velocity(x0, noise, t)
    got = schedule.target(x0, noise, t, "v")
    # diffusers keeps ᾱ in float32 (cumprod of 1000 float32 factors), ours in float64
    assert torch.allclose(got, want, rtol=1e-4, atol=2e-5), (got - want).abs().max()
    for ti in (0, 999):  # an int t, as the samplers pass it
        assert torch.allclose(schedule.target(x0, noise, ti, "v"), ref.get_velocity(x0, noise, torch.tensor([ti])),
                              rtol=1e-4, atol=2e-5)


def fake_output(x, t):
    """A deterministic stand-in for a network's x̂_0 or v̂: depends on x_t and t, and leaves [-1, 1] (so clipping
    x̂_0 matters)."""
    t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
    return 1.4 * torch.sin(0.8 * x + t / 37)


@pytest.mark.parametrize("eta", [0.0, 0.5])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("prediction,ref_type", [("x0", "sample"), ("v", "v_prediction")])
def test_ddim_step_with_x0_and_v_models_matches_diffusers(prediction, ref_type, clip, eta):
    from diffusers import DDIMScheduler

    steps = 50
    sched = NoiseSchedule.linear(T)
    ref = DDIMScheduler(num_train_timesteps=T, trained_betas=sched.betas.numpy(), clip_sample=clip,
                        prediction_type=ref_type)
    ref.set_timesteps(steps)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=g)
    checked = 0
    for t in ref.timesteps.tolist()[::7] + [0]:
        t_prev = t - T // steps  # diffusers' previous step; -20 at the end stands for ᾱ = 1
        out, noise = fake_output(x, t), torch.randn(x.shape, generator=g)
        want = ref.step(out, t, x, eta=eta, variance_noise=noise).prev_sample
        eps = sched.split(out, x, t, prediction)[0]
        got = ddim_step(sched, eps, t, max(t_prev, -1), x, eta, noise, clip)
        assert torch.allclose(got, want, atol=2e-5, rtol=1e-4), (t, (got - want).abs().max())
        checked += 1
    assert checked == 9


class FixedX0(nn.Module):
    """A "network" that predicts a fixed clean image x̂_0, whatever it is given."""

    prediction = "x0"

    def __init__(self, x0):
        super().__init__()
        self.x0, self.seen = x0, []

    def forward(self, x_t, t, cond=None):
        self.seen.append((t.clone(), cond))
        return self.x0


@pytest.mark.parametrize("t", [3, 500, 990])
def test_predict_eps_reads_the_models_prediction(t):
    """An x0-model's output is turned into the ε that, with that x0, reconstructs x_t (the ε it was noised with)."""
    sched = NoiseSchedule.cosine(T)
    x0, noise = _pair(seed=3)
    x_t = sched.q_sample(x0, t, noise)
    model = FixedX0(x0)
    cond = torch.zeros(2, 4, 8, 8)
    eps = predict_eps(model, sched, x_t, t, cond)
    a = _alpha_bar(sched, t)
    assert torch.allclose(eps, noise, atol=1e-4 / (1 - a) ** 0.5)
    assert torch.allclose(a ** 0.5 * x0 + (1 - a) ** 0.5 * eps, x_t, atol=1e-5)
    step, given = model.seen[-1]
    assert torch.equal(step, torch.full((2,), t)) and given is cond

    # the same output read as ε (a model without ``prediction``) is passed through unchanged
    def plain(x, s, c=None):
        return x0

    assert torch.equal(predict_eps(plain, sched, x_t, t), x0)


def test_call_counter_keeps_the_prediction():
    sched = NoiseSchedule.linear(100)
    x0, noise = _pair(seed=4)
    x_t = sched.q_sample(x0, 50, noise)
    counted = CallCounter(FixedX0(x0))
    assert counted.prediction == "x0"
    assert torch.allclose(predict_eps(counted, sched, x_t, 50), noise, atol=1e-5)
    assert counted.calls == 1
    assert CallCounter(TimeUNet(base=8, mults=(1, 2), prediction="v")).prediction == "v"
    assert CallCounter(nn.Identity()).prediction == "eps"  # no attribute: an ε-model, as predict_eps assumes


def test_bad_prediction_is_a_value_error_naming_the_choices():
    sched = NoiseSchedule.linear(10)
    x0, noise = _pair()
    calls = [lambda: TimeUNet(base=8, mults=(1, 2), prediction="bad"),
             lambda: sched.target(x0, noise, 3, "bad"),
             lambda: sched.split(x0, noise, 3, "bad")]
    for call in calls:
        with pytest.raises(ValueError, match="bad") as e:
            call()
        assert all(repr(p) in str(e.value) for p in ("eps", "x0", "v")), str(e.value)
