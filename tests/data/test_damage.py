"""murallab.data.damage: painted damage for blind restoration."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from murallab.data import (MuralPatchDataset, PaintedDamage, flake_masks, make_mural, paint_damage, pale_paint,
                           photograph, random_walk_masks)


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
    ds = PaintedDamage(MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=96), seed=0,
                       photo=False)
    s0 = ds[1]
    assert set(s0) >= {"image", "mask", "masked", "corrupted"}
    known = s0["mask"].bool().expand_as(s0["image"])
    assert torch.equal(s0["corrupted"][known], s0["image"][known])
    assert torch.equal(ds[1]["corrupted"], s0["corrupted"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["mask"], s0["mask"])  # the wrapped dataset draws new masks too


def test_flake_masks_have_exactly_the_hole_ratio_asked_for():
    ratio = torch.tensor([0.05, 0.2, 0.37])
    masks = flake_masks(ratio, 48, 64, seed=0)
    assert masks.shape == (3, 1, 48, 64) and set(masks.unique().tolist()) <= {0.0, 1.0}
    holes = (1 - masks).sum((1, 2, 3))
    assert torch.equal(holes, (ratio * 48 * 64).round())  # the lowest ρ·H·W pixels of the field, to the pixel
    assert torch.equal(flake_masks(ratio, 48, 64, seed=0), masks)
    assert not torch.equal(flake_masks(ratio, 48, 64, seed=1), masks)


@pytest.mark.parametrize("flakes", [0.0, 1.0])
def test_painted_damage_redraws_masks_as_flakes_keeping_the_hole_ratio(flakes):
    inner = MuralPatchDataset(None, patch_size=32, patches_per_image=3, n_murals=2, mural_size=96)
    ds = PaintedDamage(inner, seed=0, flakes=flakes, photo=False)
    for i in range(len(ds)):
        sample, original = ds[i], inner[i]
        assert torch.equal(sample["image"], original["image"])
        assert torch.equal(sample["masked"], sample["image"] * sample["mask"])
        known = sample["mask"].bool().expand_as(sample["image"])
        assert torch.equal(sample["corrupted"][known], sample["image"][known])
        assert torch.equal(sample["mask"], original["mask"]) == (flakes == 0)
        assert abs(sample["mask"].sum() - original["mask"].sum()) <= 1  # the same hole ratio, to the pixel
    with pytest.raises(ValueError, match="flakes is a fraction"):
        PaintedDamage(inner, flakes=50)  # a percentage where a fraction is expected


def test_photograph_is_a_jpeg_round_trip_as_pillow_writes_it():
    """With no blur, `photograph` is the JPEG round trip of Pillow (an independent encoder call) at that quality."""
    image = make_mural(96, seed=0)
    ours = photograph(image, blur=(0, 0), quality=(80, 80))
    buf = io.BytesIO()
    Image.fromarray((image.permute(1, 2, 0) * 255).round().byte().numpy()).save(buf, "JPEG", quality=80)
    pillow = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float() / 255
    assert (ours - pillow).abs().mean() < 1 / 255
    assert (ours - image).abs().mean() > 1 / 255  # and it is lossy


def test_photograph_blurs_and_the_dataset_photographs_the_whole_damaged_image():
    image = make_mural(96, seed=1)
    detail = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731  mean horizontal gradient
    sharp, blurred = photograph(image, blur=(0, 0), quality=(95, 95)), photograph(image, blur=(1, 1), quality=(95, 95))
    assert detail(blurred) < 0.8 * detail(sharp)
    inner = MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=96)
    plain, photo = PaintedDamage(inner, seed=0, photo=False)[1], PaintedDamage(inner, seed=0)[1]
    assert torch.equal(photo["mask"], plain["mask"])
    known = photo["mask"].bool().expand_as(photo["image"])
    change = (photo["corrupted"] - photo["image"])[known].abs().mean()
    assert 0 < change < 0.1  # the known pixels went through the camera too: changed, a little


def test_pale_paint_is_pale_smooth_and_leaves_the_rest_alone():
    """Decoys: pale paint on 3-15 % of the image (plus soft edges), every pixel it calls kept exactly the image's, and
    inside, much less fine detail (a discrete Laplacian) than painted damage in the same place."""
    laplacian = lambda x: (4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1]  # noqa: E731
                           - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]).abs().mean(0)
    detail = {"paint": [], "damage": []}
    for i in range(4):
        img = make_mural(96, seed=i)
        out, kept = pale_paint(img, seed=i)
        assert out.shape == img.shape and kept.shape == (1, 96, 96) and 0 <= out.min() and out.max() <= 1
        assert 0.03 <= 1 - kept.mean() <= 0.3  # 3-15 % drawn, and the soft edges around it
        same = kept.bool().expand_as(img)
        assert torch.equal(out[same], img[same])
        inside = (-torch.nn.functional.max_pool2d(-(1 - kept)[None], 9, 1, 4))[0, 0, 1:-1, 1:-1].bool()  # 4 px in
        assert out.mean(0)[1:-1, 1:-1][inside].mean() > 0.6  # pale: plaster to skin
        detail["paint"].append(laplacian(out)[inside])
        detail["damage"].append(laplacian(paint_damage(img, kept, seed=i))[inside])
    assert torch.cat(detail["paint"]).mean() < 0.6 * torch.cat(detail["damage"]).mean()
    image = make_mural(96, seed=0)
    assert torch.equal(pale_paint(image, seed=5)[0], pale_paint(image, seed=5)[0])
    assert not torch.equal(pale_paint(image, seed=5)[0], pale_paint(image, seed=6)[0])


def test_painted_damage_decoys_are_part_of_the_truth():
    """With decoys the pale paint is in the target image (it is intact paint), and the damage is painted over it."""
    inner = MuralPatchDataset(None, patch_size=48, patches_per_image=3, n_murals=2, mural_size=96)
    plain, decoyed = PaintedDamage(inner, seed=0, photo=False), PaintedDamage(inner, seed=0, photo=False, decoys=1.0)
    for i in range(len(inner)):
        a, b = plain[i], decoyed[i]
        assert torch.equal(a["mask"], b["mask"]) and not torch.equal(a["image"], b["image"])
        assert torch.equal(b["masked"], b["image"] * b["mask"])
        known = b["mask"].bool().expand_as(b["image"])
        assert torch.equal(b["corrupted"][known], b["image"][known])
    with pytest.raises(ValueError, match="decoys is a fraction"):
        PaintedDamage(inner, decoys=-0.5)
