"""Notebook 05, blind restoration: IoU, precision and recall, choosing τ on validation data, the blind composite."""

from __future__ import annotations

import torch

from .. import metrics
from ..data import composite
from ._common import NotYet, call, check, number


def check_iou(fn) -> bool:
    """``fn(pred, truth) -> float``: intersection over union of two boolean damage maps (``True`` = damaged),
    counted over all pixels together; 1.0 when both are empty. Compared with :func:`murallab.metrics.iou` of the
    maps flattened into one."""
    what = "IoU"

    def body():
        g = torch.Generator().manual_seed(3)
        cases = [(torch.rand(2, 1, 16, 16, generator=g) > t, torch.rand(2, 1, 16, 16, generator=g) > 0.5)
                 for t in (0.3, 0.7)] + [(torch.zeros(1, 1, 4, 4, dtype=torch.bool),) * 2]
        for pred, truth in cases:
            pooled = pred.reshape(1, -1), truth.reshape(1, -1)  # one map: all pixels of the batch together
            want = float(metrics.iou(*pooled))
            got = number(call(fn, pred.clone(), truth.clone()), "a float", nan=True)
            if abs(got - want) <= 1e-6:  # False for NaN
                continue
            if abs(got - float(metrics.f1(*pooled))) < 1e-6:
                raise NotYet("that is F1 (Dice): 2·|A∩B| / (|A| + |B|); IoU is |A∩B| / |A∪B|")
            if not (pred | truth).any():
                raise NotYet("two empty maps agree perfectly: return 1.0 when the union is empty")
            raise NotYet("IoU = |pred ∧ truth| / |pred ∨ truth|, counted over all pixels")
        return what

    return check(what, body)


def check_precision_recall(fn) -> bool:
    """``fn(pred, truth) -> (precision, recall)`` of a boolean damage map against the truth (``True`` = damaged),
    counted over all pixels together: precision = |pred ∧ truth| / |pred|, recall = |pred ∧ truth| / |truth|. Checked
    against counts of true and false positives and against F1 = 2PR / (P + R) from :func:`murallab.metrics.f1`."""
    what = "precision and recall"

    def body():
        g = torch.Generator().manual_seed(12)
        for t in (0.4, 0.75):
            pred = torch.rand(3, 1, 12, 12, generator=g) > t
            truth = torch.rand(3, 1, 12, 12, generator=g) > 0.6
            tp, fp, fn_ = ((pred & truth).sum().item(), (pred & ~truth).sum().item(), (~pred & truth).sum().item())
            want = (tp / (tp + fp), tp / (tp + fn_))
            f1 = float(metrics.f1(pred.reshape(1, -1), truth.reshape(1, -1)))
            assert abs(2 * want[0] * want[1] / (want[0] + want[1]) - f1) < 1e-6  # the two truths agree
            try:
                p, r = (number(v, "a float") for v in call(fn, pred.clone(), truth.clone()))
            except TypeError:
                raise NotYet("return two numbers: (precision, recall)") from None
            if abs(p - want[0]) <= 1e-6 and abs(r - want[1]) <= 1e-6:
                continue
            if abs(p - want[1]) <= 1e-6 and abs(r - want[0]) <= 1e-6:
                raise NotYet("swapped: precision asks 'of what I flagged, how much is damaged?' (divide by |pred|), "
                             "recall 'of the damage, how much did I flag?' (divide by |truth|)")
            raise NotYet(f"expected precision {want[0]:.4f} and recall {want[1]:.4f}, got {p:.4f} and {r:.4f}: "
                         f"both have |pred ∧ truth| on top")
        return what

    return check(what, body)


def check_threshold_choice(fn) -> bool:
    """``fn(prob, truth, thresholds) -> τ``: the threshold with the best mean per-image IoU of ``prob >= τ`` against
    ``truth``, the lower τ on a tie; compared with :func:`murallab.metrics.choose_threshold`."""
    what = "choosing τ on validation data"

    def body():
        g = torch.Generator().manual_seed(13)
        thresholds = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
        truth = torch.rand(4, 1, 16, 16, generator=g) > 0.7
        # a detector that is right more often than not, its probabilities on the thresholds' grid (ties with τ)
        noise = torch.rand(4, 1, 16, 16, generator=g)
        prob = torch.where(truth, 0.3 + 0.7 * noise, 0.6 * noise)
        for p in (prob, (prob * 10).round() / 10):  # the second hits every threshold exactly: >= or >?
            want, table = metrics.choose_threshold(p, truth, thresholds)
            got = number(call(fn, p.clone(), truth.clone(), list(thresholds)), "a threshold")
            if abs(got - want) <= 1e-9:
                continue
            if any(abs(got - v) < 1e-9 for v in table.values()):
                raise NotYet("return the threshold τ itself, not its IoU")
            strict = {t: metrics.iou(p > t, truth).item() for t in thresholds}
            if abs(got - max(strict, key=lambda t: (strict[t], -t))) < 1e-9:
                raise NotYet("a pixel whose probability equals τ counts as damaged: prob >= τ, not prob > τ")
            raise NotYet(f"for each τ compute metrics.iou(prob >= τ, truth) (the mean over images) and return the τ "
                         f"with the largest; here that is not {got:g}")
        return f"{what}: the IoU-best τ, as murallab.metrics.choose_threshold"

    return check(what, body)


def check_blind_composite(fn) -> bool:
    """``fn(corrupted, restored, damage, tau) -> image``: keep the input where ``damage < tau`` and take the
    restored image elsewhere; compared with :func:`murallab.data.composite` of the thresholded map."""
    what = "blind composite"

    def body():
        g = torch.Generator().manual_seed(14)
        corrupted, restored = torch.rand(2, 3, 10, 10, generator=g), torch.rand(2, 3, 10, 10, generator=g)
        damage = (torch.rand(2, 1, 10, 10, generator=g) * 10).round() / 10  # some probabilities equal τ
        tau = 0.3
        want = composite(corrupted, (damage < tau).float(), restored)
        try:
            got = torch.as_tensor(call(fn, corrupted.clone(), restored.clone(), damage.clone(), tau)).float()
        except (TypeError, ValueError, RuntimeError):
            raise NotYet("return the composite image, a tensor like `corrupted`") from None
        if tuple(got.shape) != tuple(want.shape):
            raise NotYet(f"shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if torch.allclose(got, want, atol=1e-6):
            return f"{what}: the input where P(damage) < τ, the network's image elsewhere"
        if torch.allclose(got, composite(corrupted, (damage <= tau).float(), restored), atol=1e-6):
            raise NotYet("a pixel whose damage probability equals τ counts as damaged: keep the input only where "
                         "damage < τ")
        if torch.allclose(got, composite(restored, (damage < tau).float(), corrupted), atol=1e-6):
            raise NotYet("inverted: keep the *input* where no damage is predicted, the restored image elsewhere")
        if torch.allclose(got, (1 - damage) * corrupted + damage * restored, atol=1e-6):
            raise NotYet("threshold first: known = (damage < τ) is a 0/1 map, not a blend weighted by the probability")
        raise NotYet("known = (damage < τ).float(); out = known · corrupted + (1 - known) · restored")

    return check(what, body)
