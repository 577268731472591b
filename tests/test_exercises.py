"""murallab.exercises: each check accepts the reference answer, rejects a plausible wrong one with a useful hint, and
says "not yet" (without raising) for an unfilled blank; every check a notebook calls exists and has a solution."""

from __future__ import annotations

import importlib
import math
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import murallab.exercises as ex
from murallab import metrics
from murallab.exercises import (check_bin_means, check_blind_composite, check_bootstrap_ci, check_ddim_step,
                                check_mean_gain, check_q_sample, check_cosine_lr, check_coverage, check_early_stopping,
                                check_gram, check_hole_psnr, check_hole_tv, check_iou, check_l1_hedge, check_layers_to_close, check_legacy_mse, check_mask_convention,
                                check_naoto_factor, check_partial_conv, check_precision_recall,
                                check_threshold_choice, check_walk, check_window_size)
from murallab.exercises.solutions import nb01, nb02, nb03, nb04, nb05, nb06, nb07

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECKED = ("01", "02", "03", "04", "05", "06", "07")  # the notebooks whose exercises murallab.exercises covers


def fails(capsys, check, answer, *hints):
    """``check(answer)`` is False, prints "not yet" and every hint fragment."""
    assert check(answer) is False
    out = capsys.readouterr().out
    assert "✗ not yet" in out
    for hint in hints:
        assert hint in out, out
    return out


def passes(capsys, check, answer):
    assert check(answer) is True
    assert "✓ correct" in capsys.readouterr().out


ALL = [name for name in ex.__all__]


@pytest.mark.parametrize("name", ALL)
def test_blank_is_not_yet_without_raising(capsys, name):
    check = getattr(ex, name)
    def blank(*args, **kwargs): ...  # a blank function body: returns None
    for answer in (None, ..., blank):
        assert check(answer) is False
    assert capsys.readouterr().out.count("✗ not yet") == 3


# notebook 01

def walk(n_steps, sigma, radius, step, size=256, rng=None, *, cumsum=True, invert=False, swap=False):
    theta = rng.uniform(0, 2 * np.pi) + (np.cumsum if cumsum else np.asarray)(rng.normal(0, sigma, n_steps))
    y, x = size / 2 + np.cumsum(step * np.sin(theta)), size / 2 + np.cumsum(step * np.cos(theta))
    ii, jj = np.mgrid[:size, :size]
    r, c = (x, y) if swap else (y, x)
    hole = ((ii.ravel()[:, None] - r) ** 2 + (jj.ravel()[:, None] - c) ** 2).min(1).reshape(size, size) <= radius ** 2
    return torch.from_numpy(hole if invert else ~hole).float()[None], (x, y)


def test_walk_check(capsys):
    passes(capsys, check_walk, nb01.my_walk)
    passes(capsys, check_walk, walk)  # computed another way (one distance matrix instead of a loop)
    fails(capsys, check_walk, lambda *a: walk(*a, cumsum=False), "running sum")
    fails(capsys, check_walk, lambda *a: walk(*a, invert=True), "inverted")
    fails(capsys, check_walk, lambda *a: walk(*a, swap=True), "swapped")
    fails(capsys, check_walk, lambda n, s, r, st, size, rng: walk(n, s, r, 2 * st, size, rng), "apart")
    fails(capsys, check_walk, lambda n, s, r, st, size, rng: walk(n, s, r, st, size, np.random.default_rng(0)),
          "different rng seeds")


def test_coverage_check(capsys):
    passes(capsys, check_coverage, nb01.my_coverage)
    fails(capsys, check_coverage, lambda pos, h, w, p: len(pos) * p * p / (h * w), "counted twice")
    fails(capsys, check_coverage, lambda pos, h, w, p: nb01.my_coverage(pos, h, w, p) * h * w, "fraction")


def test_mask_convention_check(capsys):
    passes(capsys, check_mask_convention, nb01.to_known_mask)
    fails(capsys, check_mask_convention, lambda lv, hv: 1 - nb01.to_known_mask(lv, hv), "inverted")
    fails(capsys, check_mask_convention, lambda lv, hv: torch.from_numpy(lv / 255.0)[None], "binarise")
    fails(capsys, check_mask_convention, lambda lv, hv: nb01.to_known_mask(lv, hv)[0], "(1, H, W)")
    fails(capsys, check_mask_convention, lambda lv, hv: nb01.to_known_mask(np.where(lv >= 120, 255, 0), hv), "> 127")


# notebook 02

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
    passes(capsys, check_partial_conv, nb02.my_partial_conv)
    passes(capsys, check_partial_conv, partial_conv)
    naoto = lambda *a, **k: partial_conv(*a, **k, window_factor=False)  # noqa: E731
    fails(capsys, check_partial_conv, naoto, "sum(1)/sum(M)")  # naoto0804 drops the window factor
    fails(capsys, check_partial_conv, lambda *a, **k: 1 / 0, "ZeroDivisionError")
    def with_bias_in_holes(x, mask, weight, bias, **kw):
        y, seen = partial_conv(x, mask, weight, bias, **kw)
        return y + (1 - seen) * bias.view(1, -1, 1, 1), seen

    fails(capsys, check_partial_conv, with_bias_in_holes, "exactly 0")


def test_naoto_factor_check(capsys):
    passes(capsys, check_naoto_factor, nb02.naoto_factor)
    fails(capsys, check_naoto_factor, 7, "every entry")
    fails(capsys, check_naoto_factor, 1 / 49, "upside down")
    fails(capsys, check_naoto_factor, 3 * 49, "shared")
    fails(capsys, check_naoto_factor, "many", "expected a number")


def test_layers_to_close_check(capsys):
    passes(capsys, check_layers_to_close, nb02.layers_to_close_40px)
    fails(capsys, check_layers_to_close, nb02.layers_to_close_40px + 1, "off by one")
    fails(capsys, check_layers_to_close, 7, "w <- (w - (k - 1)) / 2")


def test_window_size_check(capsys):
    passes(capsys, check_window_size, nb02.window_size)
    fails(capsys, check_window_size, 9, "all of them")
    fails(capsys, check_window_size, 32 * 9, "input channels")


# notebook 03

def hole_tv(x, mask, dilate=True, whole=False):
    p = F.max_pool2d(1 - mask, 3, 1, 1) if dilate else 1 - mask
    if whole:
        p = torch.ones_like(mask)
    dh = (x[..., :, 1:] - x[..., :, :-1]).abs() * p[..., :, 1:] * p[..., :, :-1]
    dv = (x[..., 1:, :] - x[..., :-1, :]).abs() * p[..., 1:, :] * p[..., :-1, :]
    return (dh.sum() + dv.sum()) / x.numel()


def test_hole_tv_check(capsys):
    passes(capsys, check_hole_tv, nb03.my_tv)
    passes(capsys, check_hole_tv, hole_tv)
    fails(capsys, check_hole_tv, lambda x, m: hole_tv(x, m, dilate=False), "dilate")
    fails(capsys, check_hole_tv, lambda x, m: hole_tv(x, m, whole=True), "whole image")
    fails(capsys, check_hole_tv, lambda x, m: hole_tv(x, m) * x.numel(), "normalise")


def test_gram_check(capsys):
    passes(capsys, check_gram, nb03.my_gram)
    passes(capsys, check_gram, lambda f: torch.einsum("bihw,bjhw->bij", f, f) / f[0].numel())
    c_hw = lambda f: nb03.my_gram(f) * f.shape[1]  # noqa: E731 - divided by H·W only
    fails(capsys, check_gram, c_hw, "not by H·W alone")
    fails(capsys, check_gram, lambda f: nb03.my_gram(f) * f[0].numel(), "K_n")
    fails(capsys, check_gram, lambda f: f.flatten(2).transpose(1, 2) @ f.flatten(2), "(B, C, C)")


def test_l1_hedge_check(capsys):
    passes(capsys, check_l1_hedge, nb03.l1_prefers)
    passes(capsys, check_l1_hedge, " Median")
    fails(capsys, check_l1_hedge, "mean", "squared")
    fails(capsys, check_l1_hedge, "crisp", "middle one")
    fails(capsys, check_l1_hedge, "blur", '"crisp", "mean" or "median"')


def test_legacy_mse_check(capsys):
    passes(capsys, check_legacy_mse, nb03.my_legacy_mse)
    exact = lambda a, b: float(np.mean((a.astype(np.int64) - b.astype(np.int64)) ** 2))  # noqa: E731
    fails(capsys, check_legacy_mse, exact, "exact MSE")
    wrap_once = lambda a, b: float(np.mean((a - b).astype(np.int64) ** 2))  # noqa: E731
    fails(capsys, check_legacy_mse, wrap_once, "square wraps too")


# notebook 05

def test_iou_check(capsys):
    passes(capsys, check_iou, nb05.my_iou)
    fails(capsys, check_iou, lambda a, b: float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1)), "F1")
    fails(capsys, check_iou, lambda a, b: float((a & b).sum() / (a | b).sum()), "empty")  # 0/0 -> nan


def test_precision_recall_check(capsys):
    passes(capsys, check_precision_recall, nb05.my_precision_recall)
    fails(capsys, check_precision_recall, lambda p, t: nb05.my_precision_recall(p, t)[::-1], "swapped")
    fails(capsys, check_precision_recall, lambda p, t: 0.5, "two numbers")
    iou_twice = lambda p, t: (nb05.my_iou(p, t),) * 2  # noqa: E731
    fails(capsys, check_precision_recall, iou_twice, "expected precision")


def test_threshold_choice_check(capsys):
    from murallab import metrics
    passes(capsys, check_threshold_choice, nb05.my_choose_threshold)
    passes(capsys, check_threshold_choice, lambda p, t, ts: metrics.choose_threshold(p, t, ts)[0])
    strict = lambda p, t, ts: max(ts, key=lambda s: (metrics.iou(p > s, t).item(), -s))  # noqa: E731
    fails(capsys, check_threshold_choice, strict, "prob >= τ")
    best_iou = lambda p, t, ts: max(metrics.choose_threshold(p, t, ts)[1].values())  # noqa: E731
    fails(capsys, check_threshold_choice, best_iou, "not its IoU")
    fails(capsys, check_threshold_choice, lambda p, t, ts: ts[-1], "largest")


def test_blind_composite_check(capsys):
    passes(capsys, check_blind_composite, nb05.my_blind_composite)
    def le(c, r, d, t):
        known = (d <= t).float()
        return known * c + (1 - known) * r
    fails(capsys, check_blind_composite, le, "equals τ")
    fails(capsys, check_blind_composite, lambda c, r, d, t: nb05.my_blind_composite(r, c, d, t), "inverted")
    fails(capsys, check_blind_composite, lambda c, r, d, t: (1 - d) * c + d * r, "threshold first")


def test_cosine_lr_check(capsys):
    passes(capsys, check_cosine_lr, nb04.my_cosine_lr)
    fails(capsys, check_cosine_lr, lambda step, total, lr0: lr0 * (1 + math.cos(step / total)) / 2, "π · step")
    fails(capsys, check_cosine_lr, lambda step, total, lr0: lr0 * (1 - step / total), "expected")  # linear decay


def test_early_stopping_check(capsys):
    passes(capsys, check_early_stopping, nb04.my_early_stopping)
    fails(capsys, check_early_stopping, lambda v, p: (int(np.argmax(v)), len(v)), "expected")  # never stops
    fails(capsys, check_early_stopping, lambda v, p: (len(v) - 1, len(v)), "expected")  # keeps the last epoch
    fails(capsys, check_early_stopping, lambda v, p: int(np.argmax(v)), "two numbers")


def test_hole_psnr_check(capsys):
    passes(capsys, check_hole_psnr, nb04.my_hole_psnr)
    fails(capsys, check_hole_psnr, lambda r, t, m: metrics.psnr(r, t, reduction="none"), "whole image")
    fails(capsys, check_hole_psnr, lambda r, t, m: metrics.psnr(r, t, m, reduction="none") - 20 * math.log10(255),
          "0-255")


# notebook 06

def test_q_sample_check(capsys):
    passes(capsys, check_q_sample, nb06.my_q_sample)
    fails(capsys, check_q_sample, lambda x0, t, n, ab: ab[t] * x0 + (1 - ab[t]) * n, "square roots")
    fails(capsys, check_q_sample, lambda x0, t, n, ab: (1 - ab[t]).sqrt() * x0 + ab[t].sqrt() * n, "swapped")
    fails(capsys, check_q_sample, lambda x0, t, n, ab: ab[t - 1].sqrt() * x0 + (1 - ab[t - 1]).sqrt() * n, "t = ")


def test_ddim_step_check(capsys):
    passes(capsys, check_ddim_step, nb06.my_ddim_step)
    fails(capsys, check_ddim_step, lambda x, x0, a, ap: math.sqrt(ap) * x0 + math.sqrt(1 - ap) * x, "imply")
    fails(capsys, check_ddim_step, lambda x, x0, a, ap: math.sqrt(ap) * x0, "land on")


def test_mean_gain_check(capsys):
    passes(capsys, check_mean_gain, nb06.my_mean_gain)
    passes(capsys, check_mean_gain, lambda n: 10 * math.log10(2 * n / (n + 1)))  # the same, rearranged
    fails(capsys, check_mean_gain, lambda n: 10 * math.log10(n), "truth is a draw too")
    fails(capsys, check_mean_gain, lambda n: 3.0, "at n = 1")
    fails(capsys, check_mean_gain, lambda n: 10 * math.log10(2 / (1 + 1 / n ** 2)), "simulation")


# notebook 07

def test_bin_means_check(capsys):
    passes(capsys, check_bin_means, nb07.my_bin_means)
    closed_left = lambda v, r, e: [v[(r > lo) & (r <= hi)].mean() if ((r > lo) & (r <= hi)).any() else np.nan
                                   for lo, hi in zip(e[:-1], e[1:])]
    fails(capsys, check_bin_means, closed_left, "lo <= r < hi")
    zero_for_empty = lambda v, r, e: [0.0 if np.isnan(m) else m for m in nb07.my_bin_means(v, r, e)]
    fails(capsys, check_bin_means, zero_for_empty, "NaN")


def test_bootstrap_ci_check(capsys):
    passes(capsys, check_bootstrap_ci, nb07.my_bootstrap_ci)
    fails(capsys, check_bootstrap_ci, lambda d, n, s: tuple(np.percentile(d, [2.5, 97.5])), "single images")
    fails(capsys, check_bootstrap_ci, lambda d, n, s: (d.mean() - 0.01, d.mean() + 0.01), "expected about")
    fails(capsys, check_bootstrap_ci, lambda d, n, s: (d.mean() + 1, d.mean() + 2), "contain the mean")


# the notebooks

def _exercise_cells(number: str):
    path = next(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    cells = json.loads(path.read_text())["cells"]
    return path.name, ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("number", CHECKED)
def test_notebook_checks_exist_and_have_solutions(capsys, number):
    """Every check_* a notebook calls is exported by murallab.exercises; the cell that calls it loads the answer
    from murallab.exercises.solutions.nbNN when solutions=True, and that answer passes the check."""
    name, cells = _exercise_cells(number)
    params = cells[0]
    assert re.search(r"^solutions = False", params, re.M), f"{name}: the parameters cell lacks `solutions = False`"
    solutions = importlib.import_module(f"murallab.exercises.solutions.nb{number}")
    code = "\n".join(cells)
    imported = set()
    for group in re.findall(r"from murallab\.exercises import (\([^)]*\)|[^\n]*)", code):
        imported |= {s.strip() for s in group.strip("()").split(",") if s.strip()}
    assert imported and all(n.startswith("check_") for n in imported), f"{name}: {imported}"
    missing = imported - set(ex.__all__)
    assert not missing, f"{name}: {missing} not in murallab.exercises"
    called = set()
    for src in cells:
        for check, answer in re.findall(r"\b(check_\w+)\((\w+)\)", src):
            if check not in imported:
                continue  # a library function of the same prefix (murallab.data.check_mask)
            called.add(check)
            loaded = re.search(rf"from murallab\.exercises\.solutions\.nb{number} import ([\w, ]+)", src)
            assert loaded and answer in [s.strip() for s in loaded.group(1).split(",")], \
                f"{name}: the cell calling {check}({answer}) does not load {answer} from the solutions"
            assert getattr(ex, check)(getattr(solutions, answer)) is True, f"{name}: {check}({answer}) fails"
    assert called == imported, f"{name}: imported but never called: {imported - called}"
    assert 2 <= len(called) <= 5, f"{name}: {len(called)} exercises"
    assert capsys.readouterr().out.count("✓ correct") == len(called)
