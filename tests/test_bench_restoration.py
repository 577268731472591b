"""bench/restoration.py end to end on procedural stand-ins for the real murals (CI never sees ../shared/murals)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from murallab.data import load_image, make_mural, save_image, save_mask

REPO = Path(__file__).resolve().parents[1]


def bench(*args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "restoration.py"), *map(str, args)], cwd=REPO,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Three 'murals': one to train on, two held out; the second carries a damage file whose region must be
    excluded from the held-out patches."""
    data = tmp_path_factory.mktemp("murals")
    for i, name in enumerate(["wall.png", "small.png", "damaged.png"]):
        save_image(make_mural(192, 192, seed=i), data / name)
    damage = torch.ones(1, 192, 192)
    damage[:, :96] = 0  # the top half is damaged: hole_value=255 writes it white, as the real mask file is
    save_mask(damage, data / "damaged_mask.png", hole_value=255)
    out = data / "out"
    common = ["--data", data, "--train", "wall.png", "--held-out", "small.png", "damaged.png", "--patch", "64",
              "--per-image", "3", "--detector-minutes", "0"]
    log = bench(*common, "--config", "configs/tiny_cpu.yaml", "--epochs", "1", "--out", out)
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
    assert (out / "examples.png").stat().st_size > 0 and "goal (+1.5 dB, +0.03)" in log.stdout


def test_bench_held_out_patches_avoid_labelled_damage(trained):
    """Of the damaged mural, only patches below its damaged top half are held out."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from restoration import held_out_patches
    finally:
        sys.path.remove(str(REPO / "bench"))
    common, _, _ = trained
    data = Path(common[1])
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
