"""Edge handling of DiffusionRestorer.sample: a one-scale model's network sees the image on a mirrored canvas, so a
hole that meets the image edge has context beyond it instead of the network's zero padding (a "hole" of mid-grey)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from murallab.data import random_walk_masks
from murallab.diffusion import DiffusionRestorer


class Spy(nn.Module):
    """Wraps a network and records the (x_t, cond) of every call."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, []
        self.prediction = getattr(net, "prediction", "eps")

    def forward(self, x, t, cond=None):
        self.calls.append((x.clone(), None if cond is None else cond.clone()))
        return self.net(x, t, cond)


def _model(**kw):
    torch.manual_seed(0)
    return DiffusionRestorer(scales=[16], base=8, mults=(1, 2), **kw).eval()


def _edge_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, 16, 16, generator=g)
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=seed)
    mask[:, :, :, :3] = 0  # a hole along the left edge
    return image, mask


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "repaint"])
def test_the_network_sees_the_condition_and_known_pixels_mirrored_beyond_the_edge(sampler):
    model = _model(refine=True)
    image, mask = _edge_batch()
    known = image * mask
    spy = Spy(model.nets[0])
    model.nets[0] = spy
    m = 4
    out = model.sample(known, mask, sampler=sampler, steps=3, seed=0, jump_length=1, jump_n_sample=1, margin=m)
    cond = model.condition(known, torch.zeros_like(mask) if sampler == "repaint" else mask)
    for x, c in spy.calls:
        assert x.shape[-2:] == (16 + 2 * m, 16 + 2 * m)
        # the condition: the one at the image's size, mirrored (never zero padding: beyond the edge is not a hole)
        assert torch.allclose(c, F.pad(cond, (m,) * 4, mode="reflect"), atol=1e-6)
    if sampler != "repaint":
        above = spy.calls[0][1][:, 3:4, :m, m:m + 16]  # the mask channel above the image: its rows 1..m, mirrored
        assert torch.equal(above, mask[:, :, 1:m + 1].flip(2)) and above.sum() > 0
    assert out.shape == image.shape
    assert torch.equal(out * mask, known)  # known pixels exactly
    assert out.min() >= 0 and out.max() <= 1


def test_an_untrained_refining_model_still_returns_its_fill_at_the_edge():
    """The fill is made at the image's own size and mirrored: an untrained model (zero correction) returns it."""
    model = _model(refine=True)
    image, mask = _edge_batch(1)
    known = image * mask
    out = model.sample(known, mask, sampler="ddim", steps=4, seed=0, margin=4)
    assert torch.allclose(out, model.fill(known, mask), atol=1e-4)


def test_margin_zero_is_the_plain_sampler_and_the_margin_is_checked():
    from murallab.diffusion import ddim_sample

    model = _model()
    image, mask = _edge_batch(2)
    known = image * mask
    plain = ddim_sample(model.nets[0], model.schedule, known=known, mask=mask, cond=model.condition(known, mask),
                        steps=3, seed=5, paste=True)
    assert torch.equal(model.sample(known, mask, steps=3, seed=5), plain)  # the default: no margin
    assert not torch.allclose(model.sample(known, mask, steps=3, seed=5, margin=4), plain, atol=1e-3)
    with pytest.raises(ValueError, match="margin"):
        model.sample(known, mask, margin=-1)
    two = DiffusionRestorer(scales=[8, 16], base=8, mults=(1, 2)).eval()
    with pytest.raises(ValueError, match="multi-scale"):
        two.sample(known, mask, margin=4)
    assert two.sample(known, mask, steps=2).shape == known.shape
