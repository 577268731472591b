"""murallab.metrics: exact MSE / PSNR / SSIM, full image and hole only, and the legacy DLCV number."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from murallab import metrics
from murallab.data import make_mural, random_walk_masks


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see tests/conftest.py


def _u8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, C) uint8."""
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _f(a: np.ndarray) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, H, W) float64 in [0, 1]."""
    return torch.from_numpy(a).permute(2, 0, 1).double() / 255


@pytest.fixture(scope="module")
def pair():
    """Two 8-bit murals (gt, a damaged restoration) and hole masks, as float tensors and uint8 arrays."""
    gt = torch.stack([make_mural(48, 64, seed=i) for i in range(3)])
    mask = random_walk_masks(3, 48, 64, hole_ratio=(0.15, 0.3), seed=2)
    noise = torch.randn(gt.shape, generator=torch.Generator().manual_seed(0))
    pred = (gt + 0.05 * noise + 0.1 * (1 - mask)).clamp(0, 1)
    gt8, pred8 = [_u8(t) for t in gt], [_u8(t) for t in pred]
    return torch.stack([_f(a) for a in gt8]), torch.stack([_f(a) for a in pred8]), mask, gt8, pred8


def test_mse_psnr_equal_the_definition_and_skimage(pair):
    gt, pred, _, gt8, pred8 = pair
    per_image = metrics.mse(pred, gt, reduction="none")
    for k in range(3):
        exact = np.mean((gt8[k].astype(np.int64) - pred8[k].astype(np.int64)) ** 2)
        assert float(per_image[k]) == pytest.approx(exact, rel=1e-12)
        assert float(metrics.psnr(pred[k], gt[k])) == pytest.approx(
            peak_signal_noise_ratio(gt8[k], pred8[k], data_range=255), rel=1e-12)
    assert float(metrics.mse(pred, gt)) == pytest.approx(float(per_image.mean()))
    assert float(metrics.psnr(pred, gt)) == pytest.approx(float((10 * torch.log10(255 ** 2 / per_image)).mean()))
    assert metrics.psnr(gt, gt) == math.inf


def test_ssim_equals_skimage_per_image(pair):
    gt, pred, _, gt8, pred8 = pair
    ours = metrics.ssim(pred, gt, reduction="none")
    for k in range(3):
        ref = structural_similarity(gt8[k] / 255, pred8[k] / 255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1.0, channel_axis=-1)
        assert float(ours[k]) == pytest.approx(ref, abs=1e-5)


def test_ssim_on_a_real_photograph():
    a = skimage.data.astronaut()[100:228, 150:278]
    b = np.clip(a + np.random.default_rng(0).normal(0, 10, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a / 255, b / 255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=1.0, channel_axis=-1)
    assert float(metrics.ssim(_f(b), _f(a))) == pytest.approx(ref, abs=1e-5)


def test_hole_mse_is_the_mean_over_hole_pixels(pair):
    gt, pred, mask, gt8, pred8 = pair
    ours = metrics.mse(pred, gt, mask, reduction="none")
    for k in range(3):
        hole = mask[k, 0].numpy() == 0
        d = gt8[k].astype(np.int64)[hole] - pred8[k].astype(np.int64)[hole]
        assert float(ours[k]) == pytest.approx(np.mean(d ** 2), rel=1e-12)


def test_hole_ssim_is_the_composite_map_over_hole_centres(pair):
    """ssim with a mask = skimage's full SSIM map of the composite, averaged over windows centred on hole pixels
    at least 5 pixels from the border."""
    gt, pred, mask, _, _ = pair
    ours = metrics.ssim(pred, gt, mask, reduction="none")
    for k in range(3):
        m = mask[k].numpy().transpose(1, 2, 0)
        g, p = gt[k].numpy().transpose(1, 2, 0), pred[k].numpy().transpose(1, 2, 0)
        comp = m * g + (1 - m) * p
        _, smap = structural_similarity(comp, g, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=1.0, channel_axis=-1, full=True)
        centres = (m[..., 0] == 0)[5:-5, 5:-5]
        assert float(ours[k]) == pytest.approx(smap[5:-5, 5:-5][centres].mean(), abs=1e-5)


def test_hole_metrics_ignore_known_pixels(pair):
    """Scribbling over the known pixels of the prediction changes the full-image metrics, not the hole-only ones."""
    gt, pred, mask, _, _ = pair
    scribbled = mask * torch.rand(pred.shape, generator=torch.Generator().manual_seed(3), dtype=pred.dtype) \
        + (1 - mask) * pred
    for fn in (metrics.mse, metrics.psnr, metrics.ssim):
        assert torch.allclose(fn(scribbled, gt, mask, reduction="none"), fn(pred, gt, mask, reduction="none"),
                              rtol=0, atol=1e-9), fn.__name__
        assert not torch.allclose(fn(scribbled, gt, reduction="none"), fn(pred, gt, reduction="none")), fn.__name__


def test_image_without_holes_has_no_hole_value(pair):
    gt, pred, mask, _, _ = pair
    mask = mask.clone()
    mask[1] = 1
    per_image = metrics.mse(pred, gt, mask, reduction="none")
    assert math.isnan(float(per_image[1])) and not per_image[[0, 2]].isnan().any()
    assert float(metrics.mse(pred, gt, mask)) == pytest.approx(float(per_image[[0, 2]].mean()))
    assert math.isnan(float(metrics.ssim(pred[1], gt[1], mask[1])))


def test_legacy_mse_is_the_uint8_wraparound(pair):
    """legacy_dlcv_mse equals Σ (d² mod 256) / n computed explicitly, and differs from the exact MSE."""
    _, _, _, gt8, pred8 = pair
    for g, p in zip(gt8, pred8):
        d = g.astype(np.int64) - p.astype(np.int64)
        assert metrics.legacy_dlcv_mse(g, p) == pytest.approx(np.mean((d ** 2) % 256), rel=1e-12)
        assert metrics.legacy_dlcv_mse(g, p) == pytest.approx(np.mean(((g - p) ** 2).astype(np.float64)))
    assert metrics.legacy_dlcv_mse(np.stack(gt8), np.stack(pred8)) == pytest.approx(
        np.mean([metrics.legacy_dlcv_mse(g, p) for g, p in zip(gt8, pred8)]))


def test_legacy_trap_unfilled_hole_scores_like_a_good_inpainting(pair):
    """The trap in numbers: a black, unfilled hole is ~700x worse than a good inpainting in exact MSE, but only a
    few times worse in the legacy number, which can never exceed 255; an error of 16 counts as 0."""
    gt, _, mask, gt8, _ = pair
    hole = mask[0, 0].numpy() == 0
    black = gt8[0].copy()
    black[hole] = 0
    good = gt8[0].astype(np.int64)
    good[hole] += np.random.default_rng(0).normal(0, 6, good[hole].shape).round().astype(np.int64)
    good = good.clip(0, 255).astype(np.uint8)
    exact = {k: float(metrics.mse(_f(v), gt[0])) for k, v in (("black", black), ("good", good))}
    legacy = {k: metrics.legacy_dlcv_mse(gt8[0], v) for k, v in (("black", black), ("good", good))}
    assert exact["black"] / exact["good"] > 100
    assert legacy["black"] / legacy["good"] < 10 and legacy["black"] <= 255
    sixteen = np.full((4, 4, 3), 100, np.uint8)
    assert metrics.legacy_dlcv_mse(sixteen, sixteen + 16) == 0.0
    assert float(metrics.mse(_f(sixteen + 16), _f(sixteen))) == pytest.approx(256.0)


def test_evaluate_and_errors(pair):
    gt, pred, mask, gt8, pred8 = pair
    out = metrics.scores(pred, gt, mask)
    assert set(out) == {"mse", "psnr", "ssim", "mse_hole", "psnr_hole", "ssim_hole", "legacy_dlcv_mse"}
    assert all(v.shape == (3,) for v in out.values())
    assert float(out["legacy_dlcv_mse"][2]) == pytest.approx(metrics.legacy_dlcv_mse(gt8[2], pred8[2]))
    with pytest.raises(TypeError, match="uint8"):
        metrics.legacy_dlcv_mse(gt8[0].astype(np.float32), pred8[0])
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.legacy_dlcv_mse(gt8[0], pred8[0][:-1])
    with pytest.raises(TypeError, match="255"):
        metrics.mse(torch.from_numpy(pred8[0]), torch.from_numpy(gt8[0]))
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(pred, gt[:, :, :-1])
    with pytest.raises(ValueError, match="size"):
        metrics.ssim(pred, gt, mask[..., :-1])


@pytest.mark.parametrize("sigma", [0.7, 2.0, 4.0])
def test_blurred_truth_is_scipys_gaussian_in_the_holes(pair, sigma):
    """The ruler's oracle = scikit-image's Gaussian filter (mirror borders, truncated at 3σ) inside the holes and
    the truth outside; its scores fall as σ grows."""
    from skimage.filters import gaussian
    target, _, mask = pair[:3]
    out = metrics.blurred_truth(target, mask, sigma)
    ref = torch.from_numpy(np.stack([gaussian(t.permute(1, 2, 0).double().numpy(), sigma=sigma, mode="mirror",
                                              truncate=math.ceil(3 * sigma) / sigma, channel_axis=-1)
                                     for t in target])).permute(0, 3, 1, 2).to(target.dtype)
    hole = (mask == 0).expand_as(target)
    torch.testing.assert_close(out[hole], ref[hole], atol=1e-5, rtol=0)
    assert torch.equal(out[~hole], target[~hole])
    sharper = metrics.blurred_truth(target, mask, sigma / 2)
    assert metrics.psnr(sharper, target) > metrics.psnr(out, target)
    assert metrics.ssim(sharper, target) > metrics.ssim(out, target)


def test_blurred_truth_rejects_bad_sigma_and_masks(pair):
    target, _, mask = pair[:3]
    with pytest.raises(ValueError, match="sigma"):
        metrics.blurred_truth(target, mask, 0)
    with pytest.raises(ValueError, match="size"):
        metrics.blurred_truth(target, mask[..., :-1], 2.0)


# --- damage maps: IoU and F1 -------------------------------------------------------------------------------------

def _set_iou_f1(pred, truth):
    """IoU and F1 from Python sets of damaged pixel indices: an independent formulation."""
    p, t = set(np.flatnonzero(pred.numpy())), set(np.flatnonzero(truth.numpy()))
    if not p and not t:
        return 1.0, 1.0
    return len(p & t) / len(p | t), 2 * len(p & t) / (len(p) + len(t))


def test_iou_and_f1_match_set_formulas():
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(4, 1, 9, 7, generator=g) > torch.tensor([0.2, 0.5, 0.9, 1.0]).view(4, 1, 1, 1)
    truth = torch.rand(4, 1, 9, 7, generator=g) > 0.6
    truth[3] = False  # image 3: both maps empty, perfect agreement
    want = [_set_iou_f1(a, b) for a, b in zip(pred, truth)]
    iou, f1 = metrics.iou(pred, truth, reduction="none"), metrics.f1(pred, truth, reduction="none")
    assert iou.dtype == torch.float64 and iou.shape == (4,)
    assert iou.tolist() == pytest.approx([w[0] for w in want], abs=1e-12)
    assert f1.tolist() == pytest.approx([w[1] for w in want], abs=1e-12)
    assert iou[3] == 1.0 and f1[3] == 1.0
    torch.testing.assert_close(f1, 2 * iou / (1 + iou), atol=1e-12, rtol=0)  # the identity between the two
    assert metrics.iou(pred, truth).item() == pytest.approx(iou.mean().item(), abs=1e-12)


def test_iou_hand_case_and_bad_input():
    pred = torch.tensor([[[True, True, False, False]]])  # (1, 1, 4)
    truth = torch.tensor([[[False, True, True, False]]])
    assert metrics.iou(pred, truth).item() == pytest.approx(1 / 3)
    assert metrics.f1(pred, truth).item() == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match="boolean"):
        metrics.iou(pred.float(), truth)
    with pytest.raises(ValueError, match="same shape"):
        metrics.f1(pred, truth[..., :3])


def test_choose_threshold_is_the_best_iou_of_the_sweep():
    """A damage map whose probability is 0.3 on the true damage and 0.2 on a false rim: τ in (0.2, 0.3] gives IoU 1,
    lower thresholds add the rim; a map with nothing above 0.5 loses everything at τ = 0.5."""
    truth = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    truth[:, :, 2:5, 2:5] = True
    prob = torch.where(truth, 0.3, 0.0)
    prob[:, :, 5, 2:5] = 0.2  # 3 false pixels: IoU 9 / 12 at τ <= 0.2
    tau, table = metrics.choose_threshold(prob, truth, thresholds=(0.1, 0.2, 0.25, 0.3, 0.5))
    assert tau == 0.25 and table[0.25] == table[0.3] == 1.0
    assert table[0.1] == pytest.approx(9 / 12) and table[0.5] == 0.0


def test_hf_energy_is_scipy_laplace_squared_over_the_inner_hole():
    """The texture score's energy against scipy.ndimage.laplace (the same 5-point stencil, edge pixels repeated), over
    the hole eroded by one pixel (scipy.ndimage.binary_erosion with a 3x3 square, the image border counting as
    beyond it)."""
    from scipy import ndimage

    from murallab.data import random_walk_masks

    g = torch.Generator().manual_seed(3)
    image = torch.rand(2, 3, 20, 17, generator=g, dtype=torch.float64)
    mask = random_walk_masks(2, 20, 17, hole_ratio=(0.2, 0.4), seed=3).double()
    inner = [ndimage.binary_erosion(np.pad(mask[b, 0].numpy() == 0, 1, mode="edge"), np.ones((3, 3)))[1:-1, 1:-1]
             for b in range(2)]
    assert all(0 < i.sum() < (mask[b, 0] == 0).sum() for b, i in enumerate(inner))
    want = [sum((ndimage.laplace(image[b, c].numpy(), mode="nearest") ** 2 * inner[b]).sum()
                for c in range(3)) for b in range(2)]
    assert torch.allclose(metrics.hf_energy(image, mask), torch.tensor(want, dtype=torch.float64), rtol=1e-10)


def test_saturated_blobs_counts_hole_pixels_far_off_and_pinned_at_a_bound():
    """Pixel by pixel, against the definition: in the hole, error > 0.3 in some channel and a channel <= 0.02 or
    >= 0.98; a saturated pixel near the truth, a wrong but unsaturated one and anything in the known part are not."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 16, 16, generator=g)
    pred = torch.rand(2, 3, 16, 16, generator=g)
    pred[0, 1, 2:5, 3:7] = 1.0  # saturated, and mostly far off the truth
    pred[1, :, 8:12, 8:12] = 0.0
    mask = torch.ones(2, 1, 16, 16)
    mask[:, :, 4:14, 2:12] = 0
    expected = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    for b, y, x in np.ndindex(2, 16, 16):
        p, t = pred[b, :, y, x].tolist(), target[b, :, y, x].tolist()
        far = max(abs(u - v) for u, v in zip(p, t)) > 0.3
        pinned = any(u <= 0.02 or u >= 0.98 for u in p)
        expected[b, 0, y, x] = far and pinned and mask[b, 0, y, x] == 0
    got = metrics.saturated_blobs(pred, target, mask)
    assert torch.equal(got, expected) and 0 < expected.sum() < (mask == 0).sum()
    assert metrics.blob_share(pred, target, mask) == pytest.approx(expected.sum().item() / (mask == 0).sum().item())
    assert metrics.blob_share(target, target, mask) == 0.0


def test_hf_ratio_is_one_for_the_truth_and_falls_with_blur():
    from murallab.data import make_murals, random_walk_masks

    image = make_murals(4, 64, seed=0)
    mask = random_walk_masks(4, 64, hole_ratio=(0.2, 0.4), seed=0)
    assert metrics.hf_ratio(image, image, mask) == pytest.approx(1.0)
    blurred = [metrics.hf_ratio(metrics.blurred_truth(image, mask, s), image, mask) for s in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(blurred, blurred[1:])) and blurred[-1] < 0.2
    noisy = (image + 0.2 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert metrics.hf_ratio(noisy, image, mask) > 1
