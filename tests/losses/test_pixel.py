"""murallab.losses.pixel: L1 / MSE over the whole image, the holes and the valid pixels, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from murallab.losses import PixelLoss, l1_loss, mse_loss


def _example():
    """A batch of 2 RGB 3x4 images and a mask with 3 holes in image 0 and 1 hole in image 1."""
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 3, 4, generator=g, dtype=torch.float64)
    target = torch.rand(2, 3, 3, 4, generator=g, dtype=torch.float64)
    mask = torch.ones(2, 1, 3, 4, dtype=torch.float64)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 2] = mask[0, 0, 2, 3] = 0
    mask[1, 0, 2, 1] = 0
    return pred, target, mask


def _by_hand(pred, target, mask, region, power):
    """Loop over every element, keep those in the region, average: the definition, written out."""
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    kept = []
    for b in range(p.shape[0]):
        for c in range(p.shape[1]):
            for i in range(p.shape[2]):
                for j in range(p.shape[3]):
                    known = m[b, 0, i, j] == 1
                    if region == "all" or (region == "valid") == known:
                        kept.append(abs(p[b, c, i, j] - t[b, c, i, j]) ** power)
    return float(np.mean(kept)) if kept else 0.0


@pytest.mark.parametrize("region", ["all", "hole", "valid"])
def test_region_means_equal_hand_computation(region):
    """Hole and valid losses are the mean over the covered elements: 4 holes x 3 channels = 12 elements."""
    pred, target, mask = _example()
    assert float(l1_loss(pred, target, mask, region=region)) == pytest.approx(_by_hand(pred, target, mask, region, 1))
    assert float(mse_loss(pred, target, mask, region=region)) == pytest.approx(_by_hand(pred, target, mask, region, 2))


def test_whole_image_equals_torch():
    pred, target, _ = _example()
    assert float(l1_loss(pred, target)) == pytest.approx(float(F.l1_loss(pred, target)))
    assert float(mse_loss(pred, target)) == pytest.approx(float(F.mse_loss(pred, target)))


def test_image_normalisation_is_the_pconv_papers():
    """normalise='image' divides by B*C*H*W, so the hole and valid terms add up to the whole-image loss."""
    pred, target, mask = _example()
    hole = l1_loss(pred, target, mask, region="hole", normalise="image")
    valid = l1_loss(pred, target, mask, region="valid", normalise="image")
    assert float(hole) == pytest.approx(float(((1 - mask) * (pred - target).abs()).sum() / pred.numel()))
    assert float(hole + valid) == pytest.approx(float(F.l1_loss(pred, target)))


def test_empty_region_gives_zero_and_finite_gradient():
    """No holes: the hole loss is 0 (not NaN) and its gradient is 0."""
    pred, target, _ = _example()
    pred.requires_grad_()
    full = torch.ones(2, 1, 3, 4, dtype=torch.float64)
    for fn in (l1_loss, mse_loss):
        loss = fn(pred, target, full, region="hole")
        assert loss.item() == 0.0
        (g,) = torch.autograd.grad(loss, pred)
        assert torch.equal(g, torch.zeros_like(pred))


def test_hole_loss_ignores_known_pixels_and_rises_with_damage():
    pred, target, mask = _example()
    changed = pred + 5 * mask  # alter only known pixels
    assert float(l1_loss(changed, target, mask, region="hole")) == pytest.approx(
        float(l1_loss(pred, target, mask, region="hole")))
    assert float(l1_loss(target, target, mask, region="hole")) == 0.0
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    values = [float(mse_loss(target + s * noise, target, mask, region="hole")) for s in (0.01, 0.1, 1.0)]
    assert 0 < values[0] < values[1] < values[2]


def test_per_channel_mask_counts_its_own_elements():
    """A (B, C, H, W) mask covers exactly the elements it marks."""
    pred, target, _ = _example()
    mask = torch.ones_like(pred)
    mask[0, 1, 0, 0] = mask[1, 2, 1, 1] = 0
    expected = float(((pred - target).abs() * (1 - mask)).sum() / 2)
    assert float(l1_loss(pred, target, mask, region="hole")) == pytest.approx(expected)


def test_module_and_errors():
    pred, target, mask = _example()
    assert torch.equal(PixelLoss("mse", "valid")(pred, target, mask), mse_loss(pred, target, mask, region="valid"))
    with pytest.raises(ValueError, match="needs a mask"):
        l1_loss(pred, target, region="hole")
    with pytest.raises(ValueError, match="mask must be"):
        l1_loss(pred, target, mask[:, :, :2], region="hole")
    with pytest.raises(ValueError, match="region"):
        PixelLoss(region="holes")
