"""murallab.data.datasets: MuralPatchDataset, DLCVDunhuang, KaggleDunhuang, detect_layout, open_dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from murallab.data import (DatasetLayoutError, DLCVDunhuang, KaggleDunhuang, MuralPatchDataset, PairedAugment,
                           detect_layout, open_dataset)


def _pil_rgb(path) -> np.ndarray:
    """(3, H, W) float array of a file decoded by PIL, independent of murallab.io."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255


def _holes(t: torch.Tensor) -> int:
    return int((t == 0).sum())


# --- MuralPatchDataset, procedural murals -----------------------------------------------------------

@pytest.fixture
def synth():
    return MuralPatchDataset(None, patch_size=32, patches_per_image=3, n_murals=2, mural_size=64,
                             hole_ratio=(0.1, 0.3), seed=0)


def test_synthetic_len_keys_shapes(synth):
    """len = n_murals * patches_per_image; each item has image (3,p,p), mask (1,p,p), masked (3,p,p)."""
    assert len(synth) == 6
    item = synth[5]
    assert set(item) == {"image", "mask", "masked"}
    assert item["image"].shape == (3, 32, 32) and item["masked"].shape == (3, 32, 32)
    assert item["mask"].shape == (1, 32, 32)
    assert all(v.dtype == torch.float32 for v in item.values())


def test_synthetic_masked_mask_and_ratio(synth):
    """masked == image * mask exactly (zero in holes, image elsewhere); masks binary, hole ratio in range."""
    for i in range(len(synth)):
        it = synth[i]
        m = it["mask"]
        assert set(torch.unique(m).tolist()) == {0.0, 1.0}
        assert 0.1 * 32 * 32 - 1e-6 <= _holes(m) <= 0.3 * 32 * 32 + 1e-6
        holes = m[0] == 0
        assert (it["masked"][:, holes] == 0).all()
        assert torch.equal(it["masked"][:, ~holes], it["image"][:, ~holes])


def test_synthetic_patches_are_crops_of_the_murals(synth):
    """Each image patch is the mural cut at the dataset's stored position."""
    for idx in range(len(synth)):
        i, j = divmod(idx, 3)
        t, l = synth.positions[i][j]
        assert 0 <= t <= 32 and 0 <= l <= 32
        assert torch.equal(synth[idx]["image"], synth.murals[i][:, t:t + 32, l:l + 32])


def test_synthetic_deterministic(synth):
    """Two datasets with the same seed return identical items; another seed differs."""
    other = MuralPatchDataset(None, patch_size=32, patches_per_image=3, n_murals=2, mural_size=64,
                              hole_ratio=(0.1, 0.3), seed=0)
    for i in (0, 4):
        for k in ("image", "mask", "masked"):
            assert torch.equal(synth[i][k], other[i][k])
    third = MuralPatchDataset(None, patch_size=32, patches_per_image=3, n_murals=2, mural_size=64, seed=1)
    assert not torch.equal(synth[0]["image"], third[0]["image"])


def test_set_epoch_changes_masks_not_patches(synth):
    """set_epoch draws new masks for every item but leaves the image patches as they were."""
    before = [synth[i] for i in range(len(synth))]
    synth.set_epoch(1)
    after = [synth[i] for i in range(len(synth))]
    for b, a in zip(before, after):
        assert torch.equal(a["image"], b["image"])
        assert not torch.equal(a["mask"], b["mask"])
    synth.set_epoch(0)
    assert torch.equal(synth[2]["mask"], before[2]["mask"])


def test_items_have_distinct_masks(synth):
    """Different items of one epoch get different masks."""
    masks = {tuple(synth[i]["mask"].flatten().tolist()) for i in range(len(synth))}
    assert len(masks) == len(synth)


def test_index_out_of_range(synth):
    """Indexing past the end raises IndexError (so iteration protocols stop)."""
    with pytest.raises(IndexError):
        synth[len(synth)]
    with pytest.raises(IndexError):
        synth[-1]


def test_dataloader_batches(synth):
    """A torch DataLoader collates items into (B, C, p, p) batches covering the dataset."""
    batches = list(DataLoader(synth, batch_size=4, shuffle=False))
    assert [b["image"].shape[0] for b in batches] == [4, 2]
    assert batches[0]["image"].shape == (4, 3, 32, 32) and batches[0]["mask"].shape == (4, 1, 32, 32)
    assert torch.equal(batches[1]["masked"][1], synth[5]["masked"])


def test_augment_keeps_masked_consistent():
    """With a PairedAugment, masked is still image * mask and the mask stays binary."""
    ds = MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=48,
                           augment=PairedAugment(rotate_p=1.0, hflip_p=1.0), seed=0)
    plain = MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=48, seed=0)
    it, ref = ds[1], plain[1]
    assert torch.equal(it["masked"], it["image"] * it["mask"])
    assert set(torch.unique(it["mask"]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(it["image"], ref["image"])
    assert torch.equal(ds[1]["image"], it["image"])  # augmentation is seeded too


# --- MuralPatchDataset, folder of images -------------------------------------------------------------

def test_folder_mode_png_and_jpeg(tmp_path, make_mural_folder):
    """Folder mode reads PNG and JPEG murals; patches are crops of the decoded files (read with PIL)."""
    paths = make_mural_folder(tmp_path / "murals", sizes=((64, 80), (72, 72)), suffixes=(".png", ".jpg"))
    ds = MuralPatchDataset(tmp_path / "murals", patch_size=32, patches_per_image=3, seed=0)
    assert len(ds) == 6
    for idx in range(6):
        i, j = divmod(idx, 3)
        t, l = ds.positions[i][j]
        expected = _pil_rgb(paths[i])[:, t:t + 32, l:l + 32]
        item = ds[idx]
        np.testing.assert_allclose(item["image"].numpy(), expected, atol=1e-6)
        assert torch.equal(item["masked"], item["image"] * item["mask"])


def test_folder_cache_decodes_each_file_once_and_stays_bounded(tmp_path, make_mural_folder, monkeypatch):
    """A shuffled pass decodes each mural once while the cache holds them all, gives the same patches as a
    cacheless dataset, and never holds more than cache_mb (one mural at least)."""
    import murallab.data.datasets as datasets

    make_mural_folder(tmp_path / "m", sizes=((64, 64), (64, 64), (64, 64)), suffixes=(".png",) * 3)
    decodes = []
    real_load = datasets.load_image
    monkeypatch.setattr(datasets, "load_image", lambda p: decodes.append(p) or real_load(p))
    cached = MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=4, seed=0)
    order = torch.randperm(len(cached), generator=torch.Generator().manual_seed(0)).tolist()
    items = [cached[i] for i in order]
    assert len(decodes) == 3
    tiny = MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=4, seed=0, cache_mb=0)
    for i, item in zip(order, items):
        assert torch.equal(tiny[i]["image"], item["image"])
        assert len(tiny._cache) == 1
    assert len(decodes) > 3 + 3  # the cacheless dataset decoded again on every change of mural
    one_mural_mb = 3 * 64 * 64 * 4 / 2**20
    two = MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=4, seed=0, cache_mb=2.5 * one_mural_mb)
    for i in order:
        two[i]
        assert len(two._cache) <= 2


def test_set_epoch_reaches_through_subsets_concats_and_painted_damage(tmp_path, make_mural_folder):
    """Fresh masks every epoch wherever the patch dataset sits: under a Subset inside PaintedDamage (murallab train's
    blind sets on a folder) and in a ConcatDataset (a phase on both real and procedural murals)."""
    from torch.utils.data import ConcatDataset, Subset

    from murallab.data import PaintedDamage, set_epoch

    make_mural_folder(tmp_path / "m", sizes=((64, 64), (64, 64)), suffixes=(".png", ".png"))
    folder = MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=2, seed=0)
    procedural = MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=2, mural_size=64, seed=0)
    for wrapped, inner in ((PaintedDamage(Subset(folder, range(3))), folder), (ConcatDataset([folder, procedural]),
                                                                                procedural)):
        set_epoch(wrapped, 0)
        before = inner[0]["mask"]
        set_epoch(wrapped, 1)
        assert inner.epoch == 1 and not torch.equal(inner[0]["mask"], before)


def test_folder_small_image_raises_unless_upscale(tmp_path, make_mural_folder):
    """An image smaller than the patch raises ValueError naming the file; upscale=True accepts it."""
    make_mural_folder(tmp_path / "m", sizes=((64, 64), (24, 40)), suffixes=(".png", ".png"))
    with pytest.raises(ValueError, match="mural_01.png") as e:
        MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=2)
    assert "upscale" in str(e.value)
    ds = MuralPatchDataset(tmp_path / "m", patch_size=32, patches_per_image=2, upscale=True)
    assert len(ds) == 4
    assert ds[3]["image"].shape == (3, 32, 32)


def test_folder_empty_raises_layout_error(tmp_path):
    """A folder without images raises DatasetLayoutError (a FileNotFoundError)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DatasetLayoutError, match="no image files"):
        MuralPatchDataset(tmp_path / "empty", patch_size=32)
    assert issubclass(DatasetLayoutError, FileNotFoundError)


def test_folder_corrupt_image_raises_value_error(tmp_path, make_mural_folder):
    """A corrupt file among the murals raises ValueError naming it."""
    make_mural_folder(tmp_path / "m", sizes=((64, 64),), suffixes=(".png",))
    (tmp_path / "m" / "zz_bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="zz_bad.png"):
        MuralPatchDataset(tmp_path / "m", patch_size=32)


# --- DLCVDunhuang / KaggleDunhuang -------------------------------------------------------------------

@pytest.fixture(params=["dlcv", "kaggle"])
def layout(request, tmp_path, make_dlcv, make_kaggle):
    """A good fake layout of 3 samples, with its dataset class."""
    if request.param == "dlcv":
        return make_dlcv(tmp_path / "Data_Challenge2", n=3), DLCVDunhuang
    return make_kaggle(tmp_path / "kaggle", n=3), KaggleDunhuang


def test_paired_len_keys_and_mask(layout):
    """len = samples; items hold image, mask, masked, name; mask binary (from grey JPEG) and close to truth."""
    fake, cls = layout
    ds = cls(fake.root)
    assert len(ds) == 3
    for i, name in enumerate(fake.names):
        it = ds[i]
        assert set(it) == {"image", "mask", "masked", "name"} and it["name"] == name
        assert it["image"].shape == (3, 48, 64) and it["mask"].shape == (1, 48, 64)
        assert set(torch.unique(it["mask"]).tolist()) == {0.0, 1.0}
        # JPEG moves a few edge pixels at most: the loaded holes match the holes the builder drew.
        agree = ((it["mask"][0] == 0).numpy() == fake.holes[name]).mean()
        assert agree > 0.97, (name, agree)


def test_paired_masked_zero_in_holes(layout):
    """masked is exactly 0 wherever the mask is 0."""
    fake, cls = layout
    for it in cls(fake.root):
        holes = it["mask"][0] == 0
        assert (it["masked"][:, holes] == 0).all()


def test_paired_masked_known_pixels_are_the_masked_file(layout):
    """Known pixels of masked equal the masked file's pixels (decoded independently with PIL): the class
    documents masked as ``masked_file * mask``."""
    fake, cls = layout
    ds = cls(fake.root)
    for i, name in enumerate(fake.names):
        it = ds[i]
        known = (it["mask"][0] == 1).numpy()
        file_px = _pil_rgb(fake.masked[name])
        got = it["masked"].numpy()
        assert np.array_equal(got[:, known], file_px[:, known]), \
            f"{name}: max difference {np.abs(got[:, known] - file_px[:, known]).max():.3f} from the masked file"


def test_paired_image_is_the_gt_file(layout):
    """image equals the ground-truth file decoded with PIL."""
    fake, cls = layout
    ds = cls(fake.root)
    for i, name in enumerate(fake.names):
        np.testing.assert_allclose(ds[i]["image"].numpy(), _pil_rgb(fake.gt[name]), atol=1e-6)


def test_dlcv_root_may_be_parent(tmp_path, make_dlcv):
    """DLCVDunhuang accepts the Data_Challenge2 folder or its parent, with the same items."""
    fake = make_dlcv(tmp_path / "Data_Challenge2", n=2)
    a, b = DLCVDunhuang(tmp_path / "Data_Challenge2"), DLCVDunhuang(tmp_path)
    assert len(a) == len(b) == 2
    assert torch.equal(a[1]["masked"], b[1]["masked"]) and a[1]["name"] == b[1]["name"] == fake.names[1]


def test_missing_mask_layout_error(tmp_path, make_dlcv):
    """A missing mask file raises DatasetLayoutError naming the sample and saying the mask is missing."""
    fake = make_dlcv(tmp_path / "dc", n=3)
    fake.mask["001"].unlink()
    with pytest.raises(DatasetLayoutError) as e:
        DLCVDunhuang(fake.root)
    msg = str(e.value)
    assert "001: missing mask" in msg
    assert "001_masked.jpg" in msg  # what was found for it
    assert e.value.problems == [p for p in e.value.problems if p.startswith("001")] and len(e.value.problems) == 1


def test_layout_error_lists_all_problems(tmp_path, make_kaggle):
    """Two broken samples (a mask and a ground truth missing) are both listed."""
    fake = make_kaggle(tmp_path / "k", n=4)
    fake.mask["000"].unlink()
    fake.gt["002"].unlink()
    with pytest.raises(DatasetLayoutError) as e:
        KaggleDunhuang(fake.root)
    msg = str(e.value)
    assert "000: missing mask" in msg and "002: missing ground truth" in msg
    assert "Problems (2)" in msg and len(e.value.problems) == 2


def test_missing_folder_layout_error(tmp_path, make_dlcv, make_kaggle):
    """A missing split folder raises DatasetLayoutError naming the folder; so does an empty root."""
    fake = make_dlcv(tmp_path / "dc", n=2)
    with pytest.raises(DatasetLayoutError, match="missing folder") as e:
        DLCVDunhuang(fake.root, split="test")
    assert "test_gt" in str(e.value)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetLayoutError, match="train_masked"):
        KaggleDunhuang(tmp_path / "nothing")


def test_mask_of_wrong_size_raises_on_getitem(tmp_path, make_dlcv):
    """A mask resized to another size raises ValueError at __getitem__ quoting both sizes."""
    fake = make_dlcv(tmp_path / "dc", n=2)
    Image.open(fake.mask["001"]).resize((60, 40)).save(fake.mask["001"])
    ds = DLCVDunhuang(fake.root)
    ds[0]
    with pytest.raises(ValueError) as e:
        ds[1]
    msg = str(e.value)
    assert "001" in msg and "(40, 60)" in msg and "(48, 64)" in msg


def test_inverted_mask_convention_raises(tmp_path, make_kaggle):
    """Masks saved white = hole raise ValueError mentioning hole_value; hole_value=255 reads them right."""
    fake = make_kaggle(tmp_path / "k", n=2, hole_value=255)
    with pytest.raises(ValueError, match="hole_value=255"):
        KaggleDunhuang(fake.root)[0]
    it = KaggleDunhuang(fake.root, hole_value=255)[0]
    assert ((it["mask"][0] == 0).numpy() == fake.holes["000"]).mean() > 0.97


def test_require_gt_false_without_gt_folder(tmp_path, make_dlcv, make_kaggle):
    """require_gt=False on a split without ground truth returns items without 'image'."""
    dl = make_dlcv(tmp_path / "dc", n=2, split="test", with_gt=False)
    kg = make_kaggle(tmp_path / "kg", n=2, split="test", with_gt=False)
    for fake, cls in ((dl, DLCVDunhuang), (kg, KaggleDunhuang)):
        with pytest.raises(DatasetLayoutError):
            cls(fake.root, split="test")
        ds = cls(fake.root, split="test", require_gt=False)
        assert len(ds) == 2
        it = ds[0]
        assert set(it) == {"mask", "masked", "name"}
        known = (it["mask"][0] == 1).numpy()
        np.testing.assert_array_equal(it["masked"].numpy()[:, known], _pil_rgb(fake.masked["000"])[:, known])


# --- detect_layout / open_dataset --------------------------------------------------------------------

def test_detect_layout(tmp_path, make_dlcv, make_kaggle, make_mural_folder):
    """dlcv (folder or parent), kaggle and plain folders are told apart; an empty folder raises."""
    make_dlcv(tmp_path / "a" / "Data_Challenge2", n=1)
    make_kaggle(tmp_path / "b", n=1)
    make_mural_folder(tmp_path / "c", sizes=((32, 32),), suffixes=(".png",))
    (tmp_path / "d").mkdir()
    assert detect_layout(tmp_path / "a") == "dlcv"
    assert detect_layout(tmp_path / "a" / "Data_Challenge2") == "dlcv"
    assert detect_layout(tmp_path / "b") == "kaggle"
    assert detect_layout(tmp_path / "c") == "folder"
    with pytest.raises(DatasetLayoutError):
        detect_layout(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        detect_layout(tmp_path / "missing")


def test_open_dataset_picks_the_class(tmp_path, make_dlcv, make_kaggle, make_mural_folder):
    """open_dataset returns DLCVDunhuang, KaggleDunhuang or MuralPatchDataset as the layout requires."""
    make_dlcv(tmp_path / "a" / "Data_Challenge2", n=2)
    make_kaggle(tmp_path / "b", n=2)
    make_mural_folder(tmp_path / "c", sizes=((64, 64),), suffixes=(".png",))
    assert type(open_dataset(tmp_path / "a")) is DLCVDunhuang
    assert type(open_dataset(tmp_path / "b")) is KaggleDunhuang
    folder = open_dataset(tmp_path / "c", patch_size=32, patches_per_image=2)
    assert type(folder) is MuralPatchDataset and len(folder) == 2 and folder[0]["image"].shape == (3, 32, 32)
    synth = open_dataset(None, patch_size=16, n_murals=1, patches_per_image=2)
    assert type(synth) is MuralPatchDataset and synth.paths is None and len(synth) == 2


def test_zoomed_patches_are_pil_resized_windows():
    """scale=(0.5, 0.5): each patch is the 2p window around its position, shrunk as PIL's antialiased bilinear does."""
    ds = MuralPatchDataset(None, patch_size=32, patches_per_image=4, n_murals=2, mural_size=96, scale=(0.5, 0.5),
                           seed=0)
    for idx in range(len(ds)):
        i, j = divmod(idx, 4)
        t, l = ds.positions[i][j]
        top, left = min(max(t + 16 - 32, 0), 96 - 64), min(max(l + 16 - 32, 0), 96 - 64)
        window = ds.murals[i][:, top:top + 64, left:left + 64].numpy()
        expected = np.stack([np.asarray(Image.fromarray(c, mode="F").resize((32, 32), Image.BILINEAR)) for c in window])
        np.testing.assert_allclose(ds[idx]["image"].numpy(), expected.clip(0, 1), atol=2e-3)


def test_zoom_range_draws_per_epoch_and_is_checked():
    ds = MuralPatchDataset(None, patch_size=32, patches_per_image=2, n_murals=1, mural_size=128, scale=(0.25, 1.0),
                           seed=0)
    first = ds[0]["image"]
    assert torch.equal(first, ds[0]["image"])  # deterministic within an epoch
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["image"])  # another zoom next epoch
    for bad in [(0.0, 1.0), (0.5, 2.0), (0.8, 0.4)]:
        with pytest.raises(ValueError, match="zoom factors"):
            MuralPatchDataset(None, patch_size=32, scale=bad)
