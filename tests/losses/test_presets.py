"""murallab.losses.presets: term names, weights, identity, damage response, and the PConv paper's normalisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from murallab.data import make_mural, random_walk_masks
from murallab.losses import (edge_loss, DualDecoderLoss, MSESSIMLoss, MuralLoss, PConvLoss, VGG16Features,
                             VGGWeightsNotFoundError, ssim, total_variation)

DOCUMENTED = {
    MuralLoss: (("l1", "ssim", "perceptual", "edge"), dict(l1=1.0, ssim=0.5, perceptual=0.1, edge=0.2)),
    PConvLoss: (("valid", "hole", "perceptual", "style", "tv", "structural", "edge"),
                dict(valid=1.0, hole=6.0, perceptual=0.05, style=120.0, tv=0.1, structural=0.0, edge=0.0)),
    DualDecoderLoss: (("hole", "damage"), dict(hole=2.0, damage=1.0)),
    MSESSIMLoss: (("mse", "ssim"), dict(mse=1.0, ssim=1.0)),
}


@pytest.fixture(scope="module")
def features():
    return VGG16Features(weights=None)


@pytest.fixture(scope="module")
def batch():
    target = torch.stack([make_mural(32, 32, seed=i) for i in range(2)])
    mask = random_walk_masks(2, 32, hole_ratio=(0.15, 0.3), seed=5)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    return target, mask, noise


def _make(cls, features, **weights):
    return cls(features=features, **weights) if cls in (MuralLoss, PConvLoss) else cls(**weights)


def _pred(cls, target, mask, damage):
    """A prediction `damage` away from perfect (for the dual decoder: image and a damage probability)."""
    image = (target + damage).clamp(0, 1)
    if cls is DualDecoderLoss:
        off = damage.abs().mean(1, keepdim=True).clamp(0, 0.5)
        return image, (1 - mask) * (1 - off) + mask * off
    return image


@pytest.mark.parametrize("cls", list(DOCUMENTED))
def test_documented_terms_and_default_weights(cls, features, batch):
    """Every preset returns the documented term names; the terms add up to the total; defaults are documented."""
    names, defaults = DOCUMENTED[cls]
    loss = _make(cls, features)
    assert cls.TERMS == names and loss.term_weights == defaults
    target, mask, noise = batch
    total, terms = loss(_pred(cls, target, mask, 0.1 * noise), target, mask)
    assert tuple(terms) == names
    assert total.dim() == 0 and float(total) == pytest.approx(float(sum(terms.values())), rel=1e-6)
    assert all(not t.requires_grad for t in terms.values())


@pytest.mark.parametrize("cls", list(DOCUMENTED))
def test_zero_at_identity_positive_and_rising_with_damage(cls, features, batch):
    """At identity every term is 0, except PConv's TV, whose minimum is the target's own TV over the hole
    region (the composite is then the target). Under damage the total is larger, and it rises with strength."""
    target, mask, noise = batch
    loss = _make(cls, features, **({"structural": 5.0} if cls is PConvLoss else {}))
    total, terms = loss(_pred(cls, target, mask, 0 * noise), target, mask)
    floor = 0.1 * float(total_variation(target, mask)) if cls is PConvLoss else 0.0
    for name, value in terms.items():
        expected = floor if name == "tv" else 0.0
        assert float(value) == pytest.approx(expected, abs=1e-6), (name, float(value))
    values = [float(loss(_pred(cls, target, mask, s * noise), target, mask)[0]) for s in (0.02, 0.08, 0.3)]
    assert floor < values[0] < values[1] < values[2], values


@pytest.mark.parametrize("cls", list(DOCUMENTED))
def test_each_weight_scales_its_term(cls, features, batch):
    """Doubling one weight doubles that term's contribution and adds it once more to the total; weight 0 drops
    the term (logged as 0)."""
    target, mask, noise = batch
    pred = _pred(cls, target, mask, 0.1 * noise)
    names, defaults = DOCUMENTED[cls]
    base_total, base = _make(cls, features, **{k: 1.0 for k in defaults})(pred, target, mask)
    for name in names:
        weights = {k: 1.0 for k in defaults}
        weights[name] = 2.0
        total, terms = _make(cls, features, **weights)(pred, target, mask)
        assert float(terms[name]) == pytest.approx(2 * float(base[name]), rel=1e-5)
        assert float(total) == pytest.approx(float(base_total) + float(base[name]), rel=1e-5)
        weights[name] = 0.0
        total, terms = _make(cls, features, **weights)(pred, target, mask)
        assert float(terms[name]) == 0.0
        assert float(total) == pytest.approx(float(base_total) - float(base[name]), rel=1e-5, abs=1e-7)


def test_gradients_flow(features, batch):
    target, mask, noise = batch
    for cls in DOCUMENTED:
        image = (target + 0.1 * noise).clamp(0, 1).requires_grad_()
        pred = (image, (1 - mask) * 0.8 + 0.1) if cls is DualDecoderLoss else image
        total, _ = _make(cls, features, **({"structural": 5.0} if cls is PConvLoss else {}))(pred, target, mask)
        total.backward()
        assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0, cls.__name__


def test_pconv_terms_follow_the_paper(features, batch):
    """valid + hole with equal weights is the plain L1 (both divided by C·H·W, not by their region's size);
    TV is on the composite over the hole dilation; perceptual and style add the output's and the composite's;
    structural is 1 - SSIM of the output."""
    target, mask, noise = batch
    pred = (target + 0.1 * noise).clamp(0, 1)
    only = dict(valid=0.0, hole=0.0, perceptual=0.0, style=0.0, tv=0.0, structural=0.0, edge=0.0)
    total, _ = PConvLoss(**{**only, "valid": 1.0, "hole": 1.0})(pred, target, mask)
    assert float(total) == pytest.approx(float(F.l1_loss(pred, target)), rel=1e-6)
    comp = mask * target + (1 - mask) * pred
    total, _ = PConvLoss(**{**only, "tv": 1.0})(pred, target, mask)
    assert float(total) == pytest.approx(float(total_variation(comp, mask)), rel=1e-6)
    total, _ = PConvLoss(**{**only, "structural": 1.0})(pred, target, mask)
    assert float(total) == pytest.approx(1 - float(ssim(pred, target)), rel=1e-6)
    total, _ = PConvLoss(**{**only, "edge": 1.0})(pred, target, mask)
    assert float(total) == pytest.approx(float(edge_loss(pred, target)), rel=1e-6) and float(total) > 0
    fo, fc, ft = features(pred), features(comp), features(target)
    total, _ = PConvLoss(**{**only, "perceptual": 1.0}, features=features)(pred, target, mask)
    expected = sum(float((a - t).abs().mean() + (c - t).abs().mean()) for a, c, t in zip(fo, fc, ft))
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_dual_decoder_damage_target_is_one_minus_mask(batch):
    """The damage head is trained towards 1 - mask (1 = damaged): predicting the mask itself is maximally wrong."""
    target, mask, _ = batch
    loss = DualDecoderLoss(hole=0.0)
    right = float(loss((target, (1 - mask) * 0.9 + 0.05), target, mask)[0])
    wrong = float(loss((target, mask * 0.9 + 0.05), target, mask)[0])
    assert right == pytest.approx(-torch.log(torch.tensor(0.95)).item(), rel=1e-5) and wrong > 10 * right
    with pytest.raises(TypeError, match="pair"):
        loss(target, target, mask)


def test_vgg_presets_need_weights_or_explicit_none(monkeypatch, tmp_path, batch):
    """Offline, the default weights='imagenet' fails clearly; a zero VGG weight builds no network at all."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(VGGWeightsNotFoundError):
        MuralLoss()
    with pytest.raises(VGGWeightsNotFoundError):
        PConvLoss()
    assert MuralLoss(perceptual=0.0).features is None
    assert PConvLoss(perceptual=0.0, style=0.0).features is None
    assert isinstance(MuralLoss(weights=None).features, VGG16Features)
    target, mask, _ = batch
    with pytest.raises(ValueError, match="mask must be"):
        PConvLoss(perceptual=0.0, style=0.0)(target, target, None)
    with pytest.raises(ValueError, match=">= 0"):
        MSESSIMLoss(mse=-1.0)
