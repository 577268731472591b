"""murallab.data.synthetic: procedural murals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from murallab.data import PALETTE, make_mural, make_murals

SEEDS = range(8)


@pytest.mark.parametrize("h,w", [(32, 32), (48, 80), (96, 40), (17, 16)])
def test_shape_dtype_range(h, w):
    """(3, H, W) float32 in [0, 1], for square and non-square sizes."""
    m = make_mural(h, w, seed=0)
    assert m.shape == (3, h, w) and m.dtype == torch.float32
    assert m.min() >= 0 and m.max() <= 1
    assert torch.isfinite(m).all()


def test_width_defaults_to_height():
    """make_mural(n) is square and equals make_mural(n, n)."""
    assert torch.equal(make_mural(40, seed=2), make_mural(40, 40, seed=2))


def test_deterministic_by_seed():
    """The same int seed, or equal-state numpy generators, give identical murals."""
    assert torch.equal(make_mural(48, 64, seed=5), make_mural(48, 64, seed=5))
    assert torch.equal(make_mural(48, seed=np.random.default_rng(3)), make_mural(48, seed=np.random.default_rng(3)))


def test_different_seeds_differ_substantially():
    """Murals of different seeds differ by a mean absolute difference above 0.05 (pairs of 8 seeds)."""
    ms = [make_mural(64, 80, seed=s) for s in SEEDS]
    for i in range(len(ms)):
        for j in range(i + 1, len(ms)):
            assert (ms[i] - ms[j]).abs().mean() > 0.05, (i, j)


@pytest.mark.parametrize("h,w", [(15, 32), (32, 15), (8, 8)])
def test_too_small_raises(h, w):
    """Sizes under 16 px on either side raise ValueError naming the size."""
    with pytest.raises(ValueError, match=f"{h}x{w}"):
        make_mural(h, w)


def test_not_flat():
    """Each mural has structure: per-channel standard deviation averages above 0.06."""
    for s in SEEDS:
        assert make_mural(64, 80, seed=s).std(dim=(1, 2)).mean() > 0.06, s


def test_has_high_frequency_grain():
    """Plaster grain: the mean |Laplacian| (OpenCV) is above 0.03, ten times what a blurred copy shows."""
    for s in SEEDS:
        grey = make_mural(64, 80, seed=s).mean(0).numpy().astype(np.float32)
        lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean()
        smooth = np.abs(cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), 2), cv2.CV_32F)).mean()
        assert lap > 0.03 and lap > 5 * smooth, (s, lap, smooth)


def test_colours_are_earth_pigments_not_primaries():
    """The median colour is closer to the plaster/earth palette than to any pure saturated primary."""
    palette = np.array(list(PALETTE.values()))
    primaries = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=float)
    for s in SEEDS:
        med = np.median(make_mural(64, 80, seed=s).reshape(3, -1).numpy(), axis=1)
        to_palette = np.linalg.norm(palette - med, axis=1).min()
        to_primary = np.linalg.norm(primaries - med, axis=1).min()
        assert to_palette < 0.35 and to_palette < to_primary, (s, med)


def test_palette_values_are_valid_rgb():
    """PALETTE holds RGB triples in [0, 1] including plaster."""
    assert "plaster" in PALETTE
    for name, c in PALETTE.items():
        assert len(c) == 3 and all(0 <= v <= 1 for v in c), name


def test_make_murals_stacks_consecutive_seeds():
    """make_murals(n, seed=s)[i] equals make_mural(seed=s + i)."""
    batch = make_murals(3, 32, 48, seed=10)
    assert batch.shape == (3, 3, 32, 48)
    for i in range(3):
        assert torch.equal(batch[i], make_mural(32, 48, seed=10 + i))
