"""`murallab restore` with mask files as people really save them: 0/1 PNGs (NumPy/OpenCV), 16-bit, 1-bit.

Driven through ``murallab.cli.main`` only. The truth is the hole map the test wrote into the file.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from murallab import cli
from murallab.models import build_model
from murallab.checkpoint import save_checkpoint

H, W = 32, 40


@pytest.fixture
def wall(tmp_path):
    """A random 32×40 RGB PNG, a 12×15 rectangular hole map (180 px, 14.1%) and a tiny PConvUNet checkpoint."""
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "wall.png")
    holes = np.zeros((H, W), bool)
    holes[8:20, 10:25] = True
    torch.manual_seed(0)
    model = build_model(name="PConvUNet", layers=3, base=8)
    save_checkpoint(tmp_path / "pconv.pt", model=model.state_dict(),
                    config={"model": {"name": "PConvUNet", "layers": 3, "base": 8}})
    return {"dir": tmp_path, "image": image, "holes": holes}


@pytest.mark.parametrize("hole_value, dtype, bilevel", [(0, np.uint8, False), (255, np.uint8, False),
                                                         (0, np.uint16, False), (0, None, True)])
def test_restore_with_a_zero_one_mask(wall, hole_value, dtype, bilevel, capsys):
    """A mask PNG holding only 0 and 1 (1 = white; with --mask-hole-value 0 the 0s are holes, with 255 the 1s)
    restores the holes: exit 0, the true hole percentage printed, every known pixel kept, the hole pixels changed.
    A 1-bit (mode "1") PNG works the same way."""
    d, holes, image = wall["dir"], wall["holes"], wall["image"]
    white = ~holes if hole_value == 0 else holes
    path = d / "mask.png"
    Image.fromarray(white if bilevel else white.astype(dtype)).save(path)
    raw = np.asarray(Image.open(path))
    assert set(np.unique(raw).tolist()) == ({False, True} if bilevel else {0, 1})
    out = d / "restored.png"
    rc = cli.main(["restore", str(d / "wall.png"), "--mask", str(path), "--mask-hole-value", str(hole_value),
                   "--checkpoint", str(d / "pconv.pt"), "-o", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert holes.sum() == 180 and f"{180 / (H * W):.1%} holes" == "14.1% holes"
    assert "14.1% holes" in captured.out, captured.out
    restored = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(restored[~holes], image[~holes])
    changed = (restored[holes] != image[holes]).any(axis=1)
    assert changed.mean() > 0.9, changed.mean()


def test_blank_mask_is_still_rejected(wall, capsys):
    """An all-0 mask file is not taken for a 0/1 mask: it is all black, all holes with --mask-hole-value 0 and none
    with 255, and restore refuses it (exit 2) without advising 255, instead of restoring the whole image."""
    d = wall["dir"]
    Image.fromarray(np.zeros((H, W), np.uint8)).save(d / "blank.png")
    rc = cli.main(["restore", str(d / "wall.png"), "--mask", str(d / "blank.png"), "--mask-hole-value", "0",
                   "--checkpoint", str(d / "pconv.pt"), "-o", str(d / "out.png"), "--device", "cpu"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "all black" in err and "nothing to restore" in err and "try --mask-hole-value" not in err, err
    assert not (d / "out.png").exists()


@pytest.mark.parametrize("hole_value", [0, 255])
def test_restore_with_a_16_bit_rgb_zero_one_mask(wall, hole_value, capsys):
    """A 48-bit RGB PNG holding 0/1 (``cv2.imwrite`` of a uint16 mask in three channels) restores its holes; read
    with its high bytes only it was all black: "0.0% holes" with --mask-hole-value 255 and nothing restored."""
    cv2 = pytest.importorskip("cv2")
    d, holes, image = wall["dir"], wall["holes"], wall["image"]
    white = ~holes if hole_value == 0 else holes
    cv2.imwrite(str(d / "mask48.png"), np.repeat(white.astype(np.uint16)[..., None], 3, axis=2))
    out = d / "restored.png"
    rc = cli.main(["restore", str(d / "wall.png"), "--mask", str(d / "mask48.png"), "--mask-hole-value",
                   str(hole_value), "--checkpoint", str(d / "pconv.pt"), "-o", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "14.1% holes" in captured.out, captured.out
    restored = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(restored[~holes], image[~holes])
    assert (restored[holes] != image[holes]).any(axis=1).mean() > 0.9
