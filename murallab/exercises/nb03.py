"""Notebook 03, loss design: the hole-dilated TV, the Gram matrix, what L1 prefers, and the legacy 'MSE'."""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..data import make_mural
from ..losses import l1_loss, total_variation
from ..losses.perceptual import gram_matrix
from ._common import NotYet, call, cases, check, is_blank, number


def check_hole_tv(fn) -> bool:
    """``fn(image, mask) -> scalar``: the PConv paper's total variation over the one-pixel dilation of the holes,
    normalised by C·H·W and averaged over the batch (image ``(B, C, H, W)``, mask 1 = known); compared with
    :func:`murallab.losses.total_variation`."""
    what = "hole-dilated TV"

    def body():
        for x, mask in cases(2):
            want = total_variation(x, mask)
            try:
                got = torch.as_tensor(call(fn, x, mask), dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError):
                raise NotYet("return a number (a scalar tensor or a float)") from None
            if got.numel() == 1 and torch.isclose(got.reshape(()), want, rtol=1e-6):
                continue
            if got.numel() != 1:
                raise NotYet(f"return one number, not a tensor of shape {tuple(got.shape)}")
            got = got.reshape(())
            if torch.isclose(got, total_variation(x), rtol=1e-6):
                hint = ("that is the TV of the whole image (naoto0804's PyTorch port of the paper); keep only pairs "
                        "inside the dilated holes")
            else:
                hole = 1 - mask  # the holes themselves, not dilated
                dh = (x[..., :, 1:] - x[..., :, :-1]).abs() * hole[..., :, 1:] * hole[..., :, :-1]
                dv = (x[..., 1:, :] - x[..., :-1, :]).abs() * hole[..., 1:, :] * hole[..., :-1, :]
                if torch.isclose(got, (dh.sum() + dv.sum()) / x.numel(), rtol=1e-6):
                    hint = "dilate the hole region by one pixel first (a 3×3 max-pool of 1 - mask)"
                elif torch.isclose(got, want * x.numel(), rtol=1e-6):
                    hint = "normalise: divide the sum by C·H·W and the batch size, x.numel(), as the paper's 1/N"
                else:
                    hint = "count a neighbour pair when both pixels lie in the dilated hole region; divide by x.numel()"
            raise NotYet(hint + f" (got {float(got):.6g}, expected {float(want):.6g})")
        return "hole-dilated TV matches murallab.losses.total_variation(x, mask)"

    return check(what, body)


def check_gram(fn) -> bool:
    """``fn(f) -> (B, C, C)``: the Gram matrix of feature maps ``f`` ``(B, C, H, W)``, ``F Fᵀ / (C·H·W)`` with F the
    ``(C, H·W)`` matrix of one image; compared with an einsum of the definition and with
    :func:`murallab.losses.perceptual.gram_matrix`."""
    what = "Gram matrix (the style loss's statistic)"

    def body():
        g = torch.Generator().manual_seed(6)
        f = torch.rand(2, 5, 6, 7, generator=g)
        b, c, h, w = f.shape
        want = torch.einsum("bchw,bdhw->bcd", f.double(), f.double()) / (c * h * w)
        assert torch.allclose(want.float(), gram_matrix(f), rtol=1e-5)  # the two truths agree
        try:
            got = torch.as_tensor(call(fn, f.clone())).double()
        except (TypeError, ValueError, RuntimeError):
            raise NotYet("return a tensor of shape (B, C, C)") from None
        if tuple(got.shape) != (b, c, c):
            raise NotYet(f"shape {tuple(got.shape)}, expected (B, C, C) = {(b, c, c)}: reshape f to (B, C, H·W) and "
                         f"multiply it by its transpose")
        if torch.allclose(got, want, rtol=1e-5):
            return f"{what}: F Fᵀ / (C·H·W), as murallab.losses.perceptual.gram_matrix"
        for factor, hint in ((c * h * w, "divide by C·H·W (the paper's 'K_n' is a typo for this normalisation)"),
                             (c, "divide by C·H·W, not by H·W alone"), (h * w, "divide by C·H·W, not by C alone")):
            if torch.allclose(got, want * factor, rtol=1e-5):
                raise NotYet(hint)
        raise NotYet("G[b, i, j] = Σ over positions of f[b, i] · f[b, j], divided by C·H·W")

    return check(what, body)


def _l1_preference(shift: int = 2) -> str:
    """Which guess has the lowest expected L1 over three equally likely truths (the mural shifted by -k, 0, +k):
    committing to the middle one ("crisp"), their mean, or their per-pixel median. Measured on a procedural mural."""
    mural = make_mural(64, seed=11)
    truths = torch.stack([torch.roll(mural, s, -1) for s in (-shift, 0, shift)])
    guesses = {"crisp": truths[1], "mean": truths.mean(0), "median": truths.median(0).values}
    expected = {name: sum(l1_loss(guess[None], t[None]).item() for t in truths) / 3 for name, guess in guesses.items()}
    return min(expected, key=expected.get)


def check_l1_hedge(answer) -> bool:
    """``answer``: "crisp", "mean" or "median": which guess has the lowest expected L1 when a line is equally likely
    at three positions (shifts -k, 0, +k)."""
    what = "the guess L1 prefers among three positions"

    def body():
        if is_blank(answer):
            number(answer)  # raises the blank hint
        choice = str(answer).strip().lower()
        if choice not in ("crisp", "mean", "median"):
            raise NotYet(f'answer "crisp", "mean" or "median", got {answer!r}')
        want = _l1_preference()
        if choice == want:
            return f"{what}: the {want}"
        if choice == "mean":
            raise NotYet("the mean minimises the expected *squared* error (MSE); for the absolute error, which value "
                         "of a pixel minimises Σ|g - t_i| over three possible values t_i?")
        raise NotYet("per pixel, Σ|g - t_i| is smallest at the middle one of the three values t_i, whichever "
                     "truth it came from")

    return check(what, body)


def check_legacy_mse(fn) -> bool:
    """``fn(gt8, pred8) -> float``: the DLCV-2019 ``evaluate.py`` "MSE" of two uint8 arrays, wrap-around included;
    compared with ``mean(d² mod 256)`` and :func:`murallab.metrics.legacy_dlcv_mse`."""
    what = "the legacy DLCV 'MSE'"

    def body():
        g = np.random.default_rng(9)
        gt8 = g.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        pred8 = g.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        d = gt8.astype(np.int64) - pred8.astype(np.int64)
        want = float(np.mean((d ** 2) % 256))
        assert want == metrics.legacy_dlcv_mse(gt8, pred8)  # the two truths agree
        got = number(call(fn, gt8.copy(), pred8.copy()), "a number")
        if abs(got - want) <= 1e-9 * max(want, 1):
            return f"{what}: each pixel counts d² mod 256"
        if abs(got - np.mean(d ** 2)) < 1e-6 * np.mean(d ** 2):
            raise NotYet("that is the exact MSE; the contest's code subtracted and squared uint8 arrays, which wrap "
                         "modulo 256: compute (gt8 - pred8) ** 2 on the uint8 arrays, or d² mod 256")
        if abs(got - np.mean(((d % 256) ** 2))) < 1e-6 * max(want, 1):
            raise NotYet("the square wraps too: in uint8, (d mod 256)² is taken mod 256 again")
        raise NotYet("np.mean((gt8 - pred8) ** 2) with both arrays kept as uint8")

    return check(what, body)
