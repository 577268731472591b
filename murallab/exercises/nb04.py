"""Notebook 04, phased training: the cosine learning rate, early stopping, and the hole-only PSNR."""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import metrics
from ._common import NotYet, call, cases, check, number


def check_cosine_lr(fn) -> bool:
    """``fn(step, total, lr0) -> lr``: the cosine schedule ``lr0 · (1 + cos(π · step / total)) / 2`` that each phase
    of ``fit`` follows. Compared with ``torch.optim.lr_scheduler.CosineAnnealingLR`` stepped ``step`` times."""
    what = "cosine learning rate"

    def body():
        for total, lr0 in ((10, 1e-3), (37, 5e-4)):
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
            for step in range(total + 1):
                want = opt.param_groups[0]["lr"]
                got = number(call(fn, step, total, lr0), "a learning rate")
                if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):
                    if step == 0:
                        raise NotYet(f"at step 0 the rate is lr0 itself ({lr0:g}), got {got:g}")
                    if math.isclose(got, lr0 * (1 + math.cos(step / total)) / 2, rel_tol=1e-6):
                        raise NotYet("the angle is π · step / total: half a turn of the cosine over the phase")
                    raise NotYet(f"step {step} of {total}: expected {want:.6g}, got {got:.6g} "
                                 "(lr0 · (1 + cos(π · step / total)) / 2; it ends at 0)")
                opt.step()
                sched.step()
        return "cosine learning rate matches torch's CosineAnnealingLR"

    return check(what, body)


def _early_stopping_truth(scores, patience):
    """Kept epoch and epochs run, from the running maximum: the run stops at the first epoch that is ``patience``
    epochs past the last improvement."""
    s = np.asarray(scores, dtype=float)
    best_at = np.array([int(np.argmax(s[:i + 1])) for i in range(len(s))])  # first index of the running maximum
    late = np.nonzero(np.arange(len(s)) - best_at >= patience)[0]
    run = int(late[0]) + 1 if len(late) else len(s)
    return int(best_at[run - 1]), run


def check_early_stopping(fn) -> bool:
    """``fn(val_psnr, patience) -> (kept, epochs_run)``: ``val_psnr`` is a list, one validation score per epoch
    (higher is better). Training stops after ``patience`` epochs without a better score (ties do not count as
    better); ``kept`` is the 0-based epoch whose weights are kept (the best before stopping), ``epochs_run`` how many
    epochs ran. Compared with the same rule computed from the running maximum."""
    what = "early stopping"

    def body():
        rng = np.random.default_rng(4)
        examples = [[20.0, 21.0, 21.5, 21.4, 21.3, 21.6, 21.0], [25.0, 24.0, 23.0], [1.0, 2.0, 3.0, 4.0],
                    [5.0, 5.0, 5.0, 5.0]] + [list(np.round(rng.normal(25, 1, 9), 1)) for _ in range(20)]
        for scores in examples:
            for patience in (1, 2, 3):
                want = _early_stopping_truth(scores, patience)
                out = call(fn, list(scores), patience)
                try:
                    got = tuple(int(number(v, "an epoch number")) for v in out)
                except TypeError:
                    raise NotYet("return two numbers: (kept, epochs_run)") from None
                if got != want:
                    raise NotYet(f"scores {scores}, patience {patience}: expected (kept, epochs_run) = {want}, "
                                 f"got {got}. A phase stops once `patience` epochs in a row failed to beat the best "
                                 "so far; it keeps the best epoch's weights")
        return "early stopping keeps the right epoch and stops at the right one"

    return check(what, body)


def check_hole_psnr(fn) -> bool:
    """``fn(restored, truth, mask) -> (B,) tensor``: PSNR in dB over the hole pixels only (mask 0), on the 0-255
    scale, per image. Compared with :func:`murallab.metrics.psnr` with the mask."""
    what = "hole-only PSNR"

    def body():
        for i, (x, mask) in enumerate(cases(6)):
            truth = x
            restored = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(i),
                                                dtype=x.dtype)).clamp(0, 1)
            want = metrics.psnr(restored, truth, mask, reduction="none")
            got = torch.as_tensor(call(fn, restored.clone(), truth.clone(), mask.clone()), dtype=want.dtype).reshape(-1)
            if got.shape != want.shape:
                raise NotYet(f"one PSNR per image: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
            if torch.allclose(got, want, atol=1e-6):
                continue
            whole = metrics.psnr(restored, truth, reduction="none")
            if torch.allclose(got, whole, atol=1e-6):
                raise NotYet("that is the PSNR of the whole image: average the squared error over the hole pixels "
                             "(mask == 0) only")
            if torch.allclose(got, want - 20 * math.log10(255), atol=1e-4):
                raise NotYet("on the 0-255 scale: PSNR = 10 · log10(255² / MSE), with MSE of 255 · (restored - truth)")
            raise NotYet("PSNR = 10 · log10(255² / MSE), MSE over the hole pixels and the 3 channels, per image")
        return "hole-only PSNR matches murallab.metrics.psnr(restored, truth, mask)"

    return check(what, body)
