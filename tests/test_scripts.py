"""data_scripts/make_patches.py and data_scripts/check_dataset.py, run as scripts in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from murallab.data import load_mask

REPO = Path(__file__).resolve().parents[1]
MAKE_PATCHES = REPO / "data_scripts" / "make_patches.py"
CHECK_DATASET = REPO / "data_scripts" / "check_dataset.py"

# Each script start imports torch and torchvision (~4 s): the make_patches runs share one module fixture,
# and further check_dataset cases call the script's main() in-process.


def run(script: Path, *args) -> subprocess.CompletedProcess:
    """Run a data script with this interpreter from the repository root."""
    return subprocess.run([sys.executable, str(script), *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- make_patches.py ---------------------------------------------------------------------------------

HOLE_RATIO = (0.15, 0.35)


@pytest.fixture(scope="module")
def patches_run(tmp_path_factory):
    """Two procedural murals (96x128 PNG and JPEG) cut by make_patches into 3 patches of 48 px each."""
    from murallab.data import make_mural
    base = tmp_path_factory.mktemp("make_patches")
    murals = base / "murals"
    murals.mkdir()
    for i, suffix in enumerate((".png", ".jpg")):
        a = np.rint(make_mural(96, 128, seed=i).numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        Image.fromarray(a).save(murals / f"wall{i}{suffix}")
    out = base / "out"
    args = (murals, "--out", out, "--patch-size", 48, "--per-image", 3, "--hole-ratio", *HOLE_RATIO, "--seed", 1)
    first = run(MAKE_PATCHES, *args)
    return {"murals": murals, "out": out, "args": args, "first": first, "snapshot": _snapshot(out)}


def test_make_patches_succeeds(patches_run):
    """Exit 0 and 6 patch files plus 6 mask files, paired by name."""
    r = patches_run["first"]
    assert r.returncode == 0, r.stderr
    out = patches_run["out"]
    patches = sorted(p.name for p in (out / "patches").iterdir())
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert len(patches) == 6 and patches == masks
    assert "wrote 6 patches" in r.stdout


def test_make_patches_patch_files(patches_run):
    """Patches are 48x48 RGB PNGs equal (up to JPEG-free 8-bit rounding) to the source crop."""
    out, murals = patches_run["out"], patches_run["murals"]
    manifest = json.loads((out / "manifest.json").read_text())
    for e in manifest["patches"]:
        patch = np.asarray(Image.open(out / "patches" / e["file"]))
        assert patch.shape == (48, 48, 3)
        src = np.asarray(Image.open(murals / e["source"]).convert("RGB"))
        crop = src[e["top"]:e["top"] + 48, e["left"]:e["left"] + 48]
        assert np.array_equal(patch, crop), e


def test_make_patches_masks_binary_in_range(patches_run):
    """Masks load binary with hole_value=0 and their hole ratio lies in --hole-ratio."""
    for p in sorted((patches_run["out"] / "masks").iterdir()):
        assert set(np.unique(np.asarray(Image.open(p))).tolist()) <= {0, 255}
        m = load_mask(p, hole_value=0)
        assert set(m.unique().tolist()) == {0.0, 1.0}
        holes = int((m == 0).sum())
        assert HOLE_RATIO[0] * 48 * 48 - 1e-6 <= holes <= HOLE_RATIO[1] * 48 * 48 + 1e-6, (p.name, holes)


def test_make_patches_manifest(patches_run):
    """manifest.json lists 6 entries (3 per source) with in-bounds positions and records its settings."""
    manifest = json.loads((patches_run["out"] / "manifest.json").read_text())
    assert manifest["patch_size"] == 48 and manifest["hole_ratio"] == list(HOLE_RATIO) and manifest["seed"] == 1
    entries = manifest["patches"]
    assert len(entries) == 6
    assert sorted(e["file"] for e in entries) == sorted(p.name for p in (patches_run["out"] / "patches").iterdir())
    assert {e["source"] for e in entries} == {"wall0.png", "wall1.jpg"}
    for e in entries:
        assert 0 <= e["top"] <= 96 - 48 and 0 <= e["left"] <= 128 - 48, e
    for src in ("wall0.png", "wall1.jpg"):
        pos = [(e["top"], e["left"]) for e in entries if e["source"] == src]
        assert len(set(pos)) == 3  # farthest-point sampling: three distinct places


def test_make_patches_refuses_to_overwrite_then_force(patches_run):
    """A second run without --force fails naming --force and leaves the files untouched; with --force it
    succeeds, and with the same seed it rewrites byte-identical files."""
    out = patches_run["out"]
    again = run(MAKE_PATCHES, *patches_run["args"])
    assert again.returncode != 0
    assert "--force" in again.stderr
    assert _snapshot(out) == patches_run["snapshot"]
    forced = run(MAKE_PATCHES, *patches_run["args"], "--force")
    assert forced.returncode == 0, forced.stderr
    assert _snapshot(out) == patches_run["snapshot"]


# --- check_dataset.py ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def check_runs(tmp_path_factory, make_dlcv):
    """check_dataset.py as a script on a good and a broken DLCV layout, run concurrently (each start
    costs seconds of imports)."""
    base = tmp_path_factory.mktemp("check_dataset")
    make_dlcv(base / "good" / "Data_Challenge2", n=3)
    missing = make_dlcv(base / "missing" / "Data_Challenge2", n=3)
    missing.mask["002"].unlink()
    cases = {"good": base / "good" / "Data_Challenge2", "missing": base / "missing"}
    procs = {k: subprocess.Popen([sys.executable, str(CHECK_DATASET), str(v)], cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k, v in cases.items()}
    results = {}
    for k, p in procs.items():
        out, err = p.communicate(timeout=120)
        results[k] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    return results


@pytest.fixture(scope="module")
def check_main():
    """check_dataset.main, imported from the script file, to run further cases in-process (fast)."""
    spec = importlib.util.spec_from_file_location("check_dataset_script", CHECK_DATASET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_check_dataset_good_dlcv(check_runs):
    """A good DLCV layout: exit 0, the sample count printed, and OK."""
    r = check_runs["good"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dlcv layout" in r.stdout and "3 samples, 3 readable" in r.stdout
    assert r.stdout.strip().endswith("OK")


def test_check_dataset_missing_mask(check_runs):
    """A missing mask (parent of Data_Challenge2 given): exit 1 and the problem (sample, missing mask) printed."""
    r = check_runs["missing"]
    assert r.returncode == 1, r.stdout + r.stderr
    assert "002: missing mask" in r.stdout


def test_check_dataset_kaggle_auto(tmp_path, make_kaggle, check_main, capsys):
    """A Kaggle layout with --layout auto is detected and passes (main returns 0)."""
    make_kaggle(tmp_path / "kaggle", n=2)
    assert check_main([str(tmp_path / "kaggle"), "--layout", "auto"]) == 0
    out = capsys.readouterr().out
    assert "kaggle layout" in out and "2 samples, 2 readable" in out and out.strip().endswith("OK")


def test_check_dataset_wrong_size_mask(tmp_path, make_kaggle, check_main, capsys):
    """A mask of the wrong size: main returns 1 and reports that sample as a problem with both sizes."""
    fake = make_kaggle(tmp_path / "kaggle", n=3)
    Image.open(fake.mask["001"]).resize((32, 24)).save(fake.mask["001"])
    assert check_main([str(fake.root), "--layout", "kaggle"]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1 and "001" in problems[0] and "(24, 32)" in problems[0] and "(48, 64)" in problems[0]
    assert "3 samples, 2 readable" in out


def test_check_dataset_inverted_masks(tmp_path, make_dlcv, check_main, capsys):
    """Masks saved white = hole fail with the default --hole-value 0 and pass with --hole-value 255."""
    fake = make_dlcv(tmp_path / "Data_Challenge2", n=2, hole_value=255)
    assert check_main([str(fake.root)]) == 1
    assert "hole_value=255" in capsys.readouterr().out
    assert check_main([str(fake.root), "--hole-value", "255"]) == 0


# --- check_dataset.py on every layout murallab train accepts, and on corrupt files ---------------------

def _problem_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("problem:")]


def test_check_dataset_plain_folder_passes(tmp_path, make_mural_folder, check_main, capsys):
    """A plain folder of murals (what `murallab train --data DIR` reads with MuralPatchDataset) is detected and
    passes: exit 0, both files counted and readable, OK."""
    make_mural_folder(tmp_path / "murals")  # 96x128 PNG and 80x80 JPEG
    assert check_main([str(tmp_path / "murals"), "--patch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "folder layout" in out and "2 images, 2 readable" in out and out.strip().endswith("OK"), out
    preset = REPO / "configs" / "tiny_cpu.yaml"  # data.patch_size 64
    assert check_main([str(tmp_path / "murals"), "--layout", "folder", "--config", str(preset)]) == 0


def test_check_dataset_plain_folder_smaller_than_a_patch(tmp_path, make_mural_folder, check_main, capsys):
    """With murallab train's default patch size (128) both murals are too small: one problem line each, naming
    the file and its size; --upscale (train's data.upscale) accepts them."""
    paths = make_mural_folder(tmp_path / "murals")
    assert check_main([str(tmp_path / "murals")]) == 1
    problems = _problem_lines(capsys.readouterr().out)
    assert len(problems) == 2
    assert str(paths[0]) in problems[0] and "96x128" in problems[0] and "128" in problems[0]
    assert str(paths[1]) in problems[1] and "80x80" in problems[1]
    assert check_main([str(tmp_path / "murals"), "--upscale"]) == 0


def _truncated_jpeg(path: Path) -> None:
    """Valid JPEG bytes cut in half: the header (and so the size) still reads, the pixels do not."""
    import io
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


@pytest.mark.parametrize("bad", ["truncated.jpg", "notes.png"])
def test_check_dataset_plain_folder_corrupt_file(tmp_path, make_mural_folder, check_main, capsys, bad):
    """A truncated JPEG, or a text file renamed .png, among good murals: exit 1 and exactly one problem line,
    which names that file."""
    make_mural_folder(tmp_path / "murals")
    path = tmp_path / "murals" / bad
    if bad.endswith(".jpg"):
        _truncated_jpeg(path)
        with Image.open(path) as im:
            assert im.size == (96, 96)  # opening it (what MuralPatchDataset does) succeeds
    else:
        path.write_text("not an image, just a note\n")
    assert check_main([str(tmp_path / "murals"), "--patch-size", "64"]) == 1
    out = capsys.readouterr().out
    problems = _problem_lines(out)
    assert len(problems) == 1 and str(path) in problems[0], out
    assert "2 readable" in out


def test_check_dataset_paired_layout_png_with_a_broken_checksum(tmp_path, make_kaggle, check_main, capsys):
    """A Kaggle ground-truth PNG whose pixel-data checksum is broken decodes, but PIL's verify rejects it: exit 1
    and one problem line naming that file; the other samples stay readable."""
    fake = make_kaggle(tmp_path / "kaggle", n=3)
    gt = fake.gt["001"]
    png = gt.with_suffix(".png")
    Image.open(gt).save(png)
    gt.unlink()
    data = bytearray(png.read_bytes())
    at = data.index(b"IDAT")
    data[at + 4 + int.from_bytes(data[at - 4:at], "big")] ^= 0xFF  # first byte of the chunk's CRC
    png.write_bytes(bytes(data))
    assert check_main([str(fake.root)]) == 1
    out = capsys.readouterr().out
    problems = _problem_lines(out)
    assert len(problems) == 1 and str(png) in problems[0], out
    assert "3 samples, 2 readable" in out
