"""murallab.exercises: each check accepts a correct answer and rejects a wrong one with a useful hint."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from murallab.exercises import check_hole_tv, check_iou, check_partial_conv


def partial_conv(x, mask, weight, bias, stride=1, padding=0, window_factor=True):
    k = weight.shape[-1]
    cols = F.unfold(x * mask, k, padding=padding, stride=stride)
    sum_m = F.unfold(mask, k, padding=padding, stride=stride).sum(1)
    raw = weight.reshape(len(weight), -1) @ cols
    factor = (k * k if window_factor else 1) / sum_m.clamp(min=1)
    seen = (sum_m > 0)[:, None]
    y = torch.where(seen, raw * factor[:, None] + bias[:, None], 0.0)
    h = (x.shape[-2] + 2 * padding - k) // stride + 1
    return y.reshape(len(x), len(weight), h, -1), seen.reshape(len(x), 1, h, -1).to(x.dtype)


def test_partial_conv_check(capsys):
    assert check_partial_conv(partial_conv)
    assert "✓ correct" in capsys.readouterr().out
    naoto = lambda *a, **k: partial_conv(*a, **k, window_factor=False)  # noqa: E731
    assert not check_partial_conv(naoto)
    assert "sum(1)/sum(M)" in capsys.readouterr().out  # naoto0804 drops the window factor
    assert not check_partial_conv(lambda *a, **k: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def hole_tv(x, mask, dilate=True, whole=False):
    p = F.max_pool2d(1 - mask, 3, 1, 1) if dilate else 1 - mask
    if whole:
        p = torch.ones_like(mask)
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs() * p[..., :, 1:] * p[..., :, :-1]
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs() * p[..., 1:, :] * p[..., :-1, :]
    return (dh.sum() + dv.sum()) / x.numel()


def test_hole_tv_check(capsys):
    assert check_hole_tv(hole_tv)
    capsys.readouterr()
    assert not check_hole_tv(lambda x, m: hole_tv(x, m, dilate=False))
    assert "dilate" in capsys.readouterr().out
    assert not check_hole_tv(lambda x, m: hole_tv(x, m, whole=True))
    assert "whole image" in capsys.readouterr().out
    assert not check_hole_tv(lambda x, m: hole_tv(x, m) * x.numel())
    assert "normalise" in capsys.readouterr().out


def test_iou_check(capsys):
    def iou(a, b):
        union = (a | b).sum()
        return 1.0 if union == 0 else float((a & b).sum() / union)

    assert check_iou(iou)
    capsys.readouterr()
    assert not check_iou(lambda a, b: float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1)))
    assert "F1" in capsys.readouterr().out
    assert not check_iou(lambda a, b: float((a & b).sum() / (a | b).sum()))  # 0/0 -> nan on empty maps
    assert "empty" in capsys.readouterr().out
