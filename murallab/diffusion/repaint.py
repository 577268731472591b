"""RePaint (Lugmayr et al., CVPR 2022): inpainting with an *unconditional* diffusion model.

At every reverse step the known pixels are not predicted but re-noised from the input to the current noise
level and pasted in; the model only fills the holes:

    x_{t'}^known   = sqrt(ᾱ_{t'}) x_0 + sqrt(1 - ᾱ_{t'}) z               (q_sample of the known image)
    x_{t'}^unknown ~ DDPM step from x_t with the model's ε̂
    x_{t'}         = m ⊙ x_{t'}^known + (1 - m) ⊙ x_{t'}^unknown

Pasting alone leaves seams: the holes never "see" the known pixels they were pasted next to. RePaint therefore
*resamples*: after a step it jumps ``jump_length`` steps back up the chain (re-noising with q(x_t | x_{t'})) and
denoises them again, ``jump_n_sample - 1`` extra times at every ``jump_length``-th step, so each pass harmonises
the holes with the context a little more. The price is model calls: :func:`repaint_plan` counts them before
running. The paper's schedule, 250 steps with jump length 10 and 10 resamplings, costs 2,410 calls, against
250 for plain DDPM.

The t-sequence is the one of diffusers' ``RePaintScheduler.set_timesteps`` (the tests compare them): a list of
times where an entry below its predecessor is a model call at that t (x_t -> x_{t - stride}), and an entry above
it is a re-noising step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .samplers import _finish, _randn, _start, ddpm_step, paste_known, predict_eps
from .schedule import NoiseSchedule


class RePaintPlan(NamedTuple):
    timesteps: list[int]   # diffusers' RePaint t-sequence, in training steps
    model_calls: int       # entries below their predecessor: one network evaluation each
    renoise_steps: int     # entries above their predecessor: forward (noising) jumps, no network
    stride: int            # training steps per inference step


def repaint_plan(steps: int, jump_length: int = 10, jump_n_sample: int = 10,
                 num_train_steps: int | None = None) -> RePaintPlan:
    """The RePaint schedule and its cost, computed without running anything.

    Args:
        steps: inference steps (the paper: 250, equal to its training steps).
        jump_length: how many steps each resampling jump goes back up (j = 10 in the paper).
        jump_n_sample: how often each jump point is passed (r = 10; 1 = no resampling, plain pasting).
        num_train_steps: the model's T (default ``steps``); times are multiplied by ``T // steps``.
    """
    num_train_steps = steps if num_train_steps is None else num_train_steps
    if not 1 <= steps <= num_train_steps or jump_length < 1 or jump_n_sample < 1:
        raise ValueError(f"need 1 <= steps <= T, jump_length >= 1, jump_n_sample >= 1; got steps={steps}, "
                         f"T={num_train_steps}, jump_length={jump_length}, jump_n_sample={jump_n_sample}")
    jumps = {j: jump_n_sample - 1 for j in range(0, steps - jump_length, jump_length)}
    ts, t = [], steps
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                ts.append(t)
    stride = num_train_steps // steps
    ts = [t * stride for t in ts]
    calls = sum(1 for prev, t in zip([ts[0] + 1] + ts, ts) if t < prev)
    return RePaintPlan(ts, calls, len(ts) - calls, stride)


@torch.no_grad()
def repaint(model, schedule: NoiseSchedule, known: torch.Tensor, mask: torch.Tensor, *, steps: int | None = None,
            jump_length: int = 10, jump_n_sample: int = 10, cond=None, seed=0, clip: bool = True) -> torch.Tensor:
    """Inpaint ``known`` (``(B, 3, H, W)`` in [0, 1]) where ``mask`` is 0, with an unconditional model (or a
    conditional one given a ``cond`` that hides the known pixels, as :class:`DiffusionRestorer` does).

    ``steps`` defaults to the schedule's T. Costs ``repaint_plan(...).model_calls`` network evaluations.
    Returns ``(B, 3, H, W)`` in [0, 1]; known pixels are exactly ``known``.
    """
    plan = repaint_plan(steps or schedule.num_steps, jump_length, jump_n_sample, schedule.num_steps)
    x, g = _start(schedule, None, known, mask, None, seed)
    m = mask.to(known.dtype)

    def below(t):  # the state a model call at t lands on (-1: the clean image)
        return max(t - plan.stride, -1)

    t_last = plan.timesteps[0] + 1
    for t in plan.timesteps:
        if t < t_last:  # reverse step x_t -> x_{t'}: holes from the model, known pixels re-noised from x0
            eps = predict_eps(model, schedule, x, t, cond)
            unknown = ddpm_step(schedule, eps, t, below(t), x, _randn(x.shape, g, x.device), clip)
            x = paste_known(schedule, unknown, known, m, below(t), g)
        else:  # resampling jump x_{below(t_last)} -> x_{below(t)}: q between two noise levels, ᾱ ratio
            ratio = schedule.alpha_bar(below(t), x) / schedule.alpha_bar(below(t_last), x)
            x = ratio.sqrt() * x + (1 - ratio).sqrt() * _randn(x.shape, g, x.device)
        t_last = t
    return _finish(x, known, mask)
