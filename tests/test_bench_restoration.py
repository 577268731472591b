"""bench/restoration.py end to end on procedural stand-ins for the real murals (CI never sees ../shared/murals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from murallab._yaml import load_yaml
from murallab.data import load_image, make_mural, save_image, save_mask

REPO = Path(__file__).resolve().parents[1]


def bench(*args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "restoration.py"), *map(str, args)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_phase(tmp_path_factory) -> Path:
    """configs/tiny_cpu.yaml with its first phase only: the benchmark's epochs on one wall are 400 steps each."""
    cfg = load_yaml(REPO / "configs" / "tiny_cpu.yaml")
    cfg["phases"] = cfg["phases"][:1]
    path = tmp_path_factory.mktemp("config") / "tiny_one_phase.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_phase):
    """Three 'murals': one to train on, two held out; the second carries a damage file whose region must be
    excluded from the held-out patches."""
    data = tmp_path_factory.mktemp("murals")
    for i, name in enumerate(["wall.png", "small.png", "damaged.png"]):
        save_image(make_mural(192, 192, seed=i), data / name)
    damage = torch.ones(1, 192, 192)
    damage[:, :96] = 0  # the top half is damaged: hole_value=255 writes it white, as the real mask file is
    save_mask(damage, data / "damaged_mask.png", hole_value=255)
    out = data / "out"
    common = ["--split", "wall", "--data", data, "--train", "wall.png", "--held-out", "small.png", "damaged.png",
              "--patch", "64", "--per-image", "3", "--detector-minutes", "0"]
    log = bench(*common, "--config", one_phase, "--epochs", "1", "--out", out)
    return common, out, log


def test_bench_trains_and_reports_every_method_and_the_ruler(trained):
    _, out, log = trained
    report = json.loads((out / "results.json").read_text())
    assert set(report["results"]) == {"telea", "navier_stokes", "push_pull", "murallab"}
    assert report["results"]["murallab"]["steps"] >= 1
    assert report["held_out_patches"] == 6
    ruler = [report["ruler"][s] for s in ("1", "2", "4", "8")]
    assert all(a["psnr"] > b["psnr"] and a["ssim"] > b["ssim"] for a, b in zip(ruler, ruler[1:]))
    gain = report["results"]["murallab"]["psnr"] - report["results"]["telea"]["psnr"]
    assert report["summary"]["psnr_gain_over_telea"] == pytest.approx(gain)
    assert (out / "examples.png").stat().st_size > 0 and "bar (+1.5 dB, +0.02 SSIM everywhere)" in log.stdout


def test_bench_pool_split_scores_per_hole_ratio_bin(tmp_path, one_phase):
    """--split pool trains on pool/train, holds out pool/heldout plus the named murals, and reports each method per
    hole-ratio bin; the bins partition the patches and their patch-weighted mean is the overall mean."""
    pool = tmp_path / "pool"
    for split, n in (("train", 3), ("heldout", 2)):
        (pool / split).mkdir(parents=True)
        for i in range(n):
            save_image(make_mural(128, 160, seed=10 * n + i), pool / split / f"m{i}.png")
    data = tmp_path / "murals"
    data.mkdir()
    save_image(make_mural(128, 128, seed=99), data / "small.png")
    out = tmp_path / "out"
    bench("--pool", pool, "--data", data, "--held-out", "small.png", "--patch", "64", "--per-image", "2",
          "--pool-per-image", "3", "--detector-minutes", "0", "--config", one_phase, "--epochs", "1", "--out",
          out)
    report = json.loads((out / "results.json").read_text())
    assert report["held_out_patches"] == 2 * 3 + 2
    for method in ("telea", "push_pull", "murallab"):
        r = report["results"][method]
        assert sum(b["patches"] for b in r["bins"].values()) == 8
        assert sum(b["psnr"] * b["patches"] for b in r["bins"].values()) / 8 == pytest.approx(r["psnr"], abs=1e-9)
    gain = report["summary"]["gain_over_telea"]
    assert set(gain) == {"all", "bar_met", *report["results"]["telea"]["bins"]}


def test_bench_held_out_patches_avoid_labelled_damage(trained):
    """Of the damaged mural, only patches below its damaged top half are held out."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from restoration import held_out_patches
    finally:
        sys.path.remove(str(REPO / "bench"))
    common, _, _ = trained
    data = Path(common[common.index("--data") + 1])
    image = load_image(data / "damaged.png")
    patches = held_out_patches(data, ["damaged.png"], 64, 3, seed=0)
    assert len(patches) == 3
    lower = image[:, 96:]
    for p in patches:  # each patch is a window of the undamaged lower half
        windows = lower.unfold(1, 64, 1).unfold(2, 64, 1)  # (3, nh, nw, 64, 64)
        assert (windows == p[:, None, None]).flatten(3).all(-1).all(0).any()


def test_bench_scores_a_given_checkpoint_the_same(trained):
    common, out, _ = trained
    again = out.parent / "again"
    bench(*common, "--checkpoint", out / "restorer" / "best.pt", "--out", again)
    first, second = (json.loads((d / "results.json").read_text())["results"] for d in (out, again))
    for key in ("psnr", "ssim", "psnr_hole"):
        assert second["murallab"][key] == pytest.approx(first["murallab"][key], abs=1e-9)
    assert second["murallab"]["checkpoint"].endswith("best.pt")


def test_bench_self_ensemble_scores_the_mean_of_the_unflipped_outputs(trained):
    """--self-ensemble: the score of the mean over the patch and its three flips, each output flipped back; computed
    here on the whole batch with the network called directly."""
    sys.path.insert(0, str(REPO / "bench"))
    from restoration import held_out_patches, scores

    from murallab.data import random_walk_masks
    from murallab.train import load_model

    common, out, _ = trained
    flipped = out.parent / "flipped"
    bench(*common, "--checkpoint", out / "restorer" / "best.pt", "--self-ensemble", "--out", flipped)
    report = json.loads((flipped / "results.json").read_text())["results"]["murallab"]
    data = Path(common[common.index("--data") + 1])
    images = held_out_patches(data, ["small.png", "damaged.png"], 64, 3, 0)
    masks = random_walk_masks(len(images), 64, hole_ratio=(0.1, 0.4), seed=1)
    model, _ = load_model(out / "restorer" / "best.pt", "cpu")
    with torch.no_grad():
        outputs = [model((images * masks).flip(f), masks.flip(f)).clamp(0, 1).flip(f)
                   for f in ((), (3,), (2,), (2, 3))]
    mean = masks * images + (1 - masks) * sum(outputs) / 4
    expected = scores(mean, images, masks)
    for key in ("psnr", "ssim", "psnr_hole"):
        assert report[key] == pytest.approx(expected[key], abs=1e-3)
    single = json.loads((out / "results.json").read_text())["results"]["murallab"]
    assert report["psnr"] != pytest.approx(single["psnr"], abs=1e-3)  # the flips changed something


def test_bench_scores_a_given_detector_at_a_threshold_chosen_on_validation(tmp_path):
    """--detector-checkpoint: the threshold is the IoU-best of the sweep on painted damage of patches of the
    training murals (validation); the bodhisattva's IoU, and painted damage on the held-out murals, photographed and
    sharp, are reported at it."""
    from murallab.metrics import THRESHOLDS
    from murallab.nn import DualDecoderUNet, UNet
    from murallab.train import save_checkpoint

    data = tmp_path / "murals"
    for i, name in enumerate(["wall.png", "bodhisattva_damaged.png"]):
        save_image(make_mural(160, 160, seed=i), data / name)
    damage = torch.ones(1, 160, 160)
    damage[:, :40, :40] = 0
    save_mask(damage, data / "bodhisattva_damaged_mask.png", hole_value=255)
    torch.manual_seed(0)
    for name, net, spec in (("det.pt", DualDecoderUNet, {"base": 4, "depth": 2}), ("res.pt", UNet, {"layers": 2})):
        save_checkpoint(tmp_path / name, model=net(**spec).state_dict(),
                        config={"model": {"name": net.__name__, **spec}})
    pool = tmp_path / "pool"
    for k, split in enumerate(("train", "heldout")):
        for i in range(2):
            save_image(make_mural(128, seed=20 + 10 * k + i), pool / split / f"m{i}.png")
    bench("--pool", pool, "--data", data, "--held-out", "wall.png", "--patch", "64", "--per-image", "2",
          "--pool-per-image", "1", "--checkpoint", tmp_path / "res.pt", "--detector-checkpoint", tmp_path / "det.pt",
          "--out", tmp_path / "out")
    detection = json.loads((tmp_path / "out" / "results.json").read_text())["detection"]
    assert all(0 <= detection[f"heldout_painted_{k}_iou"] <= 1 for k in ("photographed", "sharp"))  # shortcut probe
    sweep = {float(t): v for t, v in detection["validation_sweep"].items()}
    assert set(sweep) == set(THRESHOLDS) and detection["threshold"] == max(sweep, key=sweep.get)
    assert 0 <= detection["iou"] <= 1 and detection["checkpoint"].endswith("det.pt")
    if detection["threshold"] in (0.1, 0.2, 0.3, 0.5):
        assert detection["iou"] == pytest.approx(detection[f"iou@{detection['threshold']}"])
    assert (tmp_path / "out" / "detection.png").stat().st_size > 0
