"""RePaint: the schedule and its cost (against diffusers' RePaintScheduler and the paper's 2,410), the sampler."""

import pytest
import torch

from murallab.data import random_walk_masks
from murallab.diffusion import CallCounter, NoiseSchedule, TimeUNet, repaint, repaint_plan

diffusers = pytest.importorskip("diffusers")


def test_paper_schedule_costs_2410_model_calls():
    plan = repaint_plan(250, jump_length=10, jump_n_sample=10)
    # 250 steps, plus 24 jump points (t = 0, 10, ..., 230) passed 9 extra times, 10 steps each
    assert plan.model_calls == 250 + 24 * 9 * 10 == 2410
    assert plan.renoise_steps == 24 * 9 * 10 == 2160
    assert len(plan.timesteps) == 4570 and plan.stride == 1
    assert plan.timesteps[0] == 249 and plan.timesteps[-1] == 0


@pytest.mark.parametrize("steps, jump, n", [(250, 10, 10), (100, 5, 3), (50, 10, 1), (37, 4, 2)])
def test_counts_without_resampling_and_small_settings(steps, jump, n):
    plan = repaint_plan(steps, jump, n)
    jump_points = len(range(0, steps - jump, jump))
    assert plan.model_calls == steps + jump_points * (n - 1) * jump
    assert plan.renoise_steps == jump_points * (n - 1) * jump
    if n == 1:
        assert plan.timesteps == list(range(steps - 1, -1, -1))


@pytest.mark.parametrize("T, steps, jump, n", [(250, 250, 10, 10), (1000, 100, 5, 3), (1000, 250, 10, 10),
                                               (60, 20, 3, 4)])
def test_timesteps_match_diffusers_repaint_scheduler(T, steps, jump, n):
    from diffusers import RePaintScheduler

    ref = RePaintScheduler(num_train_timesteps=T)
    ref.set_timesteps(steps, jump_length=jump, jump_n_sample=n)
    plan = repaint_plan(steps, jump, n, num_train_steps=T)
    assert plan.timesteps == ref.timesteps.tolist()
    assert plan.stride == T // steps


def test_plan_rejects_bad_settings():
    with pytest.raises(ValueError):
        repaint_plan(0)
    with pytest.raises(ValueError):
        repaint_plan(100, num_train_steps=50)


@pytest.mark.parametrize("steps", [None, 10])
def test_repaint_calls_the_model_as_planned_and_keeps_known_pixels(steps):
    sched = NoiseSchedule.cosine(30)
    model = CallCounter(TimeUNet(base=8, mults=(1, 2)).eval())
    known = torch.rand(2, 3, 16, 16)
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=3)
    out = repaint(model, sched, known, mask, steps=steps, jump_length=3, jump_n_sample=3, seed=0)
    assert model.calls == repaint_plan(steps or 30, 3, 3, 30).model_calls
    assert out.shape == known.shape
    assert torch.equal(out[mask.expand_as(out) == 1], known[mask.expand_as(known) == 1])
    assert torch.equal(out, repaint(model, sched, known, mask, steps=steps, jump_length=3, jump_n_sample=3, seed=0))


def test_repaint_with_an_oracle_model_recovers_the_image():
    """Given the true noise of x_t (an oracle for an image that it knows), the holes are recovered exactly-ish.

    The oracle predicts ε = (x_t - sqrt(ᾱ_t) x0) / sqrt(1 - ᾱ_t) for the true x0: every step's x̂_0 is then x0.
    """
    sched = NoiseSchedule.cosine(40)
    x0_img = torch.rand(1, 3, 16, 16)
    x0 = x0_img * 2 - 1

    def oracle(x, t, cond=None):
        a = sched.alpha_bar(t, x)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    known = x0_img.clone()
    mask = random_walk_masks(1, 16, hole_ratio=(0.3, 0.4), seed=0)
    known[mask.expand_as(known) == 0] = 0  # the holes' content is not given
    out = repaint(oracle, sched, known, mask, jump_length=5, jump_n_sample=2, seed=0)
    assert torch.allclose(out, x0_img, atol=1e-4)
