"""Notebook 02, partial convolution: the layer from its formula, its window factor, and how a hole closes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import PartialConv2d
from ..nn.blocks import encoder_plan
from ._common import NotYet, call, cases, check, number


def check_partial_conv(fn) -> bool:
    """``fn(x, mask, weight, bias, stride=1, padding=0) -> (y, new_mask)`` with x ``(B, C, H, W)``,
    mask ``(B, 1, H, W)`` (1 = known), weight ``(C_out, C, k, k)``, bias ``(C_out,)``; compared with
    :class:`murallab.nn.PartialConv2d` on random float64 cases."""
    what = "partial convolution"

    def body():
        g = torch.Generator().manual_seed(1)
        for (x, mask), (stride, padding) in zip(cases(), [(1, 1), (2, 2)]):
            layer = PartialConv2d(x.shape[1], 4, 5 - 2 * (stride == 1), stride, padding).double()
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g, dtype=torch.float64))
                layer.bias.copy_(torch.rand(4, generator=g, dtype=torch.float64) + 0.5)
            want, want_mask = (t.detach() for t in layer(x, mask))
            got = call(fn, x, mask, layer.weight.detach(), layer.bias.detach(), stride=stride, padding=padding)
            try:
                got, got_mask = (torch.as_tensor(t).double() for t in got)
            except (TypeError, ValueError, RuntimeError):
                raise NotYet("return two tensors: (output, new_mask)") from None
            if tuple(got.shape) != tuple(want.shape):
                raise NotYet(f"output shape {tuple(got.shape)}, expected {tuple(want.shape)} (stride {stride}, "
                             f"padding {padding})")
            if tuple(got_mask.shape) != tuple(want_mask.shape) or not torch.equal(got_mask, want_mask):
                raise NotYet("the new mask differs: m' = 1 where the window saw at least one known pixel, 0 "
                             f"elsewhere, shape {tuple(want_mask.shape)}")
            if not torch.allclose(got, want, atol=1e-8):
                seen = want_mask.bool().expand_as(want)
                bias = layer.bias.detach().view(1, -1, 1, 1).expand_as(want)
                scale = float(((got - bias)[seen] / (want - bias)[seen]).median())  # before the bias: yours / ours
                if (got[~seen] != 0).any():
                    raise NotYet("windows with no known pixel must output exactly 0, bias included")
                if abs(scale - 1) > 0.05:
                    raise NotYet(f"before the bias your outputs are about {scale:.3g}x the expected ones: multiply "
                                 f"W^T(X*M) by sum(1)/sum(M), with sum(1) the window size k*k, then add the bias")
                raise NotYet("compare your output with murallab.nn.PartialConv2d window by window")
        return "partial convolution matches murallab.nn.PartialConv2d"

    return check(what, body)


def _naoto_factor(k: int) -> float:
    """The paper's output over naoto0804's (both before the bias) on an all-ones mask, measured on the library's
    layer against naoto0804's formula W^T(X*M) / sum(M)."""
    g = torch.Generator().manual_seed(4)
    layer = PartialConv2d(3, 4, k, padding=k // 2).double()
    x = torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64)
    mask = torch.ones(1, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        paper = layer(x, mask)[0] - layer.bias.view(1, -1, 1, 1)
        sum_m = F.conv2d(mask, torch.ones(1, 1, k, k, dtype=torch.float64), padding=k // 2)
        naoto = F.conv2d(x * mask, layer.weight, padding=k // 2) / sum_m
    return float((paper / naoto).median())


def check_naoto_factor(answer) -> bool:
    """``answer``: how many times larger the paper's partial convolution output is than naoto0804's (both before
    the bias) where the mask is all ones, for ``PartialConv2d(3, 8, 7)`` (a single-channel mask)."""
    what = "the window factor naoto0804's port drops (7×7 kernel)"

    def body():
        got, want = number(answer), _naoto_factor(7)
        if abs(got - want) <= 1e-6 * want:
            return f"{what}: sum(1) = {want:.0f}"
        if abs(got * want - 1) < 1e-6:
            raise NotYet("upside down: the paper multiplies by sum(1)/sum(M), naoto0804 by 1/sum(M); "
                         "which output is larger?")
        if abs(got - 7) < 1e-9:
            raise NotYet("sum(1) counts every entry of the window, not one side of it")
        if abs(got - 3 * want) < 1e-6:
            raise NotYet("the mask is shared by the 3 input channels (multi_channel=False): sum(1) counts the "
                         "entries of the single-channel mask window")
        raise NotYet("with an all-ones mask the paper's factor sum(1)/sum(M) and naoto0804's 1/sum(M) differ by "
                     "sum(1), the number of entries in the mask window")

    return check(what, body)


def _layers_to_close(width: int, size: int = 256) -> int:
    """The first encoder layer of notebook 02's section 3 (stride 2, kernels of encoder_plan(8, 1, 1)) after which
    a centred square hole of ``width`` pixels has no hole pixel left: measured with the library's layer."""
    m = torch.ones(1, 1, size, size)
    c = (size - width) // 2
    m[..., c:c + width, c:c + width] = 0
    for i, (*_, k) in enumerate(encoder_plan(8, 1, 1)):
        _, m = PartialConv2d(1, 1, k, 2, (k - 1) // 2)(torch.zeros_like(m), m)
        if not (m == 0).any():
            return i + 1
    raise AssertionError("the hole never closed")


def check_layers_to_close(answer) -> bool:
    """``answer``: after how many encoder layers of section 3 a centred 40 px square hole in a 256 px image is
    closed (the first layer whose output mask has no hole pixel)."""
    what = "layers that close a 40 px hole"

    def body():
        got, want = number(answer, "a whole number of layers"), _layers_to_close(40)
        if got == want:
            return f"{what}: {want}"
        if abs(got - want) == 1:
            raise NotYet("off by one: count the layers from 1, and stop at the first layer whose mask has no hole "
                         "pixel left")
        raise NotYet("apply w <- (w - (k - 1)) / 2 with the encoder's kernels (7, 5, 5, 3, ...) until w <= 0, "
                     "or measure it with measured_layers_to_close")

    return check(what, body)


def _window_size(c_in: int, k: int) -> float:
    """sum(1) of ``PartialConv2d(c_in, ., k, multi_channel=True)``, read off the layer's output: one known entry
    in a window makes the output ``W[.., 0, centre] * x * sum(1) / 1`` before the bias."""
    layer = PartialConv2d(c_in, 2, k, padding=k // 2, multi_channel=True).double()
    x = torch.ones(1, c_in, k, k, dtype=torch.float64)
    mask = torch.zeros(1, c_in, k, k, dtype=torch.float64)
    mask[0, 0, k // 2, k // 2] = 1
    with torch.no_grad():
        y = layer(x, mask)[0][0, 0, k // 2, k // 2] - layer.bias[0]
    return float(y / layer.weight.detach()[0, 0, k // 2, k // 2])


def check_window_size(answer) -> bool:
    """``answer``: sum(1) of a decoder layer ``PartialConv2d(96, 32, 3, multi_channel=True)`` (one mask per input
    channel)."""
    what = "sum(1) of PartialConv2d(96, 32, 3, multi_channel=True)"

    def body():
        got, want = number(answer), _window_size(96, 3)
        if abs(got - want) <= 1e-6 * want:
            return f"{what} = {want:.0f}"
        if got == 9:
            raise NotYet("with multi_channel=True every input channel has its own mask, and sum(1) counts the "
                         "entries of all of them")
        if got == 32 * 9:
            raise NotYet("sum(1) counts the entries of the input window: input channels, not output channels")
        raise NotYet("sum(1) is the number of entries of M in one window: input channels × k × k")

    return check(what, body)
