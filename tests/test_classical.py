"""murallab.classical: the OpenCV and scikit-image references, called in murallab's mask convention."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage.restoration import inpaint_biharmonic

from murallab import classical
from murallab.data import make_mural, random_walk_masks


@pytest.fixture
def pair():
    return make_mural(48, 64, seed=0), random_walk_masks(1, 48, 64, hole_ratio=(0.1, 0.2), seed=0)[0]


@pytest.mark.parametrize("name,flag", [("telea", cv2.INPAINT_TELEA), ("navier_stokes", cv2.INPAINT_NS)])
def test_opencv_methods_equal_a_direct_call(pair, name, flag):
    image, mask = pair
    u8 = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    direct = cv2.inpaint(u8, ((mask[0].numpy() < 0.5) * 255).astype(np.uint8), 3, flag)  # 255 = hole
    ours = getattr(classical, name)(image, mask)
    hole = mask[0] < 0.5
    assert torch.allclose(ours[:, hole], torch.from_numpy(direct).permute(2, 0, 1)[:, hole].double().float() / 255,
                          atol=1e-6)
    assert torch.equal(ours[:, ~hole], image[:, ~hole])


def test_biharmonic_and_batches(pair):
    image, mask = pair
    direct = inpaint_biharmonic(image.permute(1, 2, 0).double().numpy(), mask[0].numpy() < 0.5, channel_axis=-1)
    ours = classical.biharmonic(image[None], mask[None])[0]
    hole = mask[0] < 0.5
    assert torch.allclose(ours[:, hole], torch.from_numpy(direct).permute(2, 0, 1)[:, hole].float(), atol=1e-6)
    assert set(classical.available()) == {"push-pull", "Telea", "Navier-Stokes", "biharmonic"}


def test_mismatched_mask_is_rejected(pair):
    image, mask = pair
    with pytest.raises(ValueError, match="1 = known"):
        classical.telea(image, mask[..., :-1])


def _push_pull_loops(img: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Push-pull written with explicit loops over 2x2 blocks (sizes a power of 2): the reference for the torch one."""
    x, w = img * known, known.astype(np.float64)
    levels = []
    while x.shape[1] > 1 and (w < 1).any():
        levels.append((x, w))
        n = x.shape[1] // 2
        xs, ws = np.zeros((x.shape[0], n, n)), np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                bw = w[2 * i:2 * i + 2, 2 * j:2 * j + 2]
                if bw.sum() > 0:
                    xs[:, i, j] = (x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2] * bw).sum((1, 2)) / bw.sum()
                ws[i, j] = min(1.0, bw.sum())
        x, w = xs, ws
    for fine, fw in reversed(levels):
        up = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=fine.shape[1:], mode="bilinear",
                                             align_corners=False)[0].numpy()
        x = fw * fine + (1 - fw) * up
    return x


def test_push_pull_equals_a_loop_reference():
    image = make_mural(16, 16, seed=3).double()
    mask = random_walk_masks(1, 16, hole_ratio=(0.3, 0.4), seed=3)[0].double()
    ref = _push_pull_loops(image.numpy(), mask[0].numpy())
    assert torch.allclose(classical.push_pull(image, mask), torch.from_numpy(ref), atol=1e-12)


def test_push_pull_by_hand_and_invariants():
    # 2x2 with one hole: one push level, mean of the three known pixels (weight 3 -> 1), pulled back as a constant.
    image = torch.tensor([[[0.2, 0.4], [0.6, 0.9]]])
    mask = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    assert torch.allclose(classical.push_pull(image, mask)[0, 1, 1], torch.tensor(0.4))
    # Known pixels exact, fills inside the known range per channel, a constant wall stays constant, batches agree.
    images = make_mural(45, 61, seed=1)[None].repeat(3, 1, 1, 1)
    masks = random_walk_masks(3, 45, 61, hole_ratio=(0.2, 0.4), seed=1)
    out = classical.push_pull(images, masks)
    assert torch.equal(out[masks.expand_as(out) > 0], images[masks.expand_as(images) > 0])
    for b in range(3):
        known = images[b][:, masks[b, 0] > 0]
        assert (out[b].amin((1, 2)) >= known.amin(1) - 1e-6).all()
        assert (out[b].amax((1, 2)) <= known.amax(1) + 1e-6).all()
        assert torch.allclose(classical.push_pull(images[b], masks[b]), out[b])
    flat = torch.full((3, 45, 61), 0.3)
    assert torch.allclose(classical.push_pull(flat, masks[0]), flat)
    assert torch.equal(classical.push_pull(flat, torch.zeros(1, 45, 61)), torch.zeros_like(flat))


def test_push_pull_is_differentiable_and_checks_shapes():
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    mask = random_walk_masks(1, 32, seed=0)
    classical.push_pull(image, mask).sum().backward()
    assert image.grad[:, :, mask[0, 0] > 0].abs().sum() > 0  # the fill is made of the known pixels
    assert torch.all(image.grad[:, :, mask[0, 0] == 0] == 0)  # and of nothing under the holes
    with pytest.raises(ValueError, match="1 = known"):
        classical.push_pull(image, mask[:, :, :16])
