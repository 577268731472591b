"""bench/restoration.py --split sources on a stand-in pool of procedural murals (CI never sees ../shared)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from murallab.data import make_mural, save_image
from murallab.models import build_model
from murallab.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import restoration  # noqa: E402
import sources  # noqa: E402

sys.path.remove(str(REPO / "bench"))

LAYOUT = {"train": ["dunhua_0", "dunhua_1", "dunhua_2", "luckys_0", "luckys_1"], "heldout": ["dunhua_9", "luckys_9"],
          "faces": ["dmf_0", "dmf_1"], "heldout_faces": ["dmf_9"], "scans": ["lee_0", "m3s_0"],
          "heldout_scans": ["m3s_9"]}


@pytest.fixture
def pool(tmp_path):
    for k, (folder, names) in enumerate(LAYOUT.items()):
        (tmp_path / "pool" / folder).mkdir(parents=True)
        for j, name in enumerate(names):
            save_image(make_mural(80, seed=np.random.default_rng([k, j])), tmp_path / "pool" / folder / f"{name}.png")
    (tmp_path / "walls").mkdir()
    for j, name in enumerate(sources.WALLS[:2]):
        save_image(make_mural(96, seed=np.random.default_rng([9, j])), tmp_path / "walls" / name)
    return tmp_path


def _args(pool, **kw):
    ns = dict(pool=pool / "pool", data=pool / "walls", patch=64, per_source=4, seed=0, device="cpu",
              checkpoint=None, seen=None, config="configs/tiny_cpu.yaml", minutes=None, epochs=1, hole_masks=None,
              train_seed=0, out=pool / "out")
    return argparse.Namespace(**(ns | kw))


def _tiny_checkpoint(path):
    torch.manual_seed(0)
    spec = {"name": "PConvUNet", "layers": 3, "base": 8}
    save_checkpoint(path, model=build_model(**spec).state_dict(), config={"model": spec})
    return path


def test_each_run_trains_without_its_left_out_source_and_never_on_held_out_images(pool):
    linked = {}

    def fake_train(config, train_dir, out, *a, **kw):  # records what a run would train on
        linked[out.name] = sorted(p.stem for p in train_dir.iterdir())
        out.mkdir(parents=True)
        _tiny_checkpoint(out / "best.pt")
        return {"steps": 1}, 0.0

    sources.run(_args(pool), patches_from=restoration.held_out_patches, scores=restoration.scores,
                gains=restoration.gains, train_within=fake_train)
    everything = sorted(LAYOUT["train"] + LAYOUT["faces"] + LAYOUT["scans"])
    assert linked["all_sources"] == everything
    assert linked["without_faces"] == sorted(set(everything) - {"dmf_0", "dmf_1"})
    assert linked["without_luckystar"] == sorted(set(everything) - {"luckys_0", "luckys_1"})
    assert set(linked) == {"without_dunhuang660", "without_luckystar", "without_faces", "without_scans", "all_sources"}
    report = json.loads((pool / "out" / "results.json").read_text())
    assert report["models"]["without faces"]["left_out"] == ["faces"]
    # the recipe's figure: each source scored by the run that left it out (the walls by the run on all sources)
    by_hand = np.mean([report["models"][f"without {s}"]["scores"][s]["psnr"] - report["classical"][s]["telea"]["psnr"]
                       for s in ("dunhuang660", "luckystar", "faces", "scans")]
                      + [report["models"]["all sources"]["scores"]["walls"]["psnr"]
                         - report["classical"]["walls"]["telea"]["psnr"]])
    assert report["left_out_mean_gain"]["all"]["psnr"] == pytest.approx(by_hand, abs=1e-9)
    assert set(report["models"]["all sources"]["scores"]) == {"dunhuang660", "luckystar", "faces", "scans", "walls"}


def test_left_out_mean_is_the_mean_of_the_per_source_gains(pool):
    ckpt = _tiny_checkpoint(pool / "tiny.pt")
    sources.run(_args(pool, checkpoint=[str(ckpt)], seen=["dunhuang660"]), patches_from=restoration.held_out_patches,
                scores=restoration.scores, gains=restoration.gains, train_within=None)
    report = json.loads((pool / "out" / "results.json").read_text())
    model = report["models"][str(ckpt)]
    assert model["left_out"] == ["luckystar", "faces", "scans", "walls"]
    by_hand = np.mean([model["scores"][s]["psnr"] - report["classical"][s]["telea"]["psnr"]
                       for s in model["left_out"]])
    assert model["left_out_mean_gain"]["all"]["psnr"] == pytest.approx(by_hand, abs=1e-9)
    # every source is scored on its held-out images only: 4 patches from one image, or 2 from each of two walls
    assert {s: v["scored_patches"] for s, v in report["sources"].items()} == {
        "dunhuang660": 4, "luckystar": 4, "faces": 4, "scans": 4, "walls": 4}
