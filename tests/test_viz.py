"""murallab.viz: figures and the headless-safe mask explorer."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from murallab.data import make_mural, random_walk_mask
from murallab.viz import mask_explorer, overlay_mask, show_images


def test_overlay_mask_keeps_known_pixels_and_tints_holes():
    """Known pixels are unchanged; hole pixels move toward the tint colour by alpha."""
    img = make_mural(32, seed=0)
    mask = random_walk_mask(32, seed=0)
    out = overlay_mask(img, mask, color=(1.0, 0.0, 0.0), alpha=1.0)
    known = mask.bool().expand_as(img)
    assert torch.equal(out[known], img[known])
    assert torch.allclose(out[:, ~mask[0].bool()], torch.tensor([1.0, 0.0, 0.0])[:, None])


def test_show_images_grid_shape():
    """One axis per grid cell, titles set on the images given."""
    fig = show_images([make_mural(24, seed=i) for i in range(5)], [str(i) for i in range(5)], ncols=3)
    assert len(fig.axes) == 6 and fig.axes[4].get_title() == "4"
    plt.close(fig)


def test_mask_explorer_draws_once_headless_and_redraws_on_slider_change():
    """Constructing the explorer draws one figure; moving a slider draws another."""
    plt.close("all")
    before = len(plt.get_fignums())
    ui = mask_explorer(None, size=32, n=2, seed=0)
    after_build = len(plt.get_fignums())
    sliders = ui.children[0].children
    assert [s.description for s in sliders] == ["hole min", "hole max", "seed"]
    sliders[2].value = 5
    assert after_build == before + 1 and len(plt.get_fignums()) == after_build + 1
    plt.close("all")
