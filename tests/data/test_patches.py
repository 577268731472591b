"""murallab.data.patches: patch positions (farthest-point sampling), cropping and their metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from murallab.data import min_spacing, patch_coverage, patch_positions, sample_patches, upscale_to_patch


@pytest.mark.parametrize("method", ["farthest", "random"])
@pytest.mark.parametrize("h,w,p,n", [(600, 800, 128, 25), (100, 60, 32, 7), (64, 64, 64, 3), (65, 90, 64, 10)])
def test_positions_in_bounds_and_count(method, h, w, p, n):
    """n (top, left) int pairs with 0 <= top <= H - p and 0 <= left <= W - p."""
    pos = patch_positions(h, w, p, n, seed=0, method=method)
    assert len(pos) == n
    for t, l in pos:
        assert isinstance(t, int) and isinstance(l, int)
        assert 0 <= t <= h - p and 0 <= l <= w - p


def test_positions_deterministic_by_seed():
    """The same seed gives the same positions; different seeds give different ones."""
    a = patch_positions(300, 400, 64, 10, seed=3)
    assert a == patch_positions(300, 400, 64, 10, seed=3)
    assert a != patch_positions(300, 400, 64, 10, seed=4)
    g1, g2 = np.random.default_rng(8), np.random.default_rng(8)
    assert patch_positions(300, 400, 64, 10, seed=g1) == patch_positions(300, 400, 64, 10, seed=g2)


def test_farthest_positions_are_distinct():
    """Farthest-point sampling never picks the same position twice while space allows."""
    pos = patch_positions(300, 300, 32, 40, seed=1)
    assert len(set(pos)) == 40


def test_farthest_beats_random():
    """Averaged over 20 seeds (600x800, p=128, n=25), farthest sampling covers more of the image and
    spaces patches much farther apart than uniform random positions."""
    h, w, p, n = 600, 800, 128, 25
    cov = {"farthest": [], "random": []}
    gap = {"farthest": [], "random": []}
    for s in range(20):
        for method in cov:
            pos = patch_positions(h, w, p, n, seed=s, method=method)
            cov[method].append(patch_coverage(pos, h, w, p))
            gap[method].append(min_spacing(pos))
    assert np.mean(cov["farthest"]) > np.mean(cov["random"]) + 0.05
    assert np.mean(gap["farthest"]) > 3 * np.mean(gap["random"])
    # 25 well-spread points on a 473x673 grid of positions are ~100 px apart; random ones collide.
    assert min(gap["farthest"]) > 80


def test_farthest_point_greedy_invariants():
    """Greedy farthest-point order: the 2nd patch is the image corner farthest from the 1st (corners are
    the farthest points of a rectangle), and each patch's distance to the earlier ones never increases."""
    for s in range(10):
        pos = np.array(patch_positions(200, 300, 50, 12, seed=s), dtype=float)
        corners = np.array([(0, 0), (0, 250), (150, 0), (150, 250)], dtype=float)
        far = np.linalg.norm(corners - pos[0], axis=1).max()
        assert np.linalg.norm(pos[1] - pos[0]) == pytest.approx(far)
        gaps = [np.linalg.norm(pos[:k] - pos[k], axis=1).min() for k in range(1, len(pos))]
        assert all(b <= a + 1e-9 for a, b in zip(gaps, gaps[1:])), gaps


def test_patch_as_large_as_image_repeats_origin():
    """When patch == image only (0, 0) exists, and it repeats n times."""
    assert patch_positions(64, 64, 64, 3, seed=0) == [(0, 0)] * 3


def test_invalid_arguments():
    """Patch larger than the image mentions upscale; n < 1 and unknown methods raise."""
    with pytest.raises(ValueError, match="upscale"):
        patch_positions(100, 50, 64, 3)
    with pytest.raises(ValueError, match="n must be"):
        patch_positions(100, 100, 64, 0)
    with pytest.raises(ValueError, match="method"):
        patch_positions(100, 100, 64, 3, method="grid")


def test_sample_patches_are_the_crops_at_positions():
    """sample_patches returns image[:, t:t+p, l:l+p] for each position patch_positions gives."""
    img = torch.arange(3 * 90 * 120, dtype=torch.float32).reshape(3, 90, 120)
    for method in ("farthest", "random"):
        out = sample_patches(img, 32, 6, seed=5, method=method)
        pos = patch_positions(90, 120, 32, 6, seed=5, method=method)
        assert out.shape == (6, 3, 32, 32) and out.dtype == img.dtype
        for k, (t, l) in enumerate(pos):
            # Each crop's top-left value tells where it came from: value = c*H*W + row*W + col.
            assert out[k, 0, 0, 0].item() == t * 120 + l
            assert torch.equal(out[k], img[:, t:t + 32, l:l + 32])


def test_sample_patches_too_small_image():
    """An image smaller than the patch raises ValueError mentioning upscale."""
    with pytest.raises(ValueError, match="upscale"):
        sample_patches(torch.rand(3, 40, 100), 64, 2)


def test_sample_patches_upscale():
    """upscale=True returns (n, C, p, p) from an image smaller than p."""
    out = sample_patches(torch.rand(3, 40, 100), 64, 5, upscale=True)
    assert out.shape == (5, 3, 64, 64)
    assert 0 <= out.min() and out.max() <= 1


def test_sample_patches_rejects_batched():
    """A (B, C, H, W) input is refused."""
    with pytest.raises(ValueError, match="C, H, W"):
        sample_patches(torch.rand(2, 3, 64, 64), 32, 2)


def test_upscale_to_patch_size_and_content():
    """Short side becomes p with the aspect kept; a constant image stays constant; big images untouched."""
    img = torch.full((3, 40, 100), 0.3)
    up = upscale_to_patch(img, 64)
    assert up.shape == (3, 64, 160)
    assert torch.allclose(up, torch.full_like(up, 0.3), atol=1e-6)
    big = torch.rand(3, 70, 80)
    assert upscale_to_patch(big, 64) is big


def test_patch_coverage_hand_example():
    """Two non-overlapping 10x10 patches in a 20x40 image cover 200 / 800 = 0.25; overlap counts once."""
    assert patch_coverage([(0, 0), (10, 30)], 20, 40, 10) == pytest.approx(0.25)
    assert patch_coverage([(0, 0), (5, 5)], 20, 40, 10) == pytest.approx((100 + 100 - 25) / 800)
    assert patch_coverage([], 20, 40, 10) == 0.0
    assert patch_coverage([(0, 0)], 10, 10, 10) == 1.0


def test_min_spacing_hand_example():
    """Points (0,0), (3,4), (10,0): pairwise distances 5, 10, sqrt(65) -> 5; fewer than two -> inf."""
    assert min_spacing([(0, 0), (3, 4), (10, 0)]) == pytest.approx(5.0)
    assert min_spacing([(1, 1), (1, 1), (9, 9)]) == 0.0
    assert min_spacing([(4, 4)]) == float("inf")
