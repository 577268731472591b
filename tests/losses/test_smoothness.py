"""murallab.losses.smoothness: TV (whole image and the PConv hole dilation) and the Sobel edge loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from murallab.data import make_mural, random_walk_masks
from murallab.losses import EdgeLoss, TotalVariation, dilate_holes, edge_loss, sobel_gradients, total_variation


def _images(n=2, size=40):
    return torch.stack([make_mural(size, size, seed=i) for i in range(n)]).double()


def _masks(n=2, size=40):
    return random_walk_masks(n, size, hole_ratio=(0.1, 0.2), seed=3).double()


def _tv_numpy(x: np.ndarray, region: np.ndarray | None = None) -> float:
    """TV from the paper's sums: pairs (i, j)-(i, j+1) and (i, j)-(i+1, j), both in the region; / (B*C*H*W)."""
    b, c, h, w = x.shape
    total = 0.0
    for k in range(b):
        p = np.ones((h, w), bool) if region is None else region[k]
        pair_h = p[:, 1:] & p[:, :-1]
        pair_v = p[1:, :] & p[:-1, :]
        total += np.abs(np.diff(x[k], axis=2))[:, pair_h].sum() + np.abs(np.diff(x[k], axis=1))[:, pair_v].sum()
    return total / x.size


def test_dilation_equals_scipy_binary_dilation():
    m = _masks()
    ours = dilate_holes(m).numpy()[:, 0] > 0.5
    for k in range(len(m)):
        ref = ndimage.binary_dilation(m[k, 0].numpy() == 0, structure=np.ones((3, 3), bool))
        assert np.array_equal(ours[k], ref)


def test_tv_whole_image_equals_numpy_formula():
    x = _images()
    assert float(total_variation(x)) == pytest.approx(_tv_numpy(x.numpy()), rel=1e-12)


def test_tv_hole_region_equals_numpy_formula():
    """Masked TV: pairs inside the one-pixel (3x3) dilation of the holes, normalised by C*H*W (the paper's P)."""
    x, m = _images(), _masks()
    region = np.stack([ndimage.binary_dilation(m[k, 0].numpy() == 0, structure=np.ones((3, 3), bool))
                       for k in range(len(m))])
    assert float(total_variation(x, m)) == pytest.approx(_tv_numpy(x.numpy(), region), rel=1e-12)
    assert float(TotalVariation()(x, m)) == float(total_variation(x, m))


def test_tv_hole_region_ignores_known_pixels_far_from_holes():
    """Changing known pixels outside the dilated region leaves the masked TV alone (but not the whole-image TV);
    without holes it is 0; a constant image has TV 0."""
    x, m = _images(), _masks()
    far = 1 - dilate_holes(m, pixels=2)  # known pixels whose neighbours are not in P either
    noisy = x + 0.3 * far * torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    assert float(total_variation(noisy, m)) == pytest.approx(float(total_variation(x, m)), rel=1e-12)
    assert float(total_variation(noisy)) > float(total_variation(x))
    assert float(total_variation(x, torch.ones_like(m))) == 0.0
    assert float(total_variation(torch.full((1, 3, 8, 8), 0.4))) == 0.0


def test_tv_rises_with_noise():
    x = _images()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=x.dtype)
    values = [float(total_variation(x + s * noise)) for s in (0.0, 0.02, 0.1)]
    assert values[0] < values[1] < values[2]


def test_sobel_equals_scipy_and_gives_the_slope_of_a_ramp():
    """Our derivatives are scipy.ndimage.sobel / 8 on the interior; a ramp rising 0.01 per pixel has ∂x = 0.01."""
    x = _images(1)
    grads = sobel_gradients(x)
    assert grads.shape == (1, 3, 2, 38, 38)
    for c in range(3):
        img = x[0, c].numpy()
        np.testing.assert_allclose(grads[0, c, 0].numpy(), ndimage.sobel(img, axis=1)[1:-1, 1:-1] / 8, atol=1e-12)
        np.testing.assert_allclose(grads[0, c, 1].numpy(), ndimage.sobel(img, axis=0)[1:-1, 1:-1] / 8, atol=1e-12)
    ramp = (0.01 * torch.arange(10.0, dtype=torch.float64)).expand(1, 1, 6, 10)
    g = sobel_gradients(ramp)
    assert torch.allclose(g[:, :, 0], torch.full_like(g[:, :, 0], 0.01)) and g[:, :, 1].abs().max() < 1e-15


def test_edge_loss_zero_at_identity_and_for_offsets_rises_with_blur():
    x = _images()
    assert float(edge_loss(x, x)) == 0.0
    assert float(edge_loss(x + 0.1, x)) < 1e-12  # a brightness offset has no edges
    blurred = [torch.from_numpy(ndimage.gaussian_filter(x.numpy(), sigma=(0, 0, s, s))) for s in (0.5, 1.0, 2.0)]
    values = [float(EdgeLoss()(b, x)) for b in blurred]
    assert 0 < values[0] < values[1] < values[2]
    with pytest.raises(ValueError, match="same shape"):
        edge_loss(x, x[..., :-1])
