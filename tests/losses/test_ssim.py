"""murallab.losses.ssim: SSIM and MS-SSIM against scikit-image and pytorch-msssim, gradients, pitfalls."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_msssim
import skimage.data
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from murallab.losses import MSSSIM, SSIM, SSIMLoss, gaussian_window, ms_ssim, ssim

_IMAGES = {name: getattr(skimage.data, name)() for name in ("astronaut", "coffee", "chelsea", "camera")}


def _real(name: str, crop=None, offset: int = 0) -> np.ndarray:
    """A scikit-image photograph as float64 (H, W, C) in [0, 1] (C = 1 for the grey camera)."""
    a = _IMAGES[name].astype(np.float64) / 255.0
    a = a[..., None] if a.ndim == 2 else a
    if crop is not None:
        a = a[offset:offset + crop[0], offset:offset + crop[1]]
    return a


def _damaged(a: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "noise":
        return np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    if kind == "blur":
        return gaussian_filter(a, sigma=(2, 2, 0))
    if kind == "shift":
        return np.roll(a, 1, axis=1)
    return np.clip(a * np.array([1.1, 0.9, 1.0])[: a.shape[2]], 0, 1)  # colour cast


def _skimage(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=-1)


def _t(a: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)


# --- agreement with scikit-image -----------------------------------------------------------------------------

CROPS = [(name, crop, off, kind)
         for name in _IMAGES
         for crop, off in (((37, 53), 120), ((11, 11), 200), ((64, 129), 60), ((200, 13), 30))
         for kind in ("noise", "blur", "shift", "cast")]
FULL = [("astronaut", None, 0, "noise"), ("coffee", None, 0, "blur"), ("camera", None, 0, "shift")]


@pytest.mark.parametrize("name,crop,off,kind", FULL + CROPS)
def test_equals_skimage_on_real_photographs_float32(name, crop, off, kind):
    """float32 SSIM equals scikit-image's Gaussian SSIM within 1e-4 (the spec) on real photographs: full images,
    odd sizes down to a single window (11x11), RGB and grey. Measured: at most a few 1e-6."""
    a = _real(name, crop, off)
    b = _damaged(a, kind)
    ref = _skimage(a, b)
    ours = float(ssim(_t(a), _t(b)))
    assert abs(ours - ref) < 1e-4, (ours, ref)


@pytest.mark.parametrize("name,crop,off,kind", CROPS[::3])
def test_equals_skimage_float64_to_rounding(name, crop, off, kind):
    """In float64 the agreement is to rounding: the same definition, not an approximation."""
    a = _real(name, crop, off)
    b = _damaged(a, kind)
    assert abs(float(ssim(_t(a, torch.float64), _t(b, torch.float64))) - _skimage(a, b)) < 1e-10


def test_per_image_values_and_map_equal_skimage():
    """reduction='none' gives skimage's value per image; reduction='map' is skimage's full map cropped by 5."""
    a = [_real("astronaut", (48, 60), 100), _real("chelsea", (48, 60), 40)]
    b = [_damaged(a[0], "noise"), _damaged(a[1], "blur")]
    x, y = torch.cat([_t(i, torch.float64) for i in a]), torch.cat([_t(i, torch.float64) for i in b])
    per_image = ssim(x, y, reduction="none")
    assert per_image.shape == (2,)
    for k in range(2):
        assert abs(float(per_image[k]) - _skimage(a[k], b[k])) < 1e-10
    smap = ssim(x, y, reduction="map")
    assert smap.shape == (2, 3, 48 - 10, 60 - 10)
    _, full = structural_similarity(a[0], b[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=1.0, channel_axis=-1, full=True)
    np.testing.assert_allclose(smap[0].numpy().transpose(1, 2, 0), full[5:-5, 5:-5], atol=1e-10)
    assert abs(float(ssim(x, y)) - float(per_image.mean())) < 1e-12


def test_data_range_255():
    """Images on the 0-255 scale with data_range=255 give skimage's number (and the same as [0, 1] with 1)."""
    a = _real("coffee", (40, 50), 150)
    b = _damaged(a, "noise")
    ours = float(ssim(_t(a * 255, torch.float64), _t(b * 255, torch.float64), data_range=255))
    assert abs(ours - _skimage(a * 255, b * 255, data_range=255)) < 1e-10
    assert abs(ours - float(ssim(_t(a, torch.float64), _t(b, torch.float64)))) < 1e-10


def test_window_is_scipys_gaussian_kernel():
    """gaussian_window(11, 1.5) is the kernel scipy.ndimage.gaussian_filter uses with truncate=3.5 (its impulse
    response), which is what scikit-image filters with."""
    impulse = np.zeros(31)
    impulse[15] = 1.0
    ref = gaussian_filter(impulse, sigma=1.5, truncate=3.5, mode="constant")[10:21]
    np.testing.assert_allclose(gaussian_window(11, 1.5, dtype=torch.float64).numpy(), ref, atol=1e-15)


# --- the libraries students meet ---------------------------------------------------------------------------

def test_agrees_with_pytorch_msssim_when_its_data_range_is_set():
    """pytorch-msssim uses the same valid convolution: with data_range=1 it gives our number."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 40, 52, generator=g)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert abs(float(ssim(x, y)) - float(pytorch_msssim.ssim(x, y, data_range=1.0))) < 1e-5


def test_pytorch_msssim_default_data_range_pitfall():
    """The pitfall the docstring teaches: pytorch-msssim's default data_range=255 on [0, 1] images makes a badly
    damaged image look almost perfect."""
    x = _t(_real("astronaut", (64, 64), 200))
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert float(ssim(x, y)) < 0.5
    assert float(pytorch_msssim.ssim(x, y)) > 0.95  # data_range left at 255


# --- behaviour as a loss --------------------------------------------------------------------------------------

def test_identity_is_one_and_loss_rises_with_damage():
    """SSIM(x, x) = 1, SSIMLoss = 1 - SSIM is 0 there, and the loss rises with noise strength."""
    x = _t(_real("astronaut", (64, 64), 200))
    assert abs(float(ssim(x, x)) - 1) < 1e-6
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    losses = [float(SSIMLoss()(x, (x + s * noise).clamp(0, 1))) for s in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert abs(losses[0]) < 1e-6
    assert all(a < b for a, b in zip(losses, losses[1:])), losses


def test_gradcheck_float64():
    """The hand-written backward agrees with finite differences, for x and y, through every reduction."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 12, 13, generator=g, dtype=torch.float64, requires_grad=True)
    y = (x.detach() + 0.3 * torch.rand(x.shape, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: ssim(a, b, reduction="map"), (x[:1, :1], y[:1, :1]))
    for reduction in ("none", "mean"):
        assert torch.autograd.gradcheck(lambda a, b, r=reduction: ssim(a, b, reduction=r), (x, y), fast_mode=True)
    assert torch.autograd.gradcheck(lambda b: ssim(x.detach(), b, window=7, sigma=1.0), (y,), fast_mode=True)


def test_gradient_matches_autograd_of_the_plain_formula():
    """The gradient equals autograd through a direct transcription of the formula (valid conv, no centring)."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 24, 20, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, 24, 20, generator=g, dtype=torch.float64)
    w = gaussian_window(dtype=torch.float64)
    w2 = (w[:, None] * w[None, :]).expand(3, 1, 11, 11)

    def plain(a, b):
        f = lambda t: torch.nn.functional.conv2d(t, w2, groups=3)  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cab = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
        return ((2 * ma * mb + 1e-4) * (2 * cab + 9e-4) / ((ma ** 2 + mb ** 2 + 1e-4) * (va + vb + 9e-4))).mean()

    ours, = torch.autograd.grad(ssim(x, y), x)
    ref, = torch.autograd.grad(plain(x, y), x)
    assert abs(ssim(x, y).item() - plain(x, y).item()) < 1e-12
    torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-9)


def test_half_precision_and_module_forms():
    """bfloat16 inputs are computed in float32; SSIM and SSIMLoss Modules match the function."""
    x = _t(_real("coffee", (32, 32), 100))
    y = _t(_damaged(_real("coffee", (32, 32), 100), "noise"))
    out = ssim(x.bfloat16(), y.bfloat16())
    assert out.dtype == torch.float32 and abs(float(out) - float(ssim(x, y))) < 2e-2
    assert torch.equal(SSIM(reduction="none")(x, y), ssim(x, y, reduction="none"))
    assert torch.equal(SSIMLoss()(x, y), 1 - ssim(x, y))


def test_bad_inputs_raise_clear_errors():
    x = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError, match="same shape"):
        ssim(x, torch.rand(1, 3, 20, 21))
    with pytest.raises(ValueError, match="at least"):
        ssim(torch.rand(1, 3, 10, 20), torch.rand(1, 3, 10, 20))
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, window=10)
    with pytest.raises(ValueError, match="reduction"):
        ssim(x, x, reduction="sum")
    with pytest.raises(TypeError, match="floating"):
        ssim((x * 255).byte(), (x * 255).byte())


# --- MS-SSIM ----------------------------------------------------------------------------------------------------

def _pair(size, seed=0, dtype=torch.float32):
    a = _real("astronaut", size, 100)
    b = _damaged(a, "noise", seed)
    return _t(a, dtype), _t(b, dtype)


@pytest.mark.parametrize("size", [(256, 256), (192, 224)])
def test_ms_ssim_equals_pytorch_msssim_on_even_sizes(size):
    """Where every halving meets even sizes, pytorch-msssim (data_range=1) and we compute the same MS-SSIM: to
    rounding in float64 when it is given our float64 window (its own is built in float32), and to 1e-5 in
    float32 with its defaults."""
    x, y = _pair(size, dtype=torch.float64)
    win = gaussian_window(dtype=torch.float64).view(1, 1, 1, 11).repeat(3, 1, 1, 1)
    ref = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False, win=win)
    torch.testing.assert_close(ms_ssim(x, y, reduction="none"), ref, atol=1e-12, rtol=0)
    x, y = x.float(), y.float()
    assert float(MSSSIM()(x, y)) == pytest.approx(float(pytorch_msssim.ms_ssim(x, y, data_range=1.0)), abs=1e-5)


def test_ms_ssim_behaviour():
    """1 at identity, falls with damage; odd sizes work (we repeat the last row where pytorch-msssim pads zeros,
    so the two differ slightly there); too small an image is a clear error; the gradient is finite."""
    x, y = _pair((177, 181))
    assert abs(float(ms_ssim(x, x)) - 1) < 1e-5
    values = [float(ms_ssim(x, (x + s * (y - x)).clamp(0, 1))) for s in (0.5, 1.0, 2.0)]
    assert values[0] > values[1] > values[2] > 0
    assert abs(values[1] - float(pytorch_msssim.ms_ssim(x, y, data_range=1.0))) < 5e-3
    with pytest.raises(ValueError, match="161x161"):
        ms_ssim(x[..., :160, :], y[..., :160, :])
    xg = x.clone().requires_grad_()
    ms_ssim(xg, y).backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0
