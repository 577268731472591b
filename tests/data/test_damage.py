"""murallab.data.damage: painted damage for blind restoration."""

from __future__ import annotations

import pytest
import torch

from murallab.data import MuralPatchDataset, PaintedDamage, make_mural, paint_damage, random_walk_masks


@pytest.fixture
def pair():
    image = torch.stack([make_mural(64, seed=s) for s in range(3)])
    return image, random_walk_masks(3, 64, hole_ratio=(0.2, 0.3), seed=0)


def test_known_pixels_unchanged_and_holes_painted(pair):
    image, mask = pair
    out = paint_damage(image, mask, seed=1)
    known = mask.bool().expand_as(image)
    assert torch.equal(out[known], image[known])
    assert (out[~known] - image[~known]).abs().mean() > 0.05  # the damage is not the mural
    assert out.min() >= 0 and out.max() <= 1 and out.shape == image.shape


def test_damage_looks_like_plaster_not_a_flat_fill(pair):
    """Holes are pale earth tones (R >= G >= B on average) with texture (not one constant colour)."""
    image, mask = pair
    out = paint_damage(image, mask, seed=2)
    hole = (mask == 0)[:, 0]
    r, g, b = (out[:, c][hole] for c in range(3))
    assert r.mean() >= g.mean() >= b.mean() and r.mean() > 0.4
    assert out[:, 0][hole].std() > 0.02


def test_deterministic_by_seed_and_single_image_form(pair):
    image, mask = pair
    assert torch.equal(paint_damage(image, mask, seed=3), paint_damage(image, mask, seed=3))
    assert not torch.equal(paint_damage(image, mask, seed=3), paint_damage(image, mask, seed=4))
    assert paint_damage(image[0], mask[0], seed=3).shape == image[0].shape
    with pytest.raises(ValueError, match="mask must be"):
        paint_damage(image, mask[..., :-1], seed=0)


def test_dataset_wrapper_adds_corrupted_and_follows_epochs():
    ds = PaintedDamage(MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=96), seed=0)
    s0 = ds[1]
    assert set(s0) >= {"image", "mask", "masked", "corrupted"}
    known = s0["mask"].bool().expand_as(s0["image"])
    assert torch.equal(s0["corrupted"][known], s0["image"][known])
    assert torch.equal(ds[1]["corrupted"], s0["corrupted"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["mask"], s0["mask"])  # the wrapped dataset draws new masks too
