"""PaintRestore, driven headless as a user drives it: paint, erase, detect, restore, save, each against a truth
computed another way (a disc drawn row by row, the classical and tiled restorers called directly, the detector's
map thresholded by hand)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from murallab.classical import telea
from murallab.data import load_image, make_mural, paint_damage
from murallab.models import build_model
from murallab.models import load_pretrained
from murallab.pretrained import WEIGHTS
from murallab.restore import detect, restore
from murallab.widgets import PaintRestore

H, W = 64, 80


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


@pytest.fixture(scope="module")
def image():
    return make_mural(H, W, seed=3)


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build_model("UNet", layers=3, base=8).eval()  # untrained: fast, and its fill differs from the input


def disc(y, x, r, h=H, w=W) -> np.ndarray:
    """Holes of a disc drawn row by row: in row i, the columns within sqrt(r² - (i - y)²) of x."""
    holes = np.zeros((h, w), bool)
    for i in range(max(0, y - r), min(h, y + r + 1)):
        half = math.isqrt(r * r - (i - y) ** 2)
        holes[i, max(0, x - half):x + half + 1] = True
    return holes


def known(w) -> np.ndarray:
    m = w.mask
    assert m.shape == (1, H, W) and m.dtype == torch.float32 and set(m.unique().tolist()) <= {0.0, 1.0}
    return m[0].numpy() == 1


def test_paint_makes_exactly_the_disc_and_erase_undoes_it(image, unet):
    w = PaintRestore(image, unet)
    assert known(w).all() and w.hole_ratio == 0
    w.paint(20, 30, 7)
    assert np.array_equal(~known(w), disc(20, 30, 7))
    w.paint(60, 2, 5)  # clipped at the corner
    both = disc(20, 30, 7) | disc(60, 2, 5)
    assert np.array_equal(~known(w), both)
    assert w.hole_ratio == pytest.approx(both.sum() / (H * W))
    w.erase(20, 30, 7)
    assert np.array_equal(~known(w), disc(60, 2, 5))
    w.paint(40, 50, 0)  # radius 0: the one pixel
    assert not known(w)[40, 50] and (~known(w)).sum() == disc(60, 2, 5).sum() + 1
    w.clear()
    assert known(w).all()
    with pytest.raises(ValueError, match="radius"):
        w.paint(5, 5, -1)


def test_a_mouse_stroke_paints_discs_in_image_pixels(image, unet):
    """The canvas shows the image at half size; a stroke paints what paint() paints, along the whole segment. The
    events are the messages the browser's canvas sends (x, y in canvas pixels)."""
    pytest.importorskip("ipycanvas")
    w = PaintRestore(image, unet, radius=4, display_size=40)
    w.widget
    canvas = w._ui.canvas

    def mouse(event, x, y):
        canvas[1]._handle_frontend_event(None, {"event": event, "x": x, "y": y}, None)

    assert (canvas.height, canvas.width) == (32, 40)
    mouse("mouse_down", 15, 10)  # canvas (x, y) = (15, 10) is image (row 20, column 30)
    mouse("mouse_up", 15, 10)
    mouse("mouse_move", 30, 30)  # a move with the button up paints nothing
    assert np.array_equal(~known(w), disc(20, 30, 4))
    w.clear()
    mouse("mouse_down", 5, 5)
    mouse("mouse_move", 35, 25)  # image (10, 10) to (50, 70), in one move event
    mouse("mouse_out", 35, 25)
    mouse("mouse_move", 5, 25)
    i, j = np.mgrid[:H, :W]
    t = np.clip(((i - 10) * 40 + (j - 10) * 60) / (40 ** 2 + 60 ** 2), 0, 1)
    dist = np.hypot(i - 10 - 40 * t, j - 10 - 60 * t)  # distance to the segment
    holes = ~known(w)
    assert holes[dist <= 1.5].all() and not holes[dist > 4].any()
    w._ui.mode.value = "erase"
    mouse("mouse_down", 5, 5)
    mouse("mouse_move", 35, 25)
    assert known(w).all()


def test_telea_is_opencv_telea_on_the_same_mask(image, unet):
    pytest.importorskip("cv2")
    w = PaintRestore(image, unet, method="Telea")
    w.paint(30, 40, 9)
    out = w.restore()
    assert torch.equal(out, telea(image, w.mask))
    hole = w.mask[0] == 0
    assert torch.equal(out[:, ~hole], image[:, ~hole]) and not torch.equal(out[:, hole], image[:, hole])


def test_restorer_keeps_every_known_pixel_and_fills_the_holes(image, unet):
    w = PaintRestore(image, unet)
    w.paint(30, 40, 12)
    w.paint(5, 70, 6)
    out = w.restore("restorer")
    assert out.shape == (3, H, W) and 0 <= float(out.min()) and float(out.max()) <= 1
    hole = w.mask[0] == 0
    assert torch.equal(out[:, ~hole], image[:, ~hole])
    assert (out[:, hole] - image[:, hole]).abs().mean() > 0.01
    torch.testing.assert_close(out, restore(unet, image, w.mask))
    assert w.result is out


def test_diffusion_loads_only_when_chosen_and_samples_ddim(unet):
    image = make_mural(64, seed=4)
    w = PaintRestore(image, unet, sampling={"steps": 2})
    w.paint(32, 32, 10)
    w.restore("restorer")
    assert "diffusion-64" not in w._models  # nothing loaded for it yet
    out = w.restore("diffusion")
    model = w._models["diffusion-64"]
    expected = restore(model, image, w.mask, sampler="ddim", steps=2, seed=0)
    assert torch.equal(out, expected)  # the same computation twice
    hole = w.mask[0] == 0
    assert torch.equal(out[:, ~hole], image[:, ~hole]) and not torch.equal(out[:, hole], image[:, hole])


def test_detect_thresholds_the_detector_at_its_registry_threshold_and_stays_editable(unet):
    clean = make_mural(96, seed=5)
    holes = torch.zeros(1, 96, 96)
    holes[:, 30:60, 20:50] = 1
    damaged = paint_damage(clean, 1 - holes, seed=0)
    w = PaintRestore(damaged, unet)
    mask = w.detect()
    threshold = WEIGHTS["detector"].threshold
    prob = detect(load_pretrained("detector"), damaged)
    assert torch.equal(mask, (prob < threshold).float()) and w.mask is mask
    assert 0 < w.hole_ratio < 0.5  # it found damage, not everything
    assert not torch.equal(mask, (prob < threshold / 3).float())  # the threshold matters on this image
    detected = mask.clone()
    w.erase(45, 35, 8)  # the user edits the detected mask
    expected = detected.clone()
    expected[0][torch.from_numpy(disc(45, 35, 8, 96, 96))] = 1
    assert torch.equal(w.mask, expected) and not torch.equal(w.mask, detected)


def test_path_pil_and_tensor_give_the_same_image(tmp_path, image, unet):
    rgb = (image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wall.png")
    from_path = PaintRestore(tmp_path / "wall.png", unet).image
    from_str = PaintRestore(str(tmp_path / "wall.png"), unet).image
    from_pil = PaintRestore(Image.fromarray(rgb), unet).image
    from_tensor = PaintRestore(image, unet).image
    assert from_path.shape == from_pil.shape == (3, H, W) and from_path.dtype == torch.float32
    assert torch.equal(from_path, from_str) and torch.equal(from_path, load_image(tmp_path / "wall.png"))
    assert torch.equal(from_pil, from_path)
    assert torch.equal(from_tensor, image)
    edge = image.clone()
    edge[:, 0, :2] = torch.tensor([0.0, 1.0])  # the ends of the range are kept as they are, in a copy
    w = PaintRestore(edge, unet)
    assert torch.equal(w.image, edge)
    edge[:, 0, 0] = 0.5
    assert float(w.image[0, 0, 0]) == 0
    assert (from_path - image).abs().max() <= 0.5 / 255 + 1e-6
    grey = PaintRestore(Image.fromarray(rgb[..., 0]), unet).image  # greyscale: one band, three channels
    assert torch.equal(grey[0], grey[2]) and torch.equal(grey[0], from_path[0])


@pytest.mark.parametrize("bad, what", [
    (torch.rand(4, 16, 16), "shape"), (torch.rand(16, 16), "shape"), (torch.rand(1, 3, 16, 16), "shape"),
    (torch.rand(3, 16, 16) * 2, "values"), (torch.full((3, 8, 8), float("nan")), "values"),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), "uint8"), (np.zeros((8, 8, 3)), "ndarray"),
    ("no/such/file.png", "cannot read"), ("corrupt", "cannot read")])
def test_bad_input_is_a_one_line_value_error(tmp_path, unet, bad, what):
    if isinstance(bad, str) and bad == "corrupt":
        bad = tmp_path / "corrupt.png"
        bad.write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=what) as err:
        PaintRestore(bad, unet)
    assert "expected" in str(err.value) and "\n" not in str(err.value)


def test_bad_model_and_method_are_value_errors(image, unet):
    with pytest.raises(ValueError, match="pretrained:restorer"):
        PaintRestore(image, "pretrained:no-such-model")
    with pytest.raises(ValueError, match="finds the damage itself"):
        PaintRestore(image, load_pretrained("detector"))
    with pytest.raises(ValueError, match="Telea, restorer, diffusion"):
        PaintRestore(image, unet, method="LaMa")
    w = PaintRestore(image)  # the default restorer is loaded when first used
    assert w._models["restorer"] == "pretrained:restorer"
    with pytest.raises(ValueError, match="method must be"):
        w.restore("telea")


def test_save_writes_a_png_and_never_the_input(tmp_path, image, unet):
    rgb = (image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    source = tmp_path / "wall.png"
    Image.fromarray(rgb).save(source)
    before = source.read_bytes()
    w = PaintRestore(source, unet)
    w.paint(30, 40, 10)
    out = w.save(tmp_path / "restored.png")  # restores first: nothing restored yet
    saved = load_image(out)
    assert Image.open(out).format == "PNG" and saved.shape == (3, H, W)
    assert (saved - w.result).abs().max() <= 0.5 / 255 + 1e-6
    assert not torch.equal(saved, w.image)
    for same in (source, tmp_path / "sub" / ".." / "wall.png", str(source)):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(ValueError, match="input photograph"):
            w.save(same)
    assert source.read_bytes() == before
    with pytest.raises(ValueError, match=r"\.png"):
        w.save(tmp_path / "restored.jpg")


def test_the_tool_shows_the_result_beside_the_input(image, unet):
    pytest.importorskip("ipycanvas")
    import io
    w = PaintRestore(image, unet, display_size=40)
    box = w.widget
    assert w.widget is box and "application/vnd.jupyter.widget-view+json" in w._repr_mimebundle_()
    before = w._ui.result.value
    w.paint(30, 40, 10)
    w.restore("restorer")
    shown = Image.open(io.BytesIO(w._ui.result.value))
    assert shown.size == (40, 32) and w._ui.result.value != before
    assert "restored" in w._ui.status.value
