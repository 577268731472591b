"""murallab.data.masks: random-walk damage masks, hole_ratio and check_mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.measure import label

from murallab.data import check_mask, composite, hole_ratio, random_walk_mask, random_walk_masks
from murallab.data.masks import _random_walk_steps, _render


def _hole_counts(m: torch.Tensor) -> np.ndarray:
    """Integer number of hole pixels per mask of a (n, 1, H, W) batch."""
    return (m == 0).sum(dim=(1, 2, 3)).numpy()


# --- random_walk_masks: format ------------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(64, 64), (48, 80), (37, 53)])
def test_masks_shape_dtype_and_binary(h, w):
    """Output is (n, 1, H, W) float32 with values exactly {0, 1}."""
    m = random_walk_masks(5, h, w, seed=0)
    assert m.shape == (5, 1, h, w) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}


def test_single_mask_shape_and_default_square():
    """random_walk_mask returns (1, H, W); width defaults to height."""
    assert random_walk_mask(40, seed=1).shape == (1, 40, 40)
    assert random_walk_mask(40, 56, seed=1).shape == (1, 40, 56)


# --- random_walk_masks: hole fraction ----------------------------------------------------------------

@pytest.mark.parametrize("h,w,n", [(64, 64, 200), (256, 256, 12), (48, 80, 100), (37, 53, 60)])
@pytest.mark.parametrize("rng_", [(0.1, 0.4), (0.2, 0.21), (0.5, 0.9), (0.01, 0.05)])
def test_hole_fraction_within_requested_range(h, w, n, rng_):
    """Every mask's hole count, counted as integers, lies in [lo * H * W, hi * H * W]."""
    lo, hi = rng_
    counts = _hole_counts(random_walk_masks(n, h, w, hole_ratio=rng_, seed=7))
    area = h * w
    assert counts.min() >= lo * area - 1e-6, (counts.min(), lo * area)
    assert counts.max() <= hi * area + 1e-6, (counts.max(), hi * area)


@pytest.mark.parametrize("size,n,rng_", [(64, 1000, (0.1, 0.4)), (256, 300, (0.1, 0.4)), (512, 150, (0.1, 0.4)),
                                         (128, 500, (0.01, 0.05)), (128, 500, (0.5, 0.9))])
def test_hole_fractions_are_uniform_over_the_range(size, n, rng_):
    """Each mask aims at its own target drawn from U(lo, hi), so the fractions follow that uniform law: SciPy's
    Kolmogorov-Smirnov test does not reject it (a generator that only lands *inside* the range is rejected:
    its fractions pile up low, mean 0.224 at (0.1, 0.4))."""
    from scipy.stats import kstest
    lo, hi = rng_
    r = _hole_counts(random_walk_masks(n, size, hole_ratio=rng_, seed=11)) / size**2
    assert kstest(r, "uniform", args=(lo, hi - lo)).pvalue > 1e-3
    assert abs(r.mean() - (lo + hi) / 2) < 4 * (hi - lo) / np.sqrt(12 * n)  # 4 standard errors


def test_many_seeds_each_in_range():
    """Masks drawn one at a time with 50 different int seeds all land in (0.3, 0.35)."""
    for s in range(50):
        frac = float((random_walk_mask(48, 48, hole_ratio=(0.3, 0.35), seed=s) == 0).sum()) / 48**2
        assert 0.3 - 1e-9 <= frac <= 0.35 + 1e-9, (s, frac)


# --- random_walk_masks: seeding ------------------------------------------------------------------------

def test_same_seed_same_masks():
    """The same int seed gives identical masks."""
    assert torch.equal(random_walk_masks(6, 48, 64, seed=11), random_walk_masks(6, 48, 64, seed=11))


def test_different_seeds_different_masks():
    """Different seeds give different masks (they disagree on a sizeable share of pixels)."""
    a, b = random_walk_masks(4, 64, seed=1), random_walk_masks(4, 64, seed=2)
    assert not torch.equal(a, b)
    assert (a != b).float().mean() > 0.1


def test_masks_in_one_batch_differ():
    """The masks of one batch are not copies of one another."""
    m = random_walk_masks(20, 48, seed=0).reshape(20, -1)
    assert len({tuple(row.tolist()) for row in m}) == 20


def test_accepts_numpy_generator():
    """A numpy Generator works as seed; equal-state generators give equal masks, and it is consumed."""
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    a = random_walk_masks(3, 40, seed=g1)
    assert torch.equal(a, random_walk_masks(3, 40, seed=g2))
    assert not torch.equal(random_walk_masks(3, 40, seed=g1), a)  # the generator advanced


def test_none_seed_gives_fresh_masks():
    """seed=None draws fresh entropy: two calls differ."""
    assert not torch.equal(random_walk_masks(2, 48, seed=None), random_walk_masks(2, 48, seed=None))


# --- random_walk_masks: argument checks ---------------------------------------------------------------

@pytest.mark.parametrize("bad", [(0.4, 0.1), (0.2, 0.205), (0.3, 0.3), (0.5, 1.0), (0.0, 0.2), (1.0, 1.2),
                                 (-0.1, 0.2)])
def test_invalid_hole_ratio_raises(bad):
    """lo > hi, ranges narrower than 0.01, and bounds outside (0, 1) raise ValueError."""
    with pytest.raises(ValueError, match="hole_ratio"):
        random_walk_masks(1, 32, hole_ratio=bad, seed=0)


def test_too_small_size_raises():
    """Masks smaller than 8x8 are refused."""
    with pytest.raises(ValueError, match="8x8"):
        random_walk_masks(1, 7, 32, seed=0)


# --- random_walk_masks: shape of the damage ----------------------------------------------------------

def test_masks_are_strokes_not_salt_noise():
    """Holes form a few connected strokes: far fewer components (skimage.label) than hole pixels / 10."""
    m = random_walk_masks(20, 64, hole_ratio=(0.1, 0.4), seed=4)
    for k in range(len(m)):
        holes = m[k, 0].numpy() == 0
        n_comp = label(holes, connectivity=2).max()
        assert n_comp < holes.sum() / 10, (k, n_comp, holes.sum())
        # And the holes are not isolated pixels: most hole pixels have hole 4-neighbours on both sides along an
        # axis (about 0.12 of them for i.i.d. noise at 25 %; a crack-heavy mask at 64 px, 3 px wide, has 0.79)
        p = np.pad(holes, 1)
        inner = holes & p[:-2, 1:-1] & p[2:, 1:-1] | holes & p[1:-1, :-2] & p[1:-1, 2:]
        assert inner.sum() > 0.7 * holes.sum()


def test_same_target_salt_noise_would_fail_the_stroke_check():
    """Sanity of the stroke test: i.i.d. noise with the same hole fraction has many components."""
    rng = np.random.default_rng(0)
    holes = rng.random((64, 64)) < 0.25
    assert label(holes, connectivity=2).max() >= holes.sum() / 10


# --- _render geometry, against per-stamp Euclidean distance maps --------------------------------------

def _distance_checks(b, y, x, r, holes, tol_out):
    """Check rendered ``holes`` (n, H, W) against its stamps with a Euclidean distance map per stamp.

    Returns ``(inside, outside)``: stamps whose disc (distance <= r) is not all hole, and masks with a
    hole pixel farther than ``r + tol_out`` from every stamp (with the worst distance - r).
    Each stamp's map is computed on a window around it (pixels farther away cannot matter).
    """
    n, h, w = holes.shape
    inside_bad, outside_bad = [], []
    for m in range(n):
        excess = np.full((h, w), np.inf)  # min over stamps of (distance to centre - radius)
        for yi, xi, ri in zip(y[b == m], x[b == m], r[b == m]):
            reach = int(ri + tol_out) + 2
            y0, y1, x0, x1 = max(yi - reach, 0), min(yi + reach + 1, h), max(xi - reach, 0), min(xi + reach + 1, w)
            yy, xx = np.mgrid[y0:y1, x0:x1]
            d = np.hypot(yy - yi, xx - xi)
            if not holes[m, y0:y1, x0:x1][d <= ri].all():
                inside_bad.append((m, int(yi), int(xi), int(ri)))
            np.minimum(excess[y0:y1, x0:x1], d - ri, out=excess[y0:y1, x0:x1])
        worst = excess[holes[m]].max() if holes[m].any() else -np.inf
        if worst > tol_out + 1e-9:
            outside_bad.append((m, round(float(worst), 2)))
    return inside_bad, outside_bad


@pytest.mark.parametrize("h,w,seed", [(64, 64, 0), (48, 80, 1), (96, 96, 2), (256, 256, 3)])
def test_render_matches_its_stamps(h, w, seed):
    """Each pixel within r of a stamp centre is a hole, and each hole pixel lies within r + 0.5 of some
    stamp centre (the digital disc dy^2 + dx^2 <= r^2 + r reaches sqrt(r^2 + r) < r + 0.5)."""
    rng = np.random.default_rng(seed)
    targets = np.ceil(np.array([0.15, 0.3, 0.45]) * h * w)
    b, y, x, r, _ = _random_walk_steps(targets, h, w, rng)
    assert ((0 <= y) & (y < h) & (0 <= x) & (x < w)).all()
    assert (np.diff(b) >= 0).all()
    holes = ~_render(b, y, x, r, np.ones(len(b), bool), len(targets), h, w)
    assert holes.shape == (3, h, w) and holes.dtype == bool
    inside_bad, outside_bad = _distance_checks(b, y, x, r, holes, tol_out=0.5)
    assert not inside_bad, f"stamp discs not filled: {inside_bad[:5]}"
    assert not outside_bad, f"hole pixels farther than r + 0.5 from every stamp (mask, max distance - r): {outside_bad}"


def test_render_single_stamps_every_radius():
    """One stamp of each radius 1..24, at each centre parity, is exactly the digital disc
    dy^2 + dx^2 <= r^2 + r: it fills every pixel within r and reaches no farther than r + 0.5."""
    h = w = 72
    yy, xx = np.mgrid[:h, :w]
    for rad in range(1, 25):
        for py in (0, 1):
            for px in (0, 1):
                y, x = np.array([36 + py]), np.array([36 + px])
                hole = ~_render(np.array([0]), y, x, np.array([rad]), np.array([True]), 1, h, w)[0]
                d2 = (yy - y[0]) ** 2 + (xx - x[0]) ** 2
                assert np.array_equal(hole, d2 <= rad * rad + rad), (rad, py, px)
                assert np.sqrt(d2[hole].max()) - rad < 0.5, rad


def test_render_respects_keep_and_batch_index():
    """Dropped stamps draw nothing and each stamp lands only on its own mask of the batch."""
    b = np.array([0, 1, 1])
    y, x, r = np.array([10, 30, 5]), np.array([10, 30, 40]), np.array([2, 6, 3])
    holes = ~_render(b, y, x, r, np.array([True, True, False]), 2, 48, 48)
    assert holes[0, 10, 10] and not holes[1, 10, 10]
    assert holes[1, 30, 30] and not holes[0, 30, 30]
    assert not holes[:, 5, 40].any()
    disc2 = sum(1 for dy in range(-2, 3) for dx in range(-2, 3) if dy * dy + dx * dx <= 2 * 2 + 2)
    assert holes[0].sum() == disc2 == 21  # digital disc of radius 2 (dy^2 + dx^2 <= r^2 + r)


# --- hole_ratio ----------------------------------------------------------------------------------------

def test_hole_ratio_matches_manual_count():
    """hole_ratio equals (number of zeros) / (H * W), per mask and for batches."""
    m = random_walk_masks(5, 40, 56, seed=9)
    expected = _hole_counts(m) / (40 * 56)
    np.testing.assert_allclose(hole_ratio(m).numpy(), expected, atol=1e-6)
    assert hole_ratio(m).shape == (5,)
    assert hole_ratio(m[2]).shape == () and abs(float(hole_ratio(m[2])) - expected[2]) < 1e-6
    hand = torch.ones(1, 4, 5)
    hand[0, 1, 1:4] = 0
    assert abs(float(hole_ratio(hand)) - 3 / 20) < 1e-7


def test_hole_ratio_accepts_bool():
    """A bool mask gives the same ratio as its float version."""
    m = random_walk_masks(2, 32, seed=1)
    np.testing.assert_allclose(hole_ratio(m.bool()).numpy(), hole_ratio(m).numpy())


# --- check_mask ----------------------------------------------------------------------------------------

def test_check_mask_returns_same_tensor():
    """A valid mask (single or batched, float or bool) is returned unchanged, the very same object."""
    m = random_walk_mask(32, 48, seed=0)
    assert check_mask(m) is m
    assert check_mask(m, torch.rand(3, 32, 48)) is m
    mb = random_walk_masks(3, 32, seed=0)
    assert check_mask(mb, torch.rand(3, 3, 32, 32)) is mb
    assert check_mask(m.bool()) is not None


def test_check_mask_rejects_non_binary():
    """Values other than 0 and 1 raise ValueError saying the mask must be binary."""
    m = torch.ones(1, 8, 8)
    m[0, 0, 0] = 0.5
    with pytest.raises(ValueError, match="binary") as e:
        check_mask(m)
    assert "0.5" in str(e.value)
    with pytest.raises(ValueError, match="binary"):
        check_mask(torch.full((1, 8, 8), 255.0))


@pytest.mark.parametrize("shape", [(3, 8, 8), (8, 8), (2, 3, 8, 8), (1, 1, 1, 8, 8)])
def test_check_mask_rejects_wrong_shape(shape):
    """Shapes other than (1, H, W) / (B, 1, H, W) raise, quoting the shape."""
    with pytest.raises(ValueError, match=r"\(1, H, W\)") as e:
        check_mask(torch.ones(shape))
    assert str(tuple(shape)) in str(e.value)


def test_check_mask_rejects_size_mismatch():
    """A mask of another size than the image raises with both sizes in the message."""
    with pytest.raises(ValueError) as e:
        check_mask(torch.ones(1, 32, 48), torch.rand(3, 48, 32))
    assert "(32, 48)" in str(e.value) and "(48, 32)" in str(e.value)


def test_check_mask_rejects_inverted_convention():
    """A mask with 75% holes raises, pointing to '1 = known' and hole_value=255; max_hole_ratio=1.0 accepts it."""
    m = torch.zeros(1, 8, 8)
    m[0, :4, :4] = 1  # 48 of 64 pixels are holes
    with pytest.raises(ValueError) as e:
        check_mask(m)
    msg = str(e.value)
    assert "1 = known" in msg and "hole_value=255" in msg and "75%" in msg
    assert check_mask(m, max_hole_ratio=1.0) is m
    assert check_mask(1 - m) is not None  # the inverted mask (25% holes) is fine


def test_check_mask_rejects_non_tensor():
    """A numpy array is a TypeError."""
    with pytest.raises(TypeError):
        check_mask(np.ones((1, 8, 8)))


def test_composite_is_the_blend_with_exact_known_pixels_and_hole_only_gradients():
    """composite(known, mask, fill) = mask·known + (1 - mask)·fill (the blend, computed another way); known pixels
    stay bit for bit even under a NaN fill (the blend gives 0·NaN = NaN); the fill gets gradient only in the holes."""
    g = torch.Generator().manual_seed(0)
    known = torch.rand(2, 3, 16, 16, generator=g).half()
    mask = (torch.rand(2, 1, 16, 16, generator=g) > 0.3).half()
    fill = torch.rand(2, 3, 16, 16, generator=g, requires_grad=True)
    out = composite(known.float(), mask, fill)
    torch.testing.assert_close(out, mask.float() * known.float() + (1 - mask.float()) * fill, rtol=0, atol=0)
    nan = composite(known, mask, torch.full_like(known, float("nan")))
    assert torch.equal(nan[mask.expand_as(known) == 1], known[mask.expand_as(known) == 1])
    assert nan[mask.expand_as(known) == 0].isnan().all()
    out.sum().backward()
    assert torch.equal(fill.grad, (1 - mask.float()).expand_as(fill))
    assert composite(known[0], mask[0], fill[0]).shape == (3, 16, 16)  # unbatched
