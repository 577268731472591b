"""The time-conditioned U-Net: the sinusoidal time embedding, shapes, what its output depends on, bad input.

(It trains inside a ``DiffusionRestorer`` through ``murallab.train.fit``: tests/diffusion/test_restorer.py.)"""

import math

import pytest
import torch

from murallab.diffusion import TimeUNet, timestep_embedding


def test_timestep_embedding_is_the_sinusoid():
    t = torch.tensor([0, 3, 250])
    e = timestep_embedding(t, 8)
    assert e.shape == (3, 8)
    for i, ti in enumerate(t.tolist()):
        for k in range(4):
            f = 10000 ** (-k / 4)
            assert e[i, k].item() == pytest.approx(math.cos(ti * f), abs=1e-5)
            assert e[i, 4 + k].item() == pytest.approx(math.sin(ti * f), abs=1e-5)
    assert timestep_embedding(t, 7).shape == (3, 7)


@pytest.mark.parametrize("size, mults, cond, attention", [(16, (1, 2), 0, True), (32, (1, 2, 2), 4, False),
                                                           (24, (1, 2, 2), 8, True)])
def test_unet_shapes(size, mults, cond, attention):
    model = TimeUNet(cond_channels=cond, base=8, mults=mults, attention=attention)
    x = torch.randn(2, 3, size, size)
    c = torch.randn(2, cond, size, size) if cond else None
    assert model(x, torch.tensor([3, 7]), c).shape == x.shape
    assert model(x, 5, c).shape == x.shape  # one t for the whole batch
    rebuilt = TimeUNet(**model.config)
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in model.parameters())


def test_unet_depends_on_t_and_cond():
    torch.manual_seed(0)
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2)).eval()
    x, c = torch.randn(1, 3, 16, 16), torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        for p in model.out[-1].parameters():  # the last conv may start at any value; make the output non-trivial
            p.normal_(0, 0.1)
        assert not torch.allclose(model(x, 1, c), model(x, 900, c))
        assert not torch.allclose(model(x, 1, c), model(x, 1, c + 1))


def test_unet_errors():
    model = TimeUNet(cond_channels=4, base=8, mults=(1, 2, 2))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 3, 18, 18), 0, torch.randn(1, 4, 18, 18))
    with pytest.raises(ValueError, match="needs cond"):
        model(torch.randn(1, 3, 16, 16), 0)
    with pytest.raises(ValueError, match="unconditional"):
        TimeUNet(base=8)(torch.randn(1, 3, 16, 16), 0, torch.randn(1, 4, 16, 16))
