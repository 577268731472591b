"""Bad input to every command, as a careless user gives it: each case exits 2 with one line saying what was expected
(or, where the input is usable, does the right thing), and nothing runs before the check."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import murallab
from murallab import cli
from murallab.nn import DualDecoderUNet, PConvUNet
from murallab.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
H, W = 32, 40


def one_line_error(capsys, argv, command=None) -> str:
    """Run ``murallab ARGV``: exit 2, exactly one line on stderr (no traceback); that line."""
    status = cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, (status, err)
    assert lines[0].startswith(f"murallab {command or argv[0]}: error: "), lines[0]
    return lines[0]


@pytest.fixture
def wall(tmp_path, monkeypatch):
    """A 32x40 RGB mural, a DLCV-style mask of a 12x15 hole (white = known), tiny PConvUNet and DualDecoderUNet
    checkpoints."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    image = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "wall.png")
    holes = np.zeros((H, W), bool)
    holes[8:20, 10:25] = True
    Image.fromarray(np.where(holes, 0, 255).astype(np.uint8)).save(tmp_path / "mask.png")
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "pconv.pt", model=PConvUNet(layers=3, base=8).state_dict(),
                    config={"model": {"name": "PConvUNet", "layers": 3, "base": 8}})
    save_checkpoint(tmp_path / "dual.pt", model=DualDecoderUNet(base=8, depth=2).state_dict(),
                    config={"model": {"name": "DualDecoderUNet", "base": 8, "depth": 2}})
    return {"dir": tmp_path, "image": image, "holes": holes}


def restore_argv(d: Path, mask="mask.png", hole_value=0, out="out.png") -> list[str]:
    return ["restore", str(d / "wall.png"), "--mask", str(d / mask), "--mask-hole-value", str(hole_value),
            "--checkpoint", str(d / "pconv.pt"), "-o", str(d / out), "--device", "cpu"]


# --- masks ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("colour,hole_value", [("white", 0), ("white", 255), ("black", 0), ("black", 255)])
def test_restore_refuses_a_mask_without_holes(wall, capsys, colour, hole_value):
    """An all-white or all-black mask marks no holes in one convention and only holes in the other: refused in one
    line that says so, never advising the other --mask-hole-value (which gives nothing to restore either)."""
    d = wall["dir"]
    Image.fromarray(np.full((H, W), 255 if colour == "white" else 0, np.uint8)).save(d / "flat.png")
    line = one_line_error(capsys, restore_argv(d, "flat.png", hole_value))
    assert f"is all {colour}" in line and "nothing to restore" in line, line
    assert "try --mask-hole-value" not in line
    assert not (d / "out.png").exists()


def test_restore_refuses_green_strokes(wall, capsys):
    """Green strokes on white: with --mask-hole-value 0 they read as white, no holes, and the image came back
    unchanged (exit 0); now one line naming the colour."""
    d = wall["dir"]
    a = np.full((H, W, 3), 255, np.uint8)
    a[wall["holes"]] = (0, 255, 0)
    Image.fromarray(a).save(d / "green.png")
    for hole_value in (0, 255):
        line = one_line_error(capsys, restore_argv(d, "green.png", hole_value))
        assert "green.png is in colour" in line and "(0, 255, 0)" in line and "black and white" in line, line
    assert not (d / "out.png").exists()


# --- output paths ---------------------------------------------------------------------------------------------------

def test_restore_output_equal_to_the_mask_is_refused(wall, capsys):
    """-o MASK overwrote the user's hand-drawn mask; now refused, the mask file untouched."""
    d = wall["dir"]
    before = (d / "mask.png").read_bytes()
    line = one_line_error(capsys, restore_argv(d, out="mask.png"))
    assert "is the mask" in line, line
    assert (d / "mask.png").read_bytes() == before


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a command loads a network (the work that an output check must come before)."""
    def boom(*args, **kwargs):
        raise AssertionError("the network was loaded before the output path was checked")

    monkeypatch.setattr(cli, "_load_network", boom)
    monkeypatch.setattr("murallab.models.export", boom)


@pytest.mark.parametrize("command", ["restore", "detect", "export"])
def test_output_under_a_file_fails_before_the_work(wall, capsys, no_work, command):
    """An output path under a file (wall.png/out.png) failed only after the restoration had run; now the check
    comes before any network is loaded, naming the file in the way."""
    d = wall["dir"]
    argv = {"restore": restore_argv(d, out="wall.png/out.png"),
            "detect": ["detect", str(d / "wall.png"), "--checkpoint", str(d / "dual.pt"), "-o",
                       str(d / "wall.png" / "mask.png")],
            "export": ["export", str(d / "pconv.pt"), str(d / "wall.png" / "w.pt")]}[command]
    line = one_line_error(capsys, argv)
    assert f"{d / 'wall.png'} is a file, not a folder" in line, line


def test_detect_output_equal_to_the_checkpoint_or_image(wall, capsys, no_work):
    d = wall["dir"]
    Image.open(d / "wall.png").save(d / "wall_copy.png")
    line = one_line_error(capsys, ["detect", str(d / "wall_copy.png"), "--checkpoint", str(d / "dual.pt"), "-o",
                                   str(d / "wall_copy.png")])
    assert "is the input image" in line


def test_output_folder_where_a_file_is_wanted(wall, capsys, no_work):
    d = wall["dir"]
    (d / "results.png").mkdir()
    line = one_line_error(capsys, restore_argv(d, out="results.png"))
    assert "is a folder" in line, line


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root may write anywhere")
def test_output_in_a_read_only_folder(wall, capsys, no_work):
    d = wall["dir"]
    (d / "locked").mkdir()
    (d / "locked").chmod(0o500)
    try:
        line = one_line_error(capsys, restore_argv(d, out="locked/out.png"))
    finally:
        (d / "locked").chmod(0o700)
    assert "no permission" in line


def test_evaluate_json_equal_to_an_input_image(tmp_path, capsys, monkeypatch):
    """--json onto a ground-truth image would overwrite it after scoring: refused before scoring, file untouched."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / folder / "a.png")
    before = (tmp_path / "gt" / "a.png").read_bytes()
    line = one_line_error(capsys, ["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"),
                                   "--json", str(tmp_path / "gt" / "a.png")])
    assert "is the ground-truth image a.png" in line, line
    assert (tmp_path / "gt" / "a.png").read_bytes() == before


TRAIN_YAML = """\
model: {name: PConvUNet, layers: 2, base: 4}
loss: {name: PConvLoss, perceptual: 0.0, style: 0.0, weights: null}
data: {patch_size: 32, patches_per_image: 4, n_murals: 4, mural_size: 96, val_fraction: 0.25}
train: {batch_size: 4, seed: 0, progress_bar: false, device: cpu}
phases:
  - {name: a, train: all, lr: 1.0e-3, epochs: 1}
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    path = tmp_path / "cfg.yaml"
    path.write_text(TRAIN_YAML)
    return path


@pytest.mark.parametrize("out,words", [("cfg.yaml", "is the config file"), ("cfg.yaml/run", "is a file, not a folder"),
                                       ("murals", "is the data folder")])
def test_train_out_checked_before_the_data_is_built(config, capsys, monkeypatch, out, words):
    monkeypatch.setattr("murallab.train.build_run", lambda *a, **k: pytest.fail("the data was built first"))
    (config.parent / "murals").mkdir()
    line = one_line_error(capsys, ["train", "--config", str(config), "--out", str(config.parent / out), "--data",
                                   str(config.parent / "murals")])
    assert words in line, line
    assert config.read_text() == TRAIN_YAML


def test_sweep_out_equal_to_the_grid_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid: {seed: [0, 1]}\n")
    line = one_line_error(capsys, ["sweep", str(REPO / "notebooks" / "01_data_patches_and_masks.ipynb"),
                                   "--grid", str(grid), "--out", str(grid)])
    assert "is the grid file" in line
    assert grid.read_text() == "grid: {seed: [0, 1]}\n"


# --- devices --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device,words", [("gpu", ["unknown device 'gpu'", "'cpu'", "'cuda'"]),
                                          ("cuda", ["no CUDA GPU", "--device cpu"])])
def test_train_device_errors_are_one_line(config, capsys, device, words):
    """--device gpu and --device cuda on a machine without CUDA were tracebacks; now one line, before any folder."""
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    out = config.parent / "run"
    line = one_line_error(capsys, ["train", "--config", str(config), "--out", str(out), "--device", device])
    assert all(w in line for w in words), line
    assert not out.exists()


def test_device_error_from_the_config_file(config, capsys):
    config.write_text(TRAIN_YAML.replace("device: cpu", "device: gpu"))
    assert "unknown device 'gpu'" in one_line_error(capsys, ["train", "--config", str(config), "--out",
                                                             str(config.parent / "run")])


def test_device_gpu_in_python_is_one_line():
    with pytest.raises(RuntimeError) as e:
        murallab.device("gpu")
    assert str(e.value).startswith("unknown device 'gpu'") and len(str(e.value)) < 200 and "\n" not in str(e.value)


# --- the run folder's lock and --resume -------------------------------------------------------------------------

def test_second_training_into_a_busy_folder_stops_at_once(config, capsys, monkeypatch):
    """A run folder locked by a live process (here a sleeping child standing in for a first `murallab train`): the
    second run stops with one line naming the process, before building any data; the lock stays the other's."""
    out = config.parent / "run"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "run.lock").write_text(f"{other.pid}\n")
        line = one_line_error(capsys, ["train", "--config", str(config), "--out", str(out)])
        assert "in use by another training run" in line and f"process {other.pid}" in line, line
        assert (out / "run.lock").read_text().strip() == str(other.pid)
        assert not (out / "metrics.csv").exists()
    finally:
        other.kill()
        other.wait()


def test_stale_lock_is_taken_over_and_the_lock_is_removed_at_the_end(config, capsys):
    """A lock left by a process that has ended is taken over with a one-line note; the run trains and removes the
    lock when it ends."""
    out = config.parent / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(f"{dead.pid}\n")
    assert cli.main(["train", "--config", str(config), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"taking over the lock left by process {dead.pid}, which no longer runs" in err, err
    assert (out / "last.pt").exists() and not (out / "run.lock").exists()


def test_lock_is_held_while_fit_runs(tmp_path):
    """While fit trains, run.lock holds this process's id, and a lock taken by another process is refused."""
    from murallab.train.lock import RunFolderBusyError

    seen = []

    class Spy(torch.utils.data.Dataset):
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            lock = tmp_path / "run" / "run.lock"
            seen.append(lock.read_text().strip() if lock.exists() else None)
            image = torch.rand(3, 16, 16)
            mask = torch.ones(1, 16, 16)
            mask[:, 4:8, 4:8] = 0
            return {"image": image, "mask": mask, "masked": image * mask}

    from murallab.losses import PConvLoss
    from murallab.train import Phase, TrainConfig, fit

    fit(PConvUNet(layers=2, base=4), PConvLoss(perceptual=0.0, style=0.0, weights=None), Spy(4), Spy(2),
        [Phase(name="a", train="all", lr=1e-3, epochs=1)], TrainConfig(batch_size=2, progress_bar=False,
                                                                        device="cpu"), tmp_path / "run")
    assert seen and set(seen) == {str(os.getpid())}
    assert not (tmp_path / "run" / "run.lock").exists()
    with pytest.raises(RunFolderBusyError):
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            (tmp_path / "run2").mkdir()
            (tmp_path / "run2" / "run.lock").write_text(str(other.pid))
            fit(PConvUNet(layers=2, base=4), PConvLoss(perceptual=0.0, style=0.0, weights=None), Spy(4), Spy(2),
                [Phase(name="a", train="all", lr=1e-3, epochs=1)], TrainConfig(batch_size=2, device="cpu"),
                tmp_path / "run2")
        finally:
            other.kill()
            other.wait()


def test_lock_is_removed_when_fit_fails(tmp_path):
    """A run that stops with an error (here: the folder already holds a run and resume is not asked for) leaves no
    lock behind, even while its exception is still alive (a notebook keeps the last one)."""
    from murallab.losses import PConvLoss
    from murallab.train import Phase, TrainConfig, fit

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    try:
        fit(PConvUNet(layers=2, base=4), PConvLoss(perceptual=0.0, style=0.0, weights=None), [], [],
            [Phase(name="a", train="all", lr=1e-3, epochs=1)], TrainConfig(device="cpu"), tmp_path / "run")
    except FileExistsError as e:
        error = e
    assert "already holds a run" in str(error)
    assert not (tmp_path / "run" / "run.lock").exists()


def test_resume_with_nothing_to_resume_says_it_starts_fresh(config, capsys):
    out = config.parent / "run"
    assert cli.main(["train", "--config", str(config), "--out", str(out), "--resume"]) == 0
    assert f"{out}: nothing to resume (no last.pt there); starting a new run" in capsys.readouterr().out


# --- checkpoints ----------------------------------------------------------------------------------------------------

def test_a_pickled_model_is_one_short_line(wall, capsys):
    """torch.save(model) (a whole pickled module): torch's 750-character weights_only advice does not reach the
    user, who gets one line saying the file is not a murallab checkpoint."""
    d = wall["dir"]
    torch.save(PConvUNet(layers=3, base=8), d / "whole.pt")
    for argv in (["export", str(d / "whole.pt"), str(d / "w.pt")],
                 restore_argv(d)[:6] + ["--checkpoint", str(d / "whole.pt"), "-o", str(d / "out.png")]):
        line = one_line_error(capsys, argv)
        assert "whole.pt is not a murallab checkpoint or weights file" in line and "PConvUNet" in line, line
        assert "weights_only" not in line and len(line) - len(str(d)) < 250, line


# --- sweep ----------------------------------------------------------------------------------------------------------

def test_sweep_rejects_an_unknown_grid_key_before_running(tmp_path, capsys, monkeypatch):
    """`seedd` ran every point with the default seed and marked it done; now one line naming the key, a close
    match and the notebook's parameters, and nothing is run or written."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    grid = tmp_path / "grid.yaml"
    grid.write_text("fixed: {n_masks: 10}\ngrid: {seedd: [0, 1]}\n")
    line = one_line_error(capsys, ["sweep", str(REPO / "notebooks" / "01_data_patches_and_masks.ipynb"),
                                   "--grid", str(grid), "--out", str(tmp_path / "sweep")])
    assert "'seedd' is not a parameter of 01_data_patches_and_masks.ipynb" in line and "did you mean seed" in line
    assert "its parameters are data_dir, image_size, patch_size" in line, line
    assert not (tmp_path / "sweep").exists()


def test_sweep_jobs_zero_is_refused(tmp_path, capsys, monkeypatch):
    from murallab.sweep import sweep

    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid: {seed: [0, 1]}\n")
    notebook = str(REPO / "notebooks" / "01_data_patches_and_masks.ipynb")
    line = one_line_error(capsys, ["sweep", notebook, "--grid", str(grid), "--out", str(tmp_path / "s"), "--jobs", "0"])
    assert "--jobs" in line and "at least 1" in line and "got 0" in line
    with pytest.raises(ValueError, match="jobs .* integer >= 1; got 0"):
        sweep(notebook, grid, tmp_path / "s", jobs=0)
    assert not (tmp_path / "s").exists()


# --- evaluate -------------------------------------------------------------------------------------------------------

def test_evaluate_advises_the_option_not_the_python_api(tmp_path, capsys, monkeypatch):
    """A mask in the other convention: the advice is --mask-hole-value, not load_mask(...) or max_hole_ratio."""
    monkeypatch.delenv("MURALLAB_TRACEBACK", raising=False)
    for folder in ("gt", "pred", "mask"):
        (tmp_path / folder).mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "gt" / "a.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "pred" / "a.png")
    mask = np.full((10, 10), 255, np.uint8)
    mask[2:5, 2:5] = 0  # 9 % black holes: read with 255 (white = hole) it marks 91 %
    Image.fromarray(mask).save(tmp_path / "mask" / "a.png")
    base = ["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "--mask",
            str(tmp_path / "mask")]
    line = one_line_error(capsys, base + ["--mask-hole-value", "255"])
    assert "91%" in line and "try --mask-hole-value 0" in line, line
    assert "load_mask" not in line and "max_hole_ratio" not in line
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "mask" / "a.png")  # all black
    line = one_line_error(capsys, base + ["--mask-hole-value", "0"])
    assert "is all black" in line and "try --mask-hole-value" not in line, line


# --- EXIF orientation -----------------------------------------------------------------------------------------------

def test_restore_keeps_the_viewers_orientation(wall, capsys):
    """A photograph stored sideways (EXIF orientation 6: turn it clockwise to view) with a mask drawn on it as
    viewers show it: the mask lands on the viewer's pixels and the output is saved as the viewer sees the input,
    without an orientation tag. Truth: the stored array turned with np.rot90."""
    d = wall["dir"]
    stored = wall["image"]  # 32x40 as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(d / "side.png", exif=exif)
    viewed = np.rot90(stored, k=-1)  # 40x32, as viewers show it
    holes = np.zeros(viewed.shape[:2], bool)
    holes[5:15, 8:20] = True
    Image.fromarray(np.where(holes, 0, 255).astype(np.uint8)).save(d / "viewed_mask.png")
    assert cli.main(["restore", str(d / "side.png"), "--mask", str(d / "viewed_mask.png"), "--mask-hole-value", "0",
                     "--checkpoint", str(d / "pconv.pt"), "-o", str(d / "out.png"), "--device", "cpu"]) == 0
    capsys.readouterr()
    out = Image.open(d / "out.png")
    assert out.getexif().get(0x0112, 1) == 1
    restored = np.asarray(out.convert("RGB"))
    assert restored.shape == viewed.shape
    assert np.array_equal(restored[~holes], viewed[~holes])
    assert (restored[holes] != viewed[holes]).any(axis=1).mean() > 0.9


# --- greyscale photographs and the detector ------------------------------------------------------------------------

def test_detector_warns_on_a_greyscale_photograph(wall, capsys):
    """The detector finds a fraction of the damage in a grey photograph (0.7 % of pixels against 19.8 % for the
    colour version with pretrained:detector): `murallab detect` and `restore --blind` say so in one warning line,
    the Python API with a UserWarning; a colour image gives no warning."""
    from murallab.restore import detect
    from murallab.train import load_model

    d = wall["dir"]
    grey = wall["image"].mean(axis=2).round().astype(np.uint8)
    Image.fromarray(grey).save(d / "grey.png")  # an L-mode file, loaded as three equal channels
    for argv in (["detect", str(d / "grey.png"), "--checkpoint", str(d / "dual.pt"), "-o", str(d / "m.png")],
                 ["restore", str(d / "grey.png"), "--blind", "--checkpoint", str(d / "dual.pt"), "-o",
                  str(d / "r.png")]):
        assert cli.main(argv + ["--device", "cpu"]) == 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(f"murallab {argv[0]}: warning: the image is greyscale"), err
    assert cli.main(["detect", str(d / "wall.png"), "--checkpoint", str(d / "dual.pt"), "-o", str(d / "m.png")]) == 0
    assert "greyscale" not in capsys.readouterr().err
    model, _ = load_model(d / "dual.pt")
    image = torch.from_numpy(wall["image"]).permute(2, 0, 1).float() / 255
    with pytest.warns(UserWarning, match="greyscale"):
        detect(model, image.mean(0, keepdim=True).expand(3, -1, -1).contiguous())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect(model, image)
