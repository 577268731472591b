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
    assert set(classical.available()) == {"Telea", "Navier-Stokes", "biharmonic"}


def test_mismatched_mask_is_rejected(pair):
    image, mask = pair
    with pytest.raises(ValueError, match="1 = known"):
        classical.telea(image, mask[..., :-1])
