"""The fast Fourier convolution network: the Fourier unit against numpy's FFT, the image-wide receptive field, and
the refining start (the untrained network is push-pull)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from murallab.classical import push_pull
from murallab.data import make_mural, random_walk_masks
from murallab.models import build_model
from murallab.nn import FFCUNet
from murallab.nn.ffc_unet import FFC, FourierUnit


def test_fourier_unit_matches_numpy_fft():
    """With an identity 1×1 convolution and BatchNorm at its initial statistics (eval mode), the unit is
    irfft2(ReLU([Re ; Im] rfft2(x) / sqrt(1 + eps))), computed here with numpy's FFT."""
    fu = FourierUnit(3).eval()
    with torch.no_grad():
        fu.conv.weight.copy_(torch.eye(6)[:, :, None, None])
    x = torch.randn(2, 3, 12, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    spectrum = np.fft.rfft2(x.double().numpy(), norm="ortho")
    scale = 1 / np.sqrt(1 + fu.bn.eps)
    want = np.fft.irfft2(np.maximum(spectrum.real * scale, 0) + 1j * np.maximum(spectrum.imag * scale, 0),
                         s=(12, 10), norm="ortho")
    with torch.no_grad():
        got = fu(x)
    assert got.shape == x.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got.double().numpy(), want, atol=1e-5)  # float32 FFTs, about 100 terms


def test_ffc_sees_the_whole_image_at_once():
    """One FFC layer: a change in the top-left corner reaches the bottom-right output, 16 pixels away; a 3×3
    convolution cannot carry it further than one pixel."""
    torch.manual_seed(0)
    ffc = FFC(8, ratio=0.5).eval()
    x = torch.rand(1, 8, 32, 32)
    y = x.clone()
    y[..., :8, :8] += 4
    with torch.no_grad():
        far = (ffc(x) - ffc(y))[..., -8:, -8:].abs().max().item()
    assert far > 1e-3
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    with torch.no_grad():  # zero in exact arithmetic; a tiled (Winograd) kernel may leave rounding
        assert (conv(x) - conv(y))[..., 10:, 10:].abs().max().item() < 1e-5 < far
    with pytest.raises(ValueError, match="ratio"):
        FFC(8, ratio=0.0)


def test_untrained_network_is_push_pull_and_one_step_moves_it():
    torch.manual_seed(0)
    image = torch.stack([make_mural(64, 80, seed=s) for s in range(2)])
    mask = random_walk_masks(2, 64, 80, seed=0)
    net = FFCUNet(base=8, blocks=1)
    fill = push_pull(image * mask, mask)
    assert torch.equal(net(image * mask, mask), fill)  # the head starts at zero: exactly the fill
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    (net(image * mask, mask) - image).abs().mean().backward()
    opt.step()
    assert (net(image * mask, mask) - fill).abs().max() > 1e-4


@pytest.mark.parametrize("h,w", [(64, 64), (37, 50)])
def test_any_size_and_the_registry(h, w):
    net = build_model("FFCUNet", base=8, blocks=1).eval()
    assert isinstance(net, FFCUNet) and net.task == "guided"
    with torch.no_grad():
        out = net(torch.rand(1, 3, h, w), torch.ones(1, 1, h, w))
    assert out.shape == (1, 3, h, w)
