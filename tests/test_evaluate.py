"""`murallab evaluate`: folder pairing, scores against a NumPy computation on the files, and the error cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from murallab import cli
from murallab.data import make_mural, random_walk_masks, save_image, save_mask


@pytest.fixture
def folders(tmp_path):
    """3 murals; predictions: perfect, hole left black, mild noise everywhere; DLCV-style masks (white = known)."""
    gt_dir, pred_dir, mask_dir = tmp_path / "gt", tmp_path / "pred", tmp_path / "mask"
    g = torch.Generator().manual_seed(0)
    for i in range(3):
        gt = make_mural(48, 64, seed=i)
        mask = random_walk_masks(1, 48, 64, hole_ratio=(0.2, 0.3), seed=i)[0]
        pred = [gt, gt * mask, (gt + 0.05 * torch.randn(gt.shape, generator=g)).clamp(0, 1)][i]
        save_image(gt, gt_dir / f"{i:03d}.png")
        save_image(pred, pred_dir / f"{i:03d}.png")
        save_mask(mask, mask_dir / f"{i:03d}_mask.png")
    return gt_dir, pred_dir, mask_dir


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_scores_match_numpy_on_the_files(folders, tmp_path, capsys):
    gt_dir, pred_dir, mask_dir = folders
    out = tmp_path / "scores.json"
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--mask", str(mask_dir),
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "legacy_dlcv_mse" in printed and "not an MSE" in printed and "mean" in printed
    result = json.loads(out.read_text())
    for name in ("000", "001", "002"):
        gt, pred = read(gt_dir / f"{name}.png").astype(np.float64), read(pred_dir / f"{name}.png").astype(np.float64)
        hole = np.asarray(Image.open(mask_dir / f"{name}_mask.png")) < 128
        row = result["images"][name]
        mse = np.mean((gt - pred) ** 2)
        assert row["mse"] == pytest.approx(mse, rel=1e-6, abs=1e-9)
        assert row["mse_hole"] == pytest.approx(np.mean((gt - pred)[hole] ** 2), rel=1e-6, abs=1e-9)
        if mse > 0:
            assert row["psnr"] == pytest.approx(10 * np.log10(255 ** 2 / mse), rel=1e-6)
        legacy = np.mean((read(gt_dir / f"{name}.png") - read(pred_dir / f"{name}.png")) ** 2)  # uint8 wrap
        assert row["legacy_dlcv_mse"] == pytest.approx(legacy, rel=1e-9)
    rows = result["images"]
    assert rows["000"]["ssim"] == pytest.approx(1.0) and rows["000"]["mse"] == 0
    # the unfilled hole is the worst restoration by exact MSE, by far
    assert rows["001"]["mse"] > 10 * rows["002"]["mse"]
    assert rows["002"]["mse_hole"] == pytest.approx(rows["002"]["mse"], rel=0.3)  # noise is everywhere
    assert result["mean"]["mse"] == pytest.approx(np.mean([r["mse"] for r in rows.values()]))


def test_without_masks_there_are_no_hole_scores(folders, capsys):
    gt_dir, pred_dir, _ = folders
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir)]) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and "psnr_hole" not in out


def test_unpaired_files_are_named(folders, capsys):
    gt_dir, pred_dir, mask_dir = folders
    (pred_dir / "001.png").unlink()
    save_image(torch.rand(3, 48, 64), pred_dir / "099.png")
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir)]) == 2
    err = capsys.readouterr().err
    assert "001.png has no restored image" in err and "099.png has no ground truth" in err


def test_size_mismatch_is_an_error(folders, capsys):
    gt_dir, pred_dir, _ = folders
    save_image(torch.rand(3, 40, 64), pred_dir / "002.png")
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir)]) == 2
    assert "(48, 64)" in capsys.readouterr().err


def test_inverted_masks_are_caught(folders, capsys):
    gt_dir, pred_dir, mask_dir = folders
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--mask", str(mask_dir),
                     "--mask-hole-value", "255"]) == 2
    err = capsys.readouterr().err
    assert "marks" in err and "as holes" in err and "try --mask-hole-value 0" in err, err
    assert "load_mask" not in err and "max_hole_ratio" not in err


@pytest.mark.parametrize("problem", ["missing_folder", "empty_folder", "missing_mask"])
def test_folder_problems(folders, tmp_path, problem, capsys):
    gt_dir, pred_dir, mask_dir = folders
    args = ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir)]
    if problem == "missing_folder":
        args[4] = str(tmp_path / "nope")
    elif problem == "empty_folder":
        (tmp_path / "empty").mkdir()
        args[4] = str(tmp_path / "empty")
    else:
        (mask_dir / "002_mask.png").unlink()
        args += ["--mask", str(mask_dir)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("murallab evaluate: error:")
    assert {"missing_folder": "no folder", "empty_folder": "no images", "missing_mask": "002.png has no mask"}[
        problem] in err


def _strict_json(path):
    """json.loads that rejects the non-standard constants Python's json writes by default (Infinity, NaN)."""
    def reject(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(path.read_text(), parse_constant=reject)


def test_json_is_strict_when_every_prediction_is_perfect(folders, tmp_path, capsys):
    """Predictions identical to the ground truth (PSNR infinite): the JSON parses strictly, PSNR is null in every
    row and in the mean (MSE 0, SSIM 1 stay numbers), the file explains null, and so does the printed output."""
    gt_dir, _, mask_dir = folders
    out = tmp_path / "perfect.json"
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(gt_dir), "--mask", str(mask_dir),
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = _strict_json(out)
    for row in list(result["images"].values()) + [result["mean"]]:
        assert row["psnr"] is None and row["psnr_hole"] is None
        assert row["mse"] == 0 and row["mse_hole"] == 0 and row["ssim"] == pytest.approx(1.0)
    assert "PSNR is infinite" in result["null"] and "null" in printed and "PSNR is infinite" in printed
    json.dumps(result, allow_nan=False)  # and it holds no float inf/nan once read


def test_json_hole_scores_of_an_image_without_holes_are_null(folders, tmp_path):
    """An all-known mask: that image's hole scores are null (no NaN in the file) and the hole means come from the
    other images alone; its whole-image scores stay numbers."""
    gt_dir, pred_dir, mask_dir = folders
    save_mask(torch.ones(1, 48, 64), mask_dir / "002_mask.png")
    out = tmp_path / "scores.json"
    assert cli.main(["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--mask", str(mask_dir),
                     "--json", str(out)]) == 0
    result = _strict_json(out)
    rows = result["images"]
    assert rows["002"]["mse_hole"] is None and rows["002"]["psnr_hole"] is None and rows["002"]["ssim_hole"] is None
    assert rows["002"]["mse"] > 0 and rows["002"]["psnr"] > 0
    assert result["mean"]["mse_hole"] == pytest.approx((rows["000"]["mse_hole"] + rows["001"]["mse_hole"]) / 2)
    assert rows["000"]["psnr"] is None and result["mean"]["psnr"] is None  # 000 is a perfect restoration
    assert "without holes" in result["null"]
