"""murallab.nn.PartialConv2d against the formula of Liu et al. (2018), evaluated independently with unfold."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from murallab.data import random_walk_masks
from murallab.nn import PartialConv2d


def reference(layer: PartialConv2d, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's formula, window by window, in float64:
    x' = W^T (X ⊙ M) · sum(1)/sum(M) + b where sum(M) > 0, else 0;  m' = [sum(M) > 0]."""
    b, c_in, h, w = x.shape
    k = dict(kernel_size=layer.kernel_size, dilation=layer.dilation, padding=layer.padding, stride=layer.stride)
    full_mask = mask.expand(b, c_in, h, w)
    cols_x = F.unfold(x, **k)                                   # (B, C_in·kh·kw, L)
    cols_m = F.unfold(full_mask, **k)                           # (B, C_in·kh·kw, L)
    window_mask = F.unfold(mask, **k)                           # (B, C_mask·kh·kw, L)
    sum_1 = window_mask.shape[1]                                # kh·kw, or C_in·kh·kw when multi-channel
    sum_m = window_mask.sum(dim=1)                              # (B, L)
    raw = layer.weight.reshape(layer.out_channels, -1) @ (cols_x * cols_m)  # (B, C_out, L)
    seen = sum_m > 0
    out = torch.where(seen[:, None], raw * sum_1 / torch.where(seen, sum_m, 1.0)[:, None], 0.0)
    if layer.bias is not None:
        out = out + torch.where(seen[:, None], layer.bias[None, :, None], 0.0)
    oh = (h + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1) - 1) // layer.stride[0] + 1
    ow = (w + 2 * layer.padding[1] - layer.dilation[1] * (layer.kernel_size[1] - 1) - 1) // layer.stride[1] + 1
    return out.reshape(b, -1, oh, ow), seen.to(x.dtype).reshape(b, 1, oh, ow)


def random_mask(b, c, h, w, p_hole, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, c, h, w, generator=g) > p_hole).double()


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    (3, 1, 1, 1), (3, 2, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (7, 2, 3, 1), ((3, 5), (2, 1), (1, 2), 1), (4, 2, 0, 1),
])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("multi_channel", [False, True])
def test_matches_formula(kernel, stride, padding, dilation, bias, multi_channel, up_to_rounding):
    """Random masks with 30 % and 80 % holes (so some windows see nothing), odd sizes, float64: equal up to
    rounding (8·eps·K, K = C_in·kh·kw terms per window; a missing sum(1)/sum(M) factor or a shifted window misses
    by ~1, 10^9 times the tolerance)."""
    torch.manual_seed(0)
    layer = PartialConv2d(4, 6, kernel, stride, padding, dilation, bias=bias, multi_channel=multi_channel).double()
    if bias:
        nn.init.uniform_(layer.bias, 0.5, 1.0)  # a visible bias, so 'bias after rescaling' is really tested
    x = torch.randn(2, 4, 13, 17, dtype=torch.float64)
    for p_hole, seed in [(0.3, 1), (0.8, 2)]:
        mask = random_mask(2, 4 if multi_channel else 1, 13, 17, p_hole, seed)
        y, new_mask = layer(x, mask)
        y_ref, m_ref = reference(layer, x, mask)
        assert y.shape == y_ref.shape and new_mask.shape == m_ref.shape
        assert torch.equal(new_mask, m_ref)  # binary: [sum(M) > 0] of integer window sums
        up_to_rounding(y, y_ref, terms=layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1],
                       what=f"p_hole={p_hole}")


def test_window_factor_is_sum_of_ones(up_to_rounding):
    """A constant image of 1 seen through one known pixel of a 3×3 window gives W·1·9/1, not W·1/1 (naoto0804)."""
    layer = PartialConv2d(1, 1, 3, bias=False).double()
    nn.init.constant_(layer.weight, 1.0)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    mask[..., 1, 1] = 1
    y, _ = layer(torch.ones(1, 1, 3, 3, dtype=torch.float64), mask)
    up_to_rounding(y, torch.full_like(y, 9.0), terms=9)
    multi = PartialConv2d(2, 1, 3, bias=False, multi_channel=True).double()
    nn.init.constant_(multi.weight, 1.0)
    y, _ = multi(torch.ones(1, 2, 3, 3, dtype=torch.float64), torch.cat([mask, torch.zeros_like(mask)], 1))
    up_to_rounding(y, torch.full_like(y, 18.0), terms=18)  # sum(1) = C_in·k·k = 18 for a multi-channel mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_ones_mask_is_conv2d_up_to_rounding(dtype, up_to_rounding):
    """With every pixel known the ratio is 1 and the layer is nn.Conv2d, up to rounding: a conv then a multiply-add
    of the bias is not a conv with a fused bias, and which one matches bit for bit depends on the CPU's kernels."""
    torch.manual_seed(0)
    layer = PartialConv2d(5, 7, 3, stride=2).to(dtype)
    conv = nn.Conv2d(5, 7, 3, stride=2).to(dtype)
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(3, 5, 21, 18, dtype=dtype)
    y, new_mask = layer(x, torch.ones(3, 1, 21, 18, dtype=dtype))
    up_to_rounding(y, conv(x), terms=5 * 3 * 3)
    assert torch.equal(new_mask, torch.ones_like(new_mask))


def test_fully_holed_windows_output_exactly_zero():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 4, 3, padding=1)
    nn.init.constant_(layer.bias, 5.0)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 0  # windows centred in rows/cols 5..10 see no known pixel
    y, new_mask = layer(torch.randn(1, 3, 16, 16), mask)
    assert (y[..., 5:11, 5:11] == 0).all() and (new_mask[..., 5:11, 5:11] == 0).all()
    assert (new_mask[..., 4, 4:12] == 1).all() and (y[..., 4, 4:12] != 0).all()  # the border windows see pixels


def test_gradient_wrt_hole_pixels_is_exactly_zero():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 8, 5, padding=2)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    mask = random_walk_masks(2, 32, seed=3)
    y, _ = layer(x, mask)
    (y ** 2).sum().backward()
    hole = (mask == 0).expand_as(x)
    assert (x.grad[hole] == 0).all()
    assert (x.grad[~hole] != 0).float().mean() > 0.9


def test_hole_values_do_not_leak_but_do_in_ordinary_conv():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 4, 3, padding=1)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    conv.load_state_dict(layer.state_dict())
    x = torch.rand(1, 3, 24, 24)
    mask = random_walk_masks(1, 24, seed=5)
    garbage = torch.where(mask.bool(), x, torch.full_like(x, 100.0))
    assert torch.equal(layer(x, mask)[0], layer(garbage, mask)[0])
    assert not torch.allclose(conv(x * mask), conv(garbage))


def test_no_stale_state_between_calls():
    """NVIDIA's layer caches the mask ratio; ours gives the same answer whatever was called before."""
    torch.manual_seed(0)
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 20, 20)
    mask_a, mask_b = random_walk_masks(2, 20, seed=1), random_walk_masks(2, 20, seed=2)
    fresh = layer(x, mask_b)[0]
    layer(x, mask_a)
    assert torch.equal(layer(x, mask_b)[0], fresh)
    with pytest.raises(TypeError):
        layer(x)  # no cached mask to fall back on


def test_gradcheck_float64():
    torch.manual_seed(0)
    layer = PartialConv2d(2, 3, 3, stride=2, padding=1, multi_channel=True).double()
    x = torch.randn(1, 2, 7, 9, dtype=torch.float64, requires_grad=True)
    mask = random_mask(1, 2, 7, 9, 0.5, 0)
    assert torch.autograd.gradcheck(lambda t: layer(t, mask)[0], (x,))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_cpu_no_nans(dtype):
    """Under autocast the mask arithmetic stays float32: no 1e-8 epsilon to underflow, exact window sums."""
    torch.manual_seed(0)
    layer = PartialConv2d(64, 32, 3, padding=1, multi_channel=True)
    x = torch.rand(2, 64, 32, 32)
    mask = random_mask(2, 64, 32, 32, 0.9, 0).float()  # sparse: sums of 0..576, many fully holed windows
    ref, ref_mask = layer(x, mask)
    with torch.autocast("cpu", dtype=dtype):
        y, new_mask = layer(x, mask)
    assert y.dtype == dtype
    assert torch.isfinite(y).all()
    assert torch.equal(new_mask.float(), ref_mask)
    rel = (y.float() - ref).abs().max() / ref.abs().max()
    assert rel < 0.05


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 16, 15), (1, 1, 16, 16), (16, 16)])
def test_wrong_mask_shape_raises(shape):
    layer = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match="expects a mask of shape"):
        layer(torch.rand(2, 3, 16, 16), torch.ones(shape))
