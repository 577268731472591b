"""murallab.data.augment: PairedAugment keeps image and mask aligned."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import InterpolationMode

from murallab.data import PairedAugment


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _blocky(seed: int = 0, size: int = 64, block: int = 8, *, away_from_half: bool = False):
    """A (3, size, size) image of block x block random-colour squares and the mask image[0] > 0.5."""
    n = size // block
    colours = torch.rand(3, n, n, generator=_gen(seed))
    if away_from_half:  # red in [0.05, 0.3] or [0.7, 0.95]: bilinear mixes cross 0.5 near block edges
        colours[0] = torch.where(colours[0] > 0.5, 0.7 + 0.5 * (colours[0] - 0.5), 0.05 + 0.5 * colours[0])
    image = colours.repeat_interleave(block, 1).repeat_interleave(block, 2)
    return image, (image[0:1] > 0.5).float()


def test_nearest_alignment_exact():
    """With nearest interpolation, the augmented mask equals (augmented image[0] > 0.5) exactly, for 40
    generators with rotate_p=1 and hflip_p=0.5 (the mask is a pixel-wise function of the image)."""
    aug = PairedAugment(hflip_p=0.5, rotate_degrees=30, rotate_p=1.0, interpolation=InterpolationMode.NEAREST)
    flips = 0
    for s in range(40):
        image, mask = _blocky(s)
        params = aug.sample_params(_gen(s))
        flips += params["hflip"]
        assert params["angle"] != 0.0
        out_img, out_mask = aug(image, mask, generator=_gen(s))
        assert out_img.shape == image.shape and out_mask.shape == mask.shape
        assert torch.equal(out_mask, (out_img[0:1] > 0.5).float()), (s, params)
        assert not torch.equal(out_mask, mask)  # something really happened
    assert 5 < flips < 35  # both flipped and unflipped cases were exercised


def test_nearest_alignment_exact_outside_hole():
    """The same alignment holds with outside='hole' wherever the mask is known (corners are holes)."""
    aug = PairedAugment(hflip_p=0.5, rotate_degrees=40, rotate_p=1.0, outside="hole",
                        interpolation=InterpolationMode.NEAREST)
    for s in range(20):
        image, mask = _blocky(s)
        out_img, out_mask = aug(image, mask, generator=_gen(s))
        inside = out_img.abs().sum(0, keepdim=True) > 0  # pixels that received image content
        assert torch.equal(out_mask[inside], (out_img[0:1] > 0.5).float()[inside]), s
        assert (out_mask[~inside] == 0).all()


def test_bilinear_alignment_close():
    """With the default bilinear image interpolation, mask and (image[0] > 0.5) agree on >= 97% of pixels."""
    aug = PairedAugment(hflip_p=0.5, rotate_degrees=30, rotate_p=1.0)
    for s in range(20):
        image, mask = _blocky(s, away_from_half=True)
        out_img, out_mask = aug(image, mask, generator=_gen(s))
        agree = (out_mask == (out_img[0:1] > 0.5).float()).float().mean().item()
        assert agree >= 0.97, (s, agree)


def test_mask_stays_binary():
    """After bilinear rotation of the image, the mask still holds only 0 and 1."""
    aug = PairedAugment(rotate_p=1.0, rotate_degrees=45)
    for s in range(10):
        image, mask = _blocky(s)
        _, out_mask = aug(image, mask, generator=_gen(s))
        assert set(torch.unique(out_mask).tolist()) <= {0.0, 1.0}


def test_hflip_alone_is_torch_flip():
    """hflip_p=1 and no rotation is torch.flip(x, [-1]) for both image and mask."""
    image, mask = _blocky(3, size=32)
    image = image[:, :, :30]  # non-square to catch axis mix-ups
    mask = mask[:, :, :30]
    aug = PairedAugment(hflip_p=1.0, rotate_p=0.0)
    out_img, out_mask = aug(image, mask, generator=_gen(0))
    assert torch.equal(out_img, torch.flip(image, [-1]))
    assert torch.equal(out_mask, torch.flip(mask, [-1]))
    assert type(out_img) is torch.Tensor and type(out_mask) is torch.Tensor  # plain tensors, not tv_tensors


def test_identity_when_probabilities_zero():
    """hflip_p=0 and rotate_p=0 return the inputs' values unchanged."""
    image, mask = _blocky(1)
    out_img, out_mask = PairedAugment(hflip_p=0, rotate_p=0)(image, mask, generator=_gen(0))
    assert torch.equal(out_img, image) and torch.equal(out_mask, mask)


def test_outside_hole_marks_corners():
    """outside='hole' at 45 degrees: corners become holes with black image; the centre pixel is unchanged."""
    n = 65  # odd size: the rotation centre is the centre pixel
    image = torch.rand(3, n, n, generator=_gen(0)) * 0.8 + 0.1
    aug = PairedAugment(outside="hole")
    out_img, out_mask = aug.apply(image, torch.ones(1, n, n), {"hflip": False, "angle": 45.0})
    for y, x in [(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1), (2, 3)]:
        assert out_mask[0, y, x] == 0 and (out_img[:, y, x] == 0).all(), (y, x)
    c = n // 2
    assert out_mask[0, c, c] == 1
    assert torch.allclose(out_img[:, c, c], image[:, c, c], atol=1e-5)
    # A square and its 45 degree turn overlap in an octagon of area 2 (sqrt 2 - 1) = 0.828: 17.2% is lost.
    lost = (out_mask == 0).float().mean().item()
    assert abs(lost - (1 - 2 * (2 ** 0.5 - 1))) < 0.02, lost
    assert set(torch.unique(out_mask).tolist()) == {0.0, 1.0}


def test_outside_reflect_keeps_content_everywhere():
    """outside='reflect': an all-ones mask stays all ones and a bright image gets no black corners."""
    n = 64
    image = torch.rand(3, n, n, generator=_gen(1)) * 0.3 + 0.6
    aug = PairedAugment(outside="reflect")
    for angle in (45.0, -30.0, 10.0):
        out_img, out_mask = aug.apply(image, torch.ones(1, n, n), {"hflip": False, "angle": angle})
        assert (out_mask == 1).all(), angle
        assert out_img.min() >= 0.6 - 1e-5 and out_img.max() <= 0.9 + 1e-5, angle


def test_same_generator_seed_same_output():
    """The same generator seed gives the same output; the augmenter's own seed is reproducible too."""
    image, mask = _blocky(2)
    aug = PairedAugment(rotate_p=1.0)
    a = aug(image, mask, generator=_gen(9))
    b = aug(image, mask, generator=_gen(9))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = PairedAugment(rotate_p=1.0, seed=4)(image, mask)
    d = PairedAugment(rotate_p=1.0, seed=4)(image, mask)
    assert torch.equal(c[0], d[0]) and torch.equal(c[1], d[1])
    angles = {PairedAugment(rotate_p=1.0).sample_params(_gen(s))["angle"] for s in range(5)}
    assert len(angles) == 5


def test_sample_params_ranges():
    """Angles lie in [-d, d]; rotate_p=0 gives angle 0; the hflip rate follows hflip_p."""
    aug = PairedAugment(hflip_p=0.25, rotate_degrees=20, rotate_p=1.0)
    ps = [aug.sample_params(_gen(s)) for s in range(400)]
    assert all(-20 <= p["angle"] <= 20 for p in ps)
    assert 0.17 < sum(p["hflip"] for p in ps) / 400 < 0.33
    assert all(PairedAugment(rotate_p=0.0).sample_params(_gen(s))["angle"] == 0.0 for s in range(20))


def test_batch_dimensions_share_one_draw():
    """A (B, C, H, W) batch gets the same transform on every element."""
    image, mask = _blocky(5)
    batch_img, batch_mask = image.expand(2, -1, -1, -1).clone(), mask.expand(2, -1, -1, -1).clone()
    out_img, out_mask = PairedAugment(rotate_p=1.0, hflip_p=1.0)(batch_img, batch_mask, generator=_gen(1))
    assert torch.equal(out_img[0], out_img[1]) and torch.equal(out_mask[0], out_mask[1])


def test_size_mismatch_raises():
    """An image and a mask of different sizes raise ValueError."""
    with pytest.raises(ValueError, match="differ in size"):
        PairedAugment()(torch.rand(3, 32, 32), torch.ones(1, 32, 30))


@pytest.mark.parametrize("kwargs", [{"outside": "zero"}, {"hflip_p": 1.5}, {"rotate_p": -0.1},
                                    {"rotate_degrees": 200}])
def test_invalid_arguments(kwargs):
    """Unknown outside modes, probabilities outside [0, 1] and angles over 180 are refused."""
    with pytest.raises(ValueError):
        PairedAugment(**kwargs)


def test_colour_jitter_follows_the_formulas_and_spares_the_mask():
    """Brightness scales, saturation 0 is ITU-R 601 grey, hue rotates as colorsys does; geometry draws unchanged."""
    import colorsys
    image, mask = torch.rand(3, 16, 16), (torch.rand(1, 16, 16) > 0.3).float()
    aug = PairedAugment(hflip_p=0.0, rotate_p=0.0, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1)
    base = {"hflip": False, "angle": 0.0, "brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "hue": 0.0}
    out, m = aug.apply(image, mask, dict(base, brightness=0.7))
    assert torch.allclose(out, (image * 0.7).clamp(0, 1), atol=1e-6) and torch.equal(m, mask)
    grey, _ = aug.apply(image, mask, dict(base, saturation=0.0))
    luma = (0.2989 * image[0] + 0.587 * image[1] + 0.114 * image[2]).clamp(0, 1)  # ITU-R 601, as torchvision rounds it
    assert torch.allclose(grey, luma.expand(3, -1, -1), atol=1e-5)
    shifted, _ = aug.apply(image, mask, dict(base, hue=0.1))
    for y, x in [(0, 0), (5, 9), (15, 3)]:
        h, s, v = colorsys.rgb_to_hsv(*image[:, y, x].tolist())
        assert torch.allclose(shifted[:, y, x], torch.tensor(colorsys.hsv_to_rgb((h + 0.1) % 1, s, v)), atol=1e-4)
    p = aug.sample_params(torch.Generator().manual_seed(0))
    assert 0.5 <= p["brightness"] <= 1.5 and -0.1 <= p["hue"] <= 0.1
    plain = PairedAugment().sample_params(torch.Generator().manual_seed(0))
    jittered = PairedAugment(brightness=0.2).sample_params(torch.Generator().manual_seed(0))
    assert {k: jittered[k] for k in plain} == plain
    with pytest.raises(ValueError, match="hue"):
        PairedAugment(hue=0.7)


def test_white_balance_changes_tint_not_exposure():
    """The gains average 1: a grey image keeps its mean level while its channels part."""
    aug = PairedAugment(hflip_p=0, rotate_p=0, white_balance=0.2, seed=0)
    image, mask = torch.full((3, 16, 16), 0.5), torch.ones(1, 16, 16)
    params = aug.sample_params()
    out, _ = aug.apply(image, mask, params)
    assert abs(sum(params["gains"]) / 3 - 1) < 1e-6
    assert torch.allclose(out.mean(), image.mean(), atol=1e-5)
    assert torch.allclose(out[:, 0, 0], 0.5 * torch.tensor(params["gains"]), atol=1e-6)


def test_jpeg_matches_pillow_at_the_drawn_quality():
    import io

    import numpy as np
    from PIL import Image

    aug = PairedAugment(hflip_p=0, rotate_p=0, jpeg=(30, 30), seed=0)
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 32, 32, generator=g)
    out, mask = aug(image, torch.ones(1, 32, 32))
    buf = io.BytesIO()
    Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=30)
    ref = torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float() / 255
    assert (out - ref).abs().mean() < 2 / 255  # two JPEG codecs, the same quality
    assert (out - image).abs().mean() > 10 / 255  # and it did compress
    assert torch.equal(mask, torch.ones(1, 32, 32))


def test_photographic_settings_checked():
    with pytest.raises(ValueError, match="jpeg"):
        PairedAugment(jpeg=(0, 90))
    with pytest.raises(ValueError, match="white_balance"):
        PairedAugment(white_balance=1.5)
