"""DiffuMural-lite: contour maps, mask pyramids, K-means damage segmentation, the coarse-to-fine sampler."""

import pytest
import torch

from murallab.data import PALETTE, make_murals, paint_damage, random_walk_masks
from murallab.diffusion import (CallCounter, NoiseSchedule, TimeUNet, damage_contour, downsample_mask, kmeans,
                                kmeans_damage_mask, multiscale_sample, scale_condition, timesteps, upsample)


def square_hole(size=12, lo=4, hi=8):
    m = torch.ones(1, 1, size, size)
    m[..., lo:hi, lo:hi] = 0
    return m


def test_contour_is_the_band_around_the_hole_boundary():
    c = damage_contour(square_hole())[0, 0]
    # width 1: the hole's own border ring (4x4 minus 2x2 interior) and the known ring outside it (6x6 minus 4x4)
    want = torch.zeros(12, 12)
    want[3:9, 3:9] = 1
    want[5:7, 5:7] = 0
    assert torch.equal(c, want)
    assert damage_contour(torch.ones(1, 1, 8, 8)).sum() == 0


def test_downsampled_mask_is_known_only_where_every_pixel_is_known():
    m = torch.ones(1, 1, 8, 8)
    m[0, 0, 1, 1] = 0  # one hole pixel in the top-left 2x2 block
    d = downsample_mask(m, 4)
    assert d.shape == (1, 1, 4, 4) and d[0, 0, 0, 0] == 0 and d.sum() == 15


def test_kmeans_finds_two_separated_clusters():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 3, generator=g) * 0.05
    b = torch.randn(30, 3, generator=g) * 0.05 + 1
    labels, centres = kmeans(torch.cat([a, b]), torch.stack([a[0], b[0]]).clone())
    assert labels[:50].eq(labels[0]).all() and labels[50:].eq(labels[50]).all() and labels[0] != labels[50]
    assert torch.allclose(centres[labels[50]], b.mean(0), atol=1e-6)


def test_kmeans_damage_mask_finds_plaster_coloured_damage():
    """On a flat azurite field with painted (plaster-like) damage, K = 2 recovers the hole map."""
    image = torch.tensor(PALETTE["azurite"]).view(1, 3, 1, 1).expand(2, 3, 32, 32).clone()
    mask = random_walk_masks(2, 32, hole_ratio=(0.2, 0.3), seed=0)
    est = kmeans_damage_mask(paint_damage(image, mask, seed=0))
    assert est.shape == mask.shape
    assert (est == mask).float().mean() > 0.98


def test_kmeans_does_not_flag_a_plaster_ground_wholesale():
    """A patch that is mostly bare plaster ground with a little paint: the plaster cluster covers far more than
    max_damage, so it is the ground, not damage, and nothing is flagged; with a higher limit it is all flagged."""
    image = torch.tensor(PALETTE["plaster"]).view(1, 3, 1, 1).expand(1, 3, 32, 32).clone()
    image[..., 12:20, 12:20] = torch.tensor(PALETTE["azurite"]).view(1, 3, 1, 1)  # 6 % paint
    assert torch.equal(kmeans_damage_mask(image), torch.ones(1, 1, 32, 32))
    flagged = 1 - kmeans_damage_mask(image, max_damage=1.0).mean()
    assert abs(flagged - (1 - 64 / 1024)) < 1e-6


def test_scale_condition_channels():
    known, mask = torch.rand(2, 3, 16, 16), random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=2)
    c0 = scale_condition(known, mask, None)
    assert c0.shape == (2, 8, 16, 16) and c0[:, :3].abs().sum() == 0
    c1 = scale_condition(known, mask, torch.rand(2, 3, 8, 8))
    assert c1[:, :3].abs().sum() > 0 and torch.equal(c1[:, 6:7], mask) and torch.equal(c1[:, 7:], damage_contour(mask))


def test_multiscale_sample_keeps_known_pixels_and_costs_steps_per_scale():
    sched = NoiseSchedule.cosine(50)
    models = [CallCounter(TimeUNet(cond_channels=8, base=8, mults=(1, 2)).eval()) for _ in range(2)]
    known = make_murals(2, 16, seed=0)
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=0)
    out, scales = multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=5, return_scales=True)
    assert [m.calls for m in models] == [5, 5]
    assert out.shape == known.shape and [s.shape[-1] for s in scales] == [8, 16]
    assert torch.equal(out[mask.expand_as(out) == 1], known[mask.expand_as(out) == 1])
    blind = multiscale_sample(models, sched, paint_damage(known, mask), None, sizes=(8, 16), steps=2, sampler="ddpm")
    assert blind.shape == known.shape
    with pytest.raises(ValueError, match="finest size"):
        multiscale_sample(models, sched, known, mask, sizes=(8, 32))


def test_multiscale_sample_takes_a_step_count_per_scale():
    sched = NoiseSchedule.cosine(50)
    models = [CallCounter(TimeUNet(cond_channels=8, base=8, mults=(1, 2)).eval()) for _ in range(2)]
    known = make_murals(2, 16, seed=1)
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=1)
    multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=[1, 7])
    assert [m.calls for m in models] == [1, 7]
    for bad in ([3], [0, 4], [2, 2, 2]):
        with pytest.raises(ValueError, match="one count >= 1 per scale"):
            multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=bad)


def test_timesteps_from_a_start_step():
    assert timesteps(1000, 5, start=400) == [400, 300, 200, 100, 0]
    assert timesteps(10) == list(range(9, -1, -1)) and timesteps(10, start=3) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="start"):
        timesteps(10, 2, start=10)
    with pytest.raises(ValueError, match="steps"):
        timesteps(10, 5, start=3)


def test_timesteps_down_to_an_end_step():
    assert timesteps(1000, 4, end=400) == [999, 799, 600, 400]
    assert timesteps(10, start=6, end=3) == [6, 5, 4, 3] and timesteps(1000, 1, end=400) == [999]
    for kw, words in ((dict(end=7, start=6), "end"), (dict(end=-1), "end"), (dict(steps=5, start=6, end=3), "steps")):
        with pytest.raises(ValueError, match=words):
            timesteps(10, **kw)


def test_refine_from_starts_the_fine_scale_from_the_noised_coarse_result():
    """With refine_from, the fine scale's DDIM runs from step refine_from·(T-1) and its first input is the coarse
    result upsampled and noised to that step: at refine_from = 0 (noise of std sqrt(1 - ᾱ_0), about 0.03 here) a
    model that predicts x0 = its input returns nearly the upsampled coarse result in the holes; from pure noise
    it does not."""
    sched = NoiseSchedule.cosine(50)
    seen = []

    class Echo(torch.nn.Module):  # an x0-model whose estimate is x_t itself, recording the steps it is called at
        prediction = "x0"

        def forward(self, x, t, cond):
            seen.append(int(t[0]))
            return x

    known = make_murals(2, 16, seed=1)
    mask = random_walk_masks(2, 16, hole_ratio=(0.2, 0.4), seed=1)
    models = [CallCounter(TimeUNet(cond_channels=8, base=8, mults=(1, 2)).eval()), Echo()]
    out, scales = multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=4, refine_from=0.5,
                                    return_scales=True)
    assert seen == timesteps(50, 4, start=round(0.5 * 49))
    seen.clear()
    out, scales = multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=1, refine_from=0.0,
                                    return_scales=True)
    assert seen == [0]
    up, hole = upsample(scales[0], 16).clamp(0, 1), mask.expand_as(out) == 0
    assert (out[hole] - up[hole]).abs().mean() < 0.05
    plain = multiscale_sample(models, sched, known, mask, sizes=(8, 16), steps=1)
    assert (plain[hole] - up[hole]).abs().mean() > 0.2
