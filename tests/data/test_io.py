"""murallab.data.io: loading and saving images and masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from murallab.data import list_images, load_image, load_mask, save_image, save_mask


def _write(arr: np.ndarray, path, **kw):
    Image.fromarray(arr).save(path, **kw)
    return path


# --- load_image / save_image -------------------------------------------------------------------------

def test_png_round_trip_equals_uint8_quantisation(tmp_path):
    """save_image + load_image of a PNG gives round(x * 255) / 255, computed here with numpy."""
    x = torch.rand(3, 20, 28, generator=torch.Generator().manual_seed(0))
    save_image(x, tmp_path / "x.png")
    y = load_image(tmp_path / "x.png")
    expected = np.round(x.numpy().astype(np.float64) * 255) / 255
    assert y.shape == (3, 20, 28) and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)


def test_saved_png_bytes_are_the_rounded_values(tmp_path):
    """The file itself holds the rounded uint8 values in (H, W, C) order, read back with PIL."""
    x = torch.zeros(3, 2, 3)
    x[0, 0, 0], x[1, 1, 2], x[2, 0, 1] = 1.0, 0.5, 0.2  # 127.5 -> 128, 51.0 -> 51
    save_image(x, tmp_path / "x.png")
    a = np.asarray(Image.open(tmp_path / "x.png"))
    assert a.shape == (2, 3, 3)
    assert a[0, 0, 0] == 255 and a[1, 2, 1] == 128 and a[0, 1, 2] == 51
    assert a.sum() == 255 + 128 + 51


def test_save_image_clamps_out_of_range(tmp_path):
    """Values outside [0, 1] are clamped, not wrapped around (-0.5 -> 0, 1.7 -> 255)."""
    x = torch.tensor([-0.5, 1.7, 0.25]).view(3, 1, 1).expand(3, 2, 2).contiguous()
    save_image(x, tmp_path / "x.png")
    a = np.asarray(Image.open(tmp_path / "x.png"))
    assert a[0, 0].tolist() == [0, 255, 64]


def test_rgba_is_composited_onto_black(tmp_path):
    """A pixel (200, 100, 50) with alpha 128 loads as colour * 128/255; a transparent pixel as black."""
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (200, 100, 50, 128)
    a[0, 1] = (255, 255, 255, 255)
    a[1, 0] = (255, 255, 255, 0)
    img = load_image(_write(a, tmp_path / "rgba.png"))
    assert img.shape == (3, 2, 2)
    np.testing.assert_allclose(img[:, 0, 0].numpy(), np.array([200, 100, 50]) / 255 * (128 / 255), atol=1e-6)
    np.testing.assert_allclose(img[:, 0, 1].numpy(), [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[:, 1, 0].numpy(), [0, 0, 0], atol=1e-6)


def test_greyscale_is_repeated_to_three_channels(tmp_path):
    """An 'L' image loads as (3, H, W) with all three channels equal to grey / 255."""
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    img = load_image(_write(g, tmp_path / "grey.png"))
    assert img.shape == (3, 3, 4)
    for c in range(3):
        np.testing.assert_allclose(img[c].numpy(), g / 255, atol=1e-6)


def test_16_bit_png_uses_the_full_16_bit_range(tmp_path):
    """A 16-bit 'I;16' PNG: 65535 -> 1.0, 32768 -> ~0.5, 0 -> 0, 200 -> 200 / 65535 (not 200 / 255)."""
    a = np.array([[0, 32768, 65535, 200]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    assert Image.open(path).mode.startswith("I")
    img = load_image(path)
    assert img.shape == (3, 1, 4)
    np.testing.assert_allclose(img[0, 0].numpy(), [0.0, 32768 / 65535, 1.0, 200 / 65535], atol=1e-6)
    assert torch.equal(img[0], img[2])


def test_palette_image_loads_its_palette_colours(tmp_path):
    """A 'P' image loads as the RGB colours its palette assigns to each index."""
    idx = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    p = Image.fromarray(idx, mode="P")
    palette = [255, 0, 0, 0, 128, 0, 10, 20, 30] + [0] * (256 * 3 - 9)
    p.putpalette(palette)
    p.save(tmp_path / "pal.png")
    assert Image.open(tmp_path / "pal.png").mode == "P"
    img = load_image(tmp_path / "pal.png")
    colours = np.array(palette[:9]).reshape(3, 3) / 255
    expected = colours[idx].transpose(2, 0, 1)
    np.testing.assert_allclose(img.numpy(), expected, atol=1e-6)


def test_jpeg_loads_like_pil(tmp_path):
    """A JPEG loads as PIL's decoded RGB array / 255 (same decoder, independent conversion)."""
    rng = np.random.default_rng(0)
    path = _write(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), tmp_path / "x.jpg", quality=80)
    ref = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    np.testing.assert_allclose(load_image(path).numpy(), ref.transpose(2, 0, 1), atol=1e-6)


def test_missing_file_raises_file_not_found_with_path(tmp_path):
    """A missing file raises FileNotFoundError whose message contains the path."""
    path = tmp_path / "nope" / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png") as e:
        load_image(path)
    assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError):
        load_mask(path, hole_value=0)


def test_corrupt_file_raises_value_error_with_path(tmp_path):
    """Random bytes named .png raise ValueError naming the path, for images and masks."""
    path = tmp_path / "broken.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError) as e:
        load_image(path)
    assert str(path) in str(e.value)
    with pytest.raises(ValueError, match="broken.png"):
        load_mask(path, hole_value=0)


def test_truncated_png_raises_value_error(tmp_path):
    """A PNG cut in half (valid header, missing data) raises ValueError naming the path."""
    good = _write(np.full((32, 32, 3), 7, np.uint8), tmp_path / "good.png")
    bad = tmp_path / "half.png"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ValueError, match="half.png"):
        load_image(bad)


def test_save_image_rejects_nan_and_inf(tmp_path):
    """NaN or inf pixels raise ValueError and write no file."""
    for bad in (float("nan"), float("inf")):
        x = torch.rand(3, 4, 4)
        x[1, 2, 3] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            save_image(x, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_save_image_rejects_wrong_shape(tmp_path):
    """A (H, W) or (4, H, W) tensor is refused with its shape in the message."""
    with pytest.raises(ValueError, match=r"\(4, 5\)"):
        save_image(torch.rand(4, 5), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"\(4, 5, 5\)"):
        save_image(torch.rand(4, 5, 5), tmp_path / "b.png")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    """After several saves (one overwriting) the folder holds exactly the saved files, no temp files."""
    out = tmp_path / "out"
    save_image(torch.rand(3, 8, 8), out / "a.png")
    save_image(torch.rand(3, 8, 8), out / "a.png")
    save_image(torch.rand(1, 8, 8), out / "b.jpg")
    save_mask(torch.ones(1, 8, 8), out / "m.png")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "m.png"]
    assert Image.open(out / "b.jpg").format == "JPEG" and Image.open(out / "a.png").format == "PNG"


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    """A save that dies half-way (PNG writer raising after writing bytes) leaves the old file intact and
    no temp file behind: the write goes to a temp file that only replaces the target when complete."""
    path = tmp_path / "a.png"
    save_image(torch.zeros(3, 6, 6), path)
    before = path.read_bytes()

    def broken_png_writer(im, fp, filename):
        fp.write(b"\x89PNG half written")
        raise OSError("disk full")

    monkeypatch.setitem(Image.SAVE, "PNG", broken_png_writer)
    with pytest.raises(OSError, match="disk full"):
        save_image(torch.ones(3, 6, 6), path)
    assert path.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["a.png"]


def test_single_channel_image_round_trip(tmp_path):
    """A (1, H, W) image is saved as greyscale and loads as three equal channels of round(x * 255) / 255."""
    x = torch.rand(1, 5, 7, generator=torch.Generator().manual_seed(1))
    save_image(x, tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    y = load_image(tmp_path / "g.png")
    expected = np.round(x.numpy().astype(np.float64) * 255) / 255
    for c in range(3):
        np.testing.assert_allclose(y[c:c + 1].numpy(), expected, atol=1e-6)


def test_overwrite_replaces_content(tmp_path):
    """Saving twice to one path leaves the second image in the file."""
    save_image(torch.zeros(3, 4, 4), tmp_path / "a.png")
    save_image(torch.ones(3, 4, 4), tmp_path / "a.png")
    assert np.asarray(Image.open(tmp_path / "a.png")).min() == 255


# --- load_mask / save_mask ---------------------------------------------------------------------------

def _grey_jpeg_mask(tmp_path):
    """A JPEG of a white disc on black: JPEG greys its edge."""
    yy, xx = np.mgrid[:40, :40]
    white = ((yy - 20) ** 2 + (xx - 20) ** 2 < 12 ** 2)
    path = _write(white.astype(np.uint8) * 255, tmp_path / "m.jpg", quality=60)
    return path, white


def test_load_mask_binarises_a_grey_jpeg(tmp_path):
    """A JPEG mask with grey edges loads as exactly {0, 1}, shape (1, H, W), float32."""
    path, white = _grey_jpeg_mask(tmp_path)
    raw = np.asarray(Image.open(path))
    assert len(np.unique(raw)) > 2  # the file really is grey at the edges
    m = load_mask(path, hole_value=0)
    assert m.shape == (1, 40, 40) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    # hole_value=0: white = known; the binarised result is the file thresholded at 127
    assert np.array_equal(m[0].numpy() == 1, raw > 127)
    assert (m[0].numpy() == 1)[white].mean() > 0.98 and (m[0].numpy() == 0)[~white].mean() > 0.98


def test_threshold_semantics_127_vs_128(tmp_path):
    """With threshold=127 a pixel of 127 counts as black and 128 as white (strictly greater)."""
    a = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    path = _write(a, tmp_path / "t.png")
    assert load_mask(path, hole_value=0, threshold=127)[0, 0].tolist() == [0, 0, 1, 1]
    assert load_mask(path, hole_value=255, threshold=127)[0, 0].tolist() == [1, 1, 0, 0]
    assert load_mask(path, hole_value=0, threshold=127.5)[0, 0].tolist() == [0, 0, 1, 1]
    assert load_mask(path, hole_value=0, threshold=200)[0, 0].tolist() == [0, 0, 0, 1]
    assert load_mask(path, hole_value=0, threshold=0)[0, 0].tolist() == [0, 1, 1, 1]


def test_hole_value_conventions_are_complementary(tmp_path):
    """hole_value=0 and hole_value=255 on the same file give masks that sum to 1 everywhere."""
    path, _ = _grey_jpeg_mask(tmp_path)
    black_holes = load_mask(path, hole_value=0)
    white_holes = load_mask(path, hole_value=255)
    assert torch.equal(black_holes + white_holes, torch.ones_like(black_holes))


def test_grey_rgb_mask_uses_luminance(tmp_path):
    """An RGB file holding greys (R = G = B, as many editors save a black-and-white drawing) reads like greyscale."""
    a = np.repeat(np.array([[0, 126, 128, 255]], np.uint8)[..., None], 3, axis=2)
    assert load_mask(_write(a, tmp_path / "g.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("hole_value", [0, 255])
def test_colour_mask_is_refused(tmp_path, hole_value):
    """Green strokes on white read as grey are white (luminance 150): with either hole_value they would mark no
    holes or every pixel. Such a mask is refused with one line naming the file, the colour and a way out."""
    a = np.full((8, 10, 3), 255, np.uint8)
    a[2:5, 3:7] = (0, 255, 0)
    with pytest.raises(ValueError) as e:
        load_mask(_write(a, tmp_path / "green.png"), hole_value=hole_value)
    msg = str(e.value)
    assert "\n" not in msg and "green.png" in msg and "in colour" in msg and "(0, 255, 0)" in msg
    assert "black and white" in msg


def _png16(a: np.ndarray, path):
    """Write a 16-bit-per-channel RGB (or RGBA) PNG by hand: Pillow cannot write one."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w, c = a.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("hole_value", [0, 255])
def test_sixteen_bit_rgb_zero_one_mask(tmp_path, hole_value):
    """A 48-bit RGB PNG holding 0/1 (``cv2.imwrite`` of a uint16 boolean mask) reads at its full depth: 1 is white.
    Pillow alone reads its high bytes, all 0: no holes with one hole_value and only holes with the other."""
    a = _zero_one(np.uint16)
    path = _png16(np.repeat(a[..., None], 3, axis=2), tmp_path / "m48.png")
    want = (a == 1) if hole_value == 0 else (a == 0)
    assert load_mask(path, hole_value=hole_value)[0].numpy().tolist() == want.astype(np.float32).tolist()


def test_sixteen_bit_rgb_mask_uses_both_bytes(tmp_path):
    """16-bit RGB levels on the 16-bit scale: 32639 black, 32640 white (threshold 127), so the low byte counts;
    a 64-bit RGBA PNG's transparent pixel is black."""
    levels = np.array([[0, 32639, 32640, 65535]], np.uint16)
    rgb = np.repeat(levels[..., None], 3, axis=2)
    assert load_mask(_png16(rgb, tmp_path / "f.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 1]
    alpha = np.array([[65535, 65535, 65535, 0]], np.uint16)[..., None]
    rgba = np.concatenate([rgb, alpha], axis=2)
    assert load_mask(_png16(rgba, tmp_path / "a.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 0]


def test_sixteen_bit_rgb_mask_written_by_opencv(tmp_path):
    """The same through OpenCV's encoder (its own PNG row filters)."""
    cv2 = pytest.importorskip("cv2")
    holes = np.zeros((9, 11), bool)
    holes[2:6, 3:9] = True
    cv2.imwrite(str(tmp_path / "cv.png"), np.repeat((~holes).astype(np.uint16)[..., None], 3, axis=2))
    assert torch.equal(load_mask(tmp_path / "cv.png", hole_value=0)[0], torch.from_numpy(~holes).float())


# --- EXIF orientation: files read as viewers show them -----------------------------------------------------

def _with_orientation(arr: np.ndarray, path, orientation: int):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr).save(path, exif=exif)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_load_image_applies_exif_orientation(tmp_path, suffix):
    """A file stored sideways with orientation 6 ("rotate 90 degrees clockwise to view") loads as viewers show it:
    the stored array turned clockwise (np.rot90 with k=-1), its width and height swapped."""
    a = np.zeros((4, 6, 3), np.uint8)
    a[0, 0] = 255  # a white top-left pixel lands top-right once turned clockwise
    img = load_image(_with_orientation(a, tmp_path / f"side{suffix}", 6))
    assert tuple(img.shape) == (3, 6, 4)
    want = torch.from_numpy(np.rot90(a, k=-1).copy()).permute(2, 0, 1).float() / 255
    assert (img - want).abs().max() < (0.1 if suffix == ".jpg" else 1e-6)


def test_load_mask_applies_exif_orientation(tmp_path):
    """A mask with orientation 8 ("rotate 90 degrees counter-clockwise") loads turned, like its image."""
    a = np.full((4, 6), 255, np.uint8)
    a[0, :2] = 0
    m = load_mask(_with_orientation(a, tmp_path / "m.png", 8), hole_value=0)
    assert m[0].numpy().tolist() == (np.rot90(a, k=1) == 255).astype(np.float32).tolist()


@pytest.mark.parametrize("bad", [1, 128, -1, None, "0"])
def test_invalid_hole_value_raises(tmp_path, bad):
    """hole_value must be 0 or 255, for loading and saving."""
    path = _write(np.zeros((4, 4), np.uint8), tmp_path / "m.png")
    with pytest.raises(ValueError, match="hole_value"):
        load_mask(path, hole_value=bad)
    with pytest.raises(ValueError, match="hole_value"):
        save_mask(torch.ones(1, 4, 4), tmp_path / "o.png", hole_value=bad)


def test_hole_value_is_required():
    """load_mask has no default convention: calling it without hole_value is a TypeError."""
    with pytest.raises(TypeError):
        load_mask("whatever.png")


@pytest.mark.parametrize("hole_value", [0, 255])
def test_save_mask_load_mask_round_trip(tmp_path, hole_value):
    """save_mask then load_mask with the same convention returns the original binary mask."""
    m = (torch.rand(1, 24, 32, generator=torch.Generator().manual_seed(hole_value)) > 0.3).float()
    save_mask(m, tmp_path / "m.png", hole_value=hole_value)
    assert torch.equal(load_mask(tmp_path / "m.png", hole_value=hole_value), m)


@pytest.mark.parametrize("hole_value", [0, 255])
def test_save_mask_file_colours(tmp_path, hole_value):
    """The file holds 255/0 greys with holes written as hole_value (checked with PIL)."""
    m = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    save_mask(m, tmp_path / "m.png", hole_value=hole_value)
    a = np.asarray(Image.open(tmp_path / "m.png"))
    assert Image.open(tmp_path / "m.png").mode == "L"
    holes = np.array([[False, True], [True, False]])
    assert (a[holes] == hole_value).all() and (a[~holes] == 255 - hole_value).all()


def test_save_mask_rejects_wrong_shape(tmp_path):
    """save_mask expects (1, H, W)."""
    with pytest.raises(ValueError, match="1, H, W"):
        save_mask(torch.ones(3, 4, 4), tmp_path / "m.png")


def test_list_images_sorted_and_filtered(tmp_path):
    """list_images returns only image files (any case suffix), sorted by name; a missing folder raises."""
    for name in ("b.PNG", "a.jpg", "c.txt", "d.tif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "d.tif"]
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "missing")


# --- 0/1 masks and 16-bit masks (load_mask's white_level) ---------------------------------------------

def _zero_one(dtype=np.uint8) -> np.ndarray:
    """A 6x7 0/1 array: 1 = white everywhere except a 2x3 block and one corner pixel of 0."""
    a = np.ones((6, 7), dtype)
    a[1:3, 2:5] = 0
    a[5, 6] = 0
    return a


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zero_one_mask_reads_1_as_white(tmp_path, dtype):
    """A PNG holding only 0 and 1 (NumPy/OpenCV style, 8 or 16 bit) reads with 1 as white: hole_value=0 makes
    the 0 pixels the holes, hole_value=255 the 1 pixels (on the 0-255 scale both would be all black)."""
    a = _zero_one(dtype)
    path = _write(a, tmp_path / "m01.png")
    assert set(np.unique(np.asarray(Image.open(path))).tolist()) == {0, 1}
    assert load_mask(path, hole_value=0)[0].numpy().tolist() == (a == 1).astype(np.float32).tolist()
    assert load_mask(path, hole_value=255)[0].numpy().tolist() == (a == 0).astype(np.float32).tolist()


def test_rgb_zero_one_mask_reads_1_as_white(tmp_path):
    """A 3-channel 0/1 mask (the same 0/1 in R, G and B) reads like the greyscale one."""
    a = _zero_one()
    path = _write(np.repeat(a[..., None], 3, axis=2), tmp_path / "m01rgb.png")
    assert load_mask(path, hole_value=0)[0].numpy().tolist() == (a == 1).astype(np.float32).tolist()


@pytest.mark.parametrize("value, known_with_hole_value_0", [(0, 0.0), (1, 1.0)])
def test_uniform_masks_blank_and_all_ones(tmp_path, value, known_with_hole_value_0):
    """An all-0 file is blank (all black: all holes with hole_value=0, none with 255); an all-1 file is a 0/1
    mask that is all white (no holes with hole_value=0, all holes with 255)."""
    path = _write(np.full((4, 5), value, np.uint8), tmp_path / "u.png")
    assert torch.equal(load_mask(path, hole_value=0), torch.full((1, 4, 5), known_with_hole_value_0))
    assert torch.equal(load_mask(path, hole_value=255), torch.full((1, 4, 5), 1.0 - known_with_hole_value_0))


def test_zero_one_detection_needs_only_0_and_1(tmp_path):
    """A 0-255 mask that also holds a stray 1 is an ordinary mask: its 1 is black, its 255 white."""
    a = np.array([[0, 1, 255, 255]], np.uint8)
    assert load_mask(_write(a, tmp_path / "m.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 1]


def test_sixteen_bit_masks(tmp_path):
    """16-bit files: 0/65535 reads on the 16-bit scale (32639 black, 32640 white at threshold 127); a file
    holding only 0 and 255 reads 255 as white; with a pixel above 255 the 16-bit scale holds (255 is black)."""
    full = np.array([[0, 32639, 32640, 65535]], np.uint16)  # 127/255 * 65535 = 32639.0
    assert load_mask(_write(full, tmp_path / "f.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 1]
    eight = np.array([[0, 255, 255, 0]], np.uint16)
    assert load_mask(_write(eight, tmp_path / "e.png"), hole_value=0)[0, 0].tolist() == [0, 1, 1, 0]
    mixed = np.array([[0, 255, 65535, 0]], np.uint16)
    assert load_mask(_write(mixed, tmp_path / "x.png"), hole_value=0)[0, 0].tolist() == [0, 0, 1, 0]


def test_bilevel_mode_1_png(tmp_path):
    """A mode "1" (1-bit) PNG reads True as white."""
    a = _zero_one().astype(bool)
    path = tmp_path / "b.png"
    Image.fromarray(a).save(path)
    assert Image.open(path).mode == "1"
    assert load_mask(path, hole_value=0)[0].numpy().tolist() == a.astype(np.float32).tolist()
    assert load_mask(path, hole_value=255)[0].numpy().tolist() == (~a).astype(np.float32).tolist()


def test_explicit_white_level(tmp_path):
    """white_level=255 reads a 0/1 file strictly on the 8-bit scale (all black); white_level=1 is the detected
    reading; a white_level that is not a positive integer is rejected, naming the parameter."""
    path = _write(_zero_one(), tmp_path / "m01.png")
    assert torch.equal(load_mask(path, hole_value=0, white_level=255), torch.zeros(1, 6, 7))
    assert torch.equal(load_mask(path, hole_value=0, white_level=1), load_mask(path, hole_value=0))
    for bad in (0, -1, 0.5, "1", True):
        with pytest.raises(ValueError, match="white_level"):
            load_mask(path, hole_value=0, white_level=bad)


def test_image_from_pil_applies_exif_orientation(tmp_path):
    """A PIL image opened by the caller (the paint-and-restore widget takes one) is turned as viewers show it too."""
    from murallab.data.io import image_from_pil

    a = np.zeros((4, 6, 3), np.uint8)
    a[0, 0] = 255
    with Image.open(_with_orientation(a, tmp_path / "side.png", 6)) as img:
        t = image_from_pil(img)
    assert torch.equal(t, torch.from_numpy(np.rot90(a, k=-1).copy()).permute(2, 0, 1).float() / 255)
