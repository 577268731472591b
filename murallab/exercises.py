"""Checks for the notebooks' coding exercises: ``check_...(your_function)`` says whether your answer is right.

Each check runs your function on a few random cases, compares it with the library's implementation, prints
"correct" or a hint about what differs, and returns True or False:

    from murallab.exercises import check_partial_conv
    check_partial_conv(my_partial_conv)      # notebook 02
"""

from __future__ import annotations

import torch

from . import metrics
from .data import random_walk_masks
from .losses import total_variation
from .nn import PartialConv2d


def _report(ok: bool, what: str, hint: str = "") -> bool:
    print(f"✓ correct: {what}" if ok else f"✗ not yet: {what}\n  hint: {hint}")
    return ok


def _cases(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for b, c, h, w in [(1, 3, 16, 16), (2, 3, 21, 17)]:
        yield torch.rand(b, c, h, w, generator=g, dtype=torch.float64), \
            random_walk_masks(b, h, w, hole_ratio=(0.3, 0.5), seed=seed).double()


def check_partial_conv(fn) -> bool:
    """Notebook 02. ``fn(x, mask, weight, bias, stride=1, padding=0) -> (y, new_mask)`` with x ``(B, C, H, W)``,
    mask ``(B, 1, H, W)`` (1 = known), weight ``(C_out, C, k, k)``, bias ``(C_out,)``."""
    g = torch.Generator().manual_seed(1)
    for (x, mask), (stride, padding) in zip(_cases(), [(1, 1), (2, 2)]):
        layer = PartialConv2d(x.shape[1], 4, 5 - 2 * (stride == 1), stride, padding).double()
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=torch.float64))
            layer.bias.copy_(torch.rand(4, generator=g, dtype=torch.float64) + 0.5)
        want, want_mask = layer(x, mask)
        try:
            got, got_mask = fn(x, mask, layer.weight.detach(), layer.bias.detach(), stride=stride, padding=padding)
        except Exception as e:  # noqa: BLE001 - any error is the student's to see
            return _report(False, "partial convolution", f"your function raised {type(e).__name__}: {e}")
        if tuple(got.shape) != tuple(want.shape):
            return _report(False, "partial convolution", f"output shape {tuple(got.shape)}, expected "
                           f"{tuple(want.shape)} (stride {stride}, padding {padding})")
        if not torch.equal(got_mask.to(want_mask.dtype), want_mask):
            return _report(False, "partial convolution", "the new mask differs: m' = 1 where the window saw at "
                           "least one known pixel, 0 elsewhere")
        if not torch.allclose(got, want, atol=1e-8):
            want, seen = want.detach(), want_mask.bool().expand_as(want)
            bias = layer.bias.detach().view(1, -1, 1, 1).expand_as(want)
            scale = float(((got - bias)[seen] / (want - bias)[seen]).median())  # before the bias, yours / ours
            if (got[~seen] != 0).any():
                hint = "windows with no known pixel must output exactly 0, bias included"
            elif abs(scale - 1) > 0.05:
                hint = (f"before the bias your outputs are about {scale:.3g}x the expected ones: multiply W^T(X*M) "
                        f"by sum(1)/sum(M), with sum(1) the window size k*k, then add the bias")
            else:
                hint = "compare your output with murallab.nn.PartialConv2d window by window"
            return _report(False, "partial convolution", hint)
    return _report(True, "partial convolution matches murallab.nn.PartialConv2d")


def check_hole_tv(fn) -> bool:
    """Notebook 03. ``fn(image, mask) -> scalar``: the PConv paper's total variation over the one-pixel dilation
    of the holes, normalised by C·H·W and averaged over the batch (image ``(B, C, H, W)``, mask 1 = known)."""
    for x, mask in _cases(2):
        want = total_variation(x, mask)
        try:
            got = torch.as_tensor(fn(x, mask), dtype=torch.float64)
        except Exception as e:  # noqa: BLE001
            return _report(False, "hole-dilated TV", f"your function raised {type(e).__name__}: {e}")
        if torch.isclose(got, want, rtol=1e-6):
            continue
        if torch.isclose(got, total_variation(x), rtol=1e-6):
            hint = "that is the TV of the whole image (naoto0804's port); keep only pairs inside the dilated holes"
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
        return _report(False, "hole-dilated TV", hint + f" (got {float(got):.6g}, expected {float(want):.6g})")
    return _report(True, "hole-dilated TV matches murallab.losses.total_variation(x, mask)")


def check_iou(fn) -> bool:
    """Notebook 05. ``fn(pred, truth) -> float``: intersection over union of two boolean damage maps (``True`` =
    damaged); 1.0 when both are empty."""
    g = torch.Generator().manual_seed(3)
    cases = [(torch.rand(2, 1, 16, 16, generator=g) > t, torch.rand(2, 1, 16, 16, generator=g) > 0.5)
             for t in (0.3, 0.7)] + [(torch.zeros(1, 1, 4, 4, dtype=torch.bool),) * 2]
    for pred, truth in cases:
        pooled = pred.reshape(1, -1), truth.reshape(1, -1)  # one map: all pixels of the batch together
        want = float(metrics.iou(*pooled))
        try:
            got = float(fn(pred, truth))
        except Exception as e:  # noqa: BLE001
            return _report(False, "IoU", f"your function raised {type(e).__name__}: {e}")
        if not abs(got - want) <= 1e-6:  # also catches NaN
            hint = ("that is F1 (Dice): 2·|A∩B| / (|A| + |B|); IoU is |A∩B| / |A∪B|"
                    if abs(got - float(metrics.f1(*pooled))) < 1e-6
                    else "two empty maps agree perfectly: return 1.0 when the union is empty"
                    if not (pred | truth).any()
                    else "IoU = |pred ∧ truth| / |pred ∨ truth|, counted over all pixels")
            return _report(False, "IoU", hint)
    return _report(True, "IoU")
