"""DamageShapes: holes cut from real damage masks, and the datasets and configs that use them."""

import numpy as np
import pytest
import torch
from PIL import Image

from murallab.data import DamageShapes, MuralPatchDataset
from murallab.train.config import build_data, load_config


def _write_masks(folder, n=3, size=96):
    """Mask files (255 = damage): a filled square in the upper-left quarter of an otherwise intact image."""
    folder.mkdir()
    for i in range(n):
        a = np.zeros((size, size + 16 * i), np.uint8)
        a[: size // 2, : size // 2] = 255
        Image.fromarray(a).save(folder / f"m{i}.png")
    return folder


def test_whole_mask_keeps_its_shape_up_to_rotation_and_flip(tmp_path):
    """At zoom 1 the crop is the whole (square) mask: one of its 8 rotations/flips, with 1 = known."""
    folder = tmp_path / "masks"
    folder.mkdir()
    a = np.zeros((64, 64), np.uint8)
    a[:20, :40] = 255  # an asymmetric block of damage
    Image.fromarray(a).save(folder / "m.png")
    shapes = DamageShapes(folder, zoom=(1.0, 1.0))
    hole = torch.from_numpy(a == 255)
    variants = [torch.rot90(v, k) for v in (hole, hole.flip(1)) for k in range(4)]
    rng = np.random.default_rng(0)
    for _ in range(10):
        m = shapes.sample(64, rng, hole_ratio=(0.0, 1.0))
        assert m.shape == (1, 64, 64) and set(m.unique().tolist()) <= {0.0, 1.0}
        assert any(torch.equal(m[0] == 0, v) for v in variants)


def test_hole_fraction_lands_in_range(tmp_path):
    shapes = DamageShapes(_write_masks(tmp_path / "masks"))
    rng = np.random.default_rng(1)
    ratios = [1 - shapes.sample(32, rng, hole_ratio=(0.2, 0.4)).mean().item() for _ in range(40)]
    assert all(0.2 <= r <= 0.4 for r in ratios)


def test_empty_folder_is_one_clear_error(tmp_path):
    (tmp_path / "none").mkdir()
    with pytest.raises(FileNotFoundError, match="no mask images"):
        DamageShapes(tmp_path / "none")


def test_dataset_mixes_real_shapes_and_random_walks(tmp_path):
    """With holes_p = 1 every hole is a crop of the square (an axis-aligned rectangle of 0s: its bounding box is
    all hole); with holes_p = 0 the dataset draws what it draws without shapes."""
    shapes = DamageShapes(_write_masks(tmp_path / "masks"))
    real = MuralPatchDataset(None, patch_size=32, n_murals=2, holes=shapes, holes_p=1.0, hole_ratio=(0.1, 0.5))
    for i in range(len(real)):
        hole = real[i]["mask"][0] == 0
        rows, cols = hole.any(1).nonzero(), hole.any(0).nonzero()
        box = hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()
    plain = MuralPatchDataset(None, patch_size=32, n_murals=2)
    none = MuralPatchDataset(None, patch_size=32, n_murals=2, holes=shapes, holes_p=0.0)
    assert all(torch.equal(plain[i]["mask"], none[i]["mask"]) for i in range(len(plain)))


def test_config_takes_several_folders_and_hole_masks(tmp_path):
    for k, n in (("a", 3), ("b", 4)):
        (tmp_path / k).mkdir()
        for i in range(n):
            Image.fromarray(np.full((40, 40, 3), 40 * i + (k == "b") * 7, np.uint8)).save(tmp_path / k / f"{i}.png")
    cfg = load_config({"model": {"name": "PConvUNet", "layers": 3, "base": 8}, "loss": {"name": "PConvLoss"},
                       "phases": [{"name": "p", "lr": 1e-3, "epochs": 1}],
                       "data": {"patch_size": 32, "patches_per_image": 2, "val_fraction": 0.3, "augment": False,
                                "hole_masks": str(_write_masks(tmp_path / "masks")), "real_holes": 1.0}})
    train, val = build_data(cfg["data"], [tmp_path / "a", tmp_path / "b"])
    # each folder split on its own by mural: a (3 murals) 2 + 1, b (4 murals) 3 + 1; 2 patches each
    assert (len(train), len(val)) == (2 * (2 + 3), 2 * (1 + 1))
    assert {round(train[i]["image"].mean().item() * 255) for i in range(len(train))} >= {0, 47}
    assert all(0.1 <= 1 - train[i]["mask"].mean().item() <= 0.4 for i in range(len(train)))
