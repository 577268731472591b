"""murallab.restore: tiled full-resolution restoration, detection, blind restoration, and their CLI commands.

The truths used here: a tiled run of a network equals the whole-image run wherever the tile's receptive field stays
inside the tile (up to rounding, when tiles start on the network's stride grid: a tile's convolutions need not sum
in the whole image's order on every CPU, so this is a tolerance, not bit-exactness); the blending weights are a
partition of unity (tiling the identity gives the image back); compositing keeps known pixels bit for bit; files
written by the CLI are read back with PIL, not with murallab's own loaders.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from murallab import cli
from murallab.classical import push_pull
from murallab.data import load_image, random_walk_mask
from murallab.nn import DualDecoderUNet, FFCUNet, PConvUNet, UNet
from murallab.restore import detect, restore
from murallab.tiling import tile_windows, tiled
from murallab.checkpoint import save_checkpoint

# PConvUNet(layers=3) and UNet(layers=3) have a stride of 8 and change no output further than 29 px from a changed
# input (measured by perturbing single pixels); DualDecoderUNet(depth=2): stride 4, 26 px. With tile 128 and
# overlap 32 the tiles step by 96, a multiple of both strides, and every pixel outside the overlaps is at least
# 32 px from the edges of the one tile that covers it. 224 = 128 + 96 and 320 = 128 + 2·96: 2×3 aligned tiles.
H, W, TILE, OVERLAP = 224, 320, 128, 32


def _model(cls, seed, **kw):
    torch.manual_seed(seed)
    return cls(**kw).eval()


def _plateau(length, tile=TILE, overlap=OVERLAP) -> torch.Tensor:
    """(length,) bool: pixels covered by a single tile with weight 1 (outside every overlap)."""
    starts, windows = tile_windows(length, tile, overlap)
    out = torch.zeros(length, dtype=torch.bool)
    for s, w in zip(starts, windows):
        out[s:s + windows.shape[1]] |= w == 1
    return out


def _predict(model):
    """Per-tile function for ``tiled``: (B, 4, h, w) image + mask -> the network's raw prediction."""
    return lambda b: model(b[:, :3], b[:, 3:])


# --- the tiling and its weights ------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 7, 64, 65, 100, 160, 301, 517])
@pytest.mark.parametrize("tile,overlap", [(64, 16), (64, 0), (50, 24)])
def test_windows_partition_of_unity(length, tile, overlap):
    """Tiles cover every pixel, stay inside the axis, all have one size, step by at most tile - overlap, and their
    windows are positive and sum to 1 at every pixel; away from overlaps the weight is exactly 1."""
    starts, windows = tile_windows(length, tile, overlap)
    t = min(tile, length)
    assert windows.shape == (len(starts), t)
    assert starts[0] == 0 and starts[-1] + t == length
    assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    assert bool((windows > 0).all())
    total = torch.zeros(length, dtype=torch.float64)
    count = torch.zeros(length, dtype=torch.int64)
    for s, w in zip(starts, windows):
        total[s:s + t] += w
        count[s:s + t] += 1
    torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-12)
    assert bool(((count == 1) <= (total == 1)).all())  # a pixel seen by one tile takes it whole


@pytest.mark.parametrize("size", [(301, 517), (37, 50), (64, 64), (65, 130)])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_tiled_identity_reproduces_the_image(size, batch_size):
    """Tiling ``lambda x: x`` gives the image back (to float rounding), for odd sizes and images smaller than a tile;
    tiling ``ones`` gives exactly the weight sum, 1 everywhere."""
    x = torch.rand(3, *size, generator=torch.Generator().manual_seed(0))
    y = tiled(lambda b: b, x, tile=64, overlap=16, batch_size=batch_size)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-6)
    ones = tiled(torch.ones_like, x, tile=64, overlap=16, batch_size=batch_size)
    torch.testing.assert_close(ones, torch.ones_like(x), rtol=0, atol=1e-6)
    # a per-tile function that changes channels: the output takes its channel count
    assert tiled(lambda b: b[:, :1], x, tile=64, overlap=16).shape == (1, *size)


def test_tiled_rejects_bad_tiling():
    x = torch.rand(3, 40, 40)
    for tile, overlap, match in [(64, 32, "less than half"), (64, -1, "at least 0"), (0, 0, "positive")]:
        with pytest.raises(ValueError, match=match):
            tiled(lambda b: b, x, tile=tile, overlap=overlap)
    with pytest.raises(ValueError, match="per-tile function"):
        tiled(lambda b: b[:, :, :-1], x, tile=32, overlap=8)


# --- tiled equals whole-image ----------------------------------------------------------------------------------------

def _case(cls, seed):
    """A tiny untrained network, a random image and a random-walk mask (30-40 % holes), stacked for ``tiled``."""
    model = _model(cls, seed, layers=3, base=8)
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(seed))
    mask = random_walk_mask(H, W, hole_ratio=(0.3, 0.4), seed=seed)
    with torch.no_grad():
        whole = model(image[None], mask[None])[0]
    return model, image, mask, torch.cat([image, mask]), whole


@pytest.mark.parametrize("cls", [PConvUNet, UNet])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tiled_prediction_equals_whole_image_away_from_seams(cls, seed):
    """With tiles on the network's stride grid, the tiled prediction equals the whole-image one outside the overlaps
    (68 % of the pixels; up to rounding, 1e-5, which some CPUs meet bit for bit) and stays close inside them."""
    model, image, mask, x, whole = _case(cls, seed)
    with torch.no_grad():
        tiles = tiled(_predict(model), x, tile=TILE, overlap=OVERLAP)
        single = model(image[None, :, :TILE, :TILE], mask[None, :, :TILE, :TILE])[0]
    plateau = _plateau(H)[:, None] & _plateau(W)[None]
    assert 0.6 < plateau.float().mean() < 0.75
    err = (tiles - whole).abs().amax(0)
    assert float(err[plateau].max()) <= 1e-5
    # the context matters: a lone tile's prediction near its inner edges is not the whole-image prediction ...
    edge = (single - whole[:, :TILE, :TILE]).abs().amax(0)
    assert float(edge[TILE - 8:, :].max()) > 1e-3
    # ... and the blend hides it (measured means over 8 seeds: PConvUNet <= 0.007, UNet <= 0.0005)
    assert float(err[~plateau].mean()) < (2e-3 if cls is UNet else 2e-2)


@pytest.mark.parametrize("cls", [PConvUNet, UNet])
def test_blending_error_falls_with_overlap(cls):
    """Mean |tiled - whole| over the image shrinks as the overlap grows: 0 (tiles averaged where the last one is
    moved back, cut elsewhere) > 8 > 32 px of raised-cosine blending."""
    model, _, _, x, whole = _case(cls, 0)
    with torch.no_grad():
        errors = [float((tiled(_predict(model), x, tile=TILE, overlap=o) - whole).abs().mean()) for o in (0, 8, 32)]
    assert errors[0] > errors[1] > errors[2], errors


@pytest.mark.parametrize("seed", [0, 1])
def test_restore_equals_whole_image_composite(seed):
    """restore() is the whole-image composite ``where(mask, image, clamp(prediction))`` outside the overlaps, and
    runs the network only on tiles that hold a hole (the skipped tiles change nothing)."""
    model = _model(PConvUNet, seed, layers=3, base=8)
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(seed))
    mask = torch.ones(1, H, W)
    mask[:, 40:90, 30:80] = 0  # a hole inside tile (0, 0) only ...
    mask[:, 150:200, 240:300] = 0  # ... and one inside tile (1, 2) only
    calls = []
    model.register_forward_pre_hook(lambda _, args: calls.append(args[0].shape[0]))
    out = restore(model, image, mask, tile=TILE, overlap=OVERLAP, batch_size=6)
    assert calls == [2]  # 6 tiles in one batch, 2 of them with holes
    with torch.no_grad():
        truth = torch.where(mask.bool(), image, model(image[None], mask[None])[0].clamp(0, 1))
    plateau = _plateau(H)[:, None] & _plateau(W)[None]
    assert float((out - truth).abs().amax(0)[plateau].max()) <= 1e-5
    hole = mask[0] == 0
    assert float((out - truth).abs().amax(0)[hole].max()) < 0.05  # the second hole reaches into an overlap


# --- known pixels, sizes, validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("size,dtype", [((301, 517), torch.float32), ((37, 50), torch.float64),
                                        ((17, 300), torch.float32)])
@pytest.mark.parametrize("cls", [PConvUNet, UNet])
def test_known_pixels_unchanged_bit_for_bit(size, dtype, cls):
    """Odd sizes, images smaller than a tile and a tile (150) that is no multiple of the stride: the output has the
    image's shape and dtype, lies in [0, 1], and its known pixels are the input's exactly."""
    model = _model(cls, 0, layers=3, base=8)
    h, w = size
    mask = random_walk_mask(h, w, hole_ratio=(0.2, 0.4), seed=1)
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(2), dtype=dtype)
    out = restore(model, image, mask, tile=150, overlap=20)
    assert out.shape == image.shape and out.dtype == dtype
    known = mask[0].bool()
    assert torch.equal(out[:, known], image[:, known])
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert not torch.equal(out[:, ~known], image[:, ~known])  # the holes were filled


def test_restore_leaves_the_model_as_it_was():
    """restore() runs in eval mode without gradients and puts a model in training mode back into training mode;
    its BatchNorm statistics are not touched."""
    model = _model(PConvUNet, 0, layers=3, base=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image, mask = torch.rand(3, 48, 48), random_walk_mask(48, 48, seed=0)
    out = restore(model, image, mask, tile=32, overlap=8)
    assert model.training and not out.requires_grad
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(out, restore(model.eval(), image, mask, tile=32, overlap=8))


def test_restore_validation_errors():
    """Clear errors for a mask of the wrong size, a non-binary or inverted mask, bad images and the wrong network."""
    model = _model(PConvUNet, 0, layers=3, base=8)
    image, mask = torch.rand(3, 40, 60), random_walk_mask(40, 60, hole_ratio=(0.1, 0.2), seed=0)
    with pytest.raises(ValueError, match="exactly its image's size"):
        restore(model, image, mask[..., :50])
    with pytest.raises(ValueError, match="binary"):
        restore(model, image, mask * 0.5)
    with pytest.raises(ValueError, match="hole_value=255"):
        restore(model, image, 1 - mask)  # inverted: mostly hole
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        restore(model, image * 255, mask)
    with pytest.raises(ValueError, match="float"):
        restore(model, (image * 255).to(torch.uint8), mask)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        restore(model, image[None], mask)
    with pytest.raises(ValueError, match="less than half"):
        restore(model, image, mask, tile=64, overlap=40)
    blind = _model(DualDecoderUNet, 0, base=8, depth=2)
    with pytest.raises(TypeError, match="without a mask"):
        restore(blind, image, mask)
    with pytest.raises(TypeError, match="DualDecoderUNet"):
        detect(model, image)
    with pytest.raises(TypeError, match=r"restore\(model, image, mask\)"):
        restore(model, image)  # a guided network needs its mask
    with pytest.raises(TypeError, match="diffusion"):
        restore(model, image, mask, steps=3)  # sampling arguments
    with pytest.raises(TypeError, match="blind network"):
        restore(model, image, mask, threshold=0.5)
    with pytest.raises(ValueError, match="threshold"):
        restore(blind, image, threshold=1.5)


# --- detection and blind restoration -------------------------------------------------------------------------------

def test_detect_probabilities_tiled_like_whole_image():
    """detect() gives (1, H, W) probabilities in [0, 1] equal to the whole-image damage map outside the overlaps."""
    model = _model(DualDecoderUNet, 0, base=8, depth=2)
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0))
    prob = detect(model, image, tile=TILE, overlap=OVERLAP)
    assert prob.shape == (1, H, W)
    assert float(prob.min()) >= 0 and float(prob.max()) <= 1
    with torch.no_grad():
        whole = model(image[None])[1][0]
    plateau = _plateau(H)[:, None] & _plateau(W)[None]
    err = (prob - whole).abs()[0]
    assert float(err[plateau].max()) <= 1e-5 and float(err.max()) < 0.05
    small = detect(model, image[:, :30, :41], tile=TILE, overlap=OVERLAP)  # smaller than a tile
    assert small.shape == (1, 30, 41)


def test_blind_restore_keeps_undamaged_pixels():
    """restore(blind network, image) keeps, bit for bit, every pixel whose damage probability is below the threshold, and fills the
    others with the network's image; its mask is exactly (detect < threshold)."""
    model = _model(DualDecoderUNet, 1, base=8, depth=2)
    image = torch.rand(3, 70, 100, generator=torch.Generator().manual_seed(1))
    prob = detect(model, image, tile=64, overlap=16)
    threshold = float(prob.median())  # an untrained network: put the threshold inside its range
    out, mask = restore(model, image, threshold=threshold, tile=64, overlap=16, return_mask=True)
    assert out.shape == image.shape and mask.shape == (1, 70, 100)
    known = prob[0] < threshold
    assert torch.equal(mask[0].bool(), known) and 0.3 < known.float().mean() < 0.7
    assert torch.equal(out[:, known], image[:, known])
    with torch.no_grad():
        net_image = tiled(lambda b: model(b)[0], image, tile=64, overlap=16)
    torch.testing.assert_close(out[:, ~known], net_image[:, ~known].clamp(0, 1))
    model.threshold = threshold  # the network's own threshold is the default
    torch.testing.assert_close(restore(model, image, tile=64, overlap=16), out, rtol=0, atol=0)


def test_a_half_precision_model_restores_like_its_float32_copy():
    """The shipped files are fp16: restore() with a model in half precision (a traceback before: its Fourier units
    run in float32) gives float32 pixels equal to the float32 model's, within fp16 rounding of the weights."""
    import copy

    torch.manual_seed(0)
    model = FFCUNet(base=8, blocks=1).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a last layer away from zero, so the network matters
    half = copy.deepcopy(model).half()
    reference = copy.deepcopy(half).float()  # the same rounded weights, in float32
    image = torch.rand(3, 40, 56, generator=torch.Generator().manual_seed(2))
    mask = torch.ones(1, 40, 56)
    mask[:, 10:30, 12:40] = 0
    out = restore(half, image, mask)
    assert out.dtype == torch.float32 and next(half.parameters()).dtype == torch.float16  # the model is left as is
    torch.testing.assert_close(out, restore(reference, image, mask), rtol=0, atol=1e-6)
    assert torch.equal(out[:, mask[0].bool()], image[:, mask[0].bool()])
    assert float((out - restore(model, image, mask)).abs().max()) > 0  # fp16 weights did round


@pytest.mark.parametrize("size", [(8, 8), (1, 5), (15, 9)])
def test_an_image_smaller_than_the_ffc_networks_padding_restores(size):
    """An 8x8 image with an FFCUNet (pretrained:restorer's network) was a reflection-padding traceback: the network
    pads to at least 16 px, so it restores, and equals the network run on the image padded by hand."""
    torch.manual_seed(0)
    model = FFCUNet(base=8, blocks=2).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
    h, w = size
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(1, h, w)
    mask[:, h // 2:, : max(1, w // 2)] = 0
    out = restore(model, image, mask, max_hole_ratio=1.0)
    assert out.shape == (3, h, w) and torch.isfinite(out).all()
    assert torch.equal(out[:, mask[0].bool()], image[:, mask[0].bool()])
    with torch.no_grad():
        direct = model(image[None], mask[None])[0].clamp(0, 1)  # one tile: restore is the network's own output
    holes = ~mask[0].bool()
    torch.testing.assert_close(out[:, holes], direct[:, holes], rtol=0, atol=1e-6)
    assert float((direct - push_pull(image[None], mask[None])[0]).abs().max()) > 1e-3  # the network did work


# --- the command line ----------------------------------------------------------------------------------------------

def _write_rgb(path, h, w, seed=0) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return a


def _write_mask(path, holes: np.ndarray, hole_value: int) -> None:
    white = holes if hole_value == 255 else ~holes
    Image.fromarray(white.astype(np.uint8) * 255).save(path)


def _holes(h, w, seed=0) -> np.ndarray:
    return random_walk_mask(h, w, hole_ratio=(0.15, 0.3), seed=seed)[0].numpy() == 0


@pytest.fixture
def files(tmp_path):
    """A 70×90 RGB PNG, its hole map, tiny PConvUNet and DualDecoderUNet checkpoints, and a corrupt one."""
    h, w = 70, 90
    image = _write_rgb(tmp_path / "wall.png", h, w)
    holes = _holes(h, w)
    pconv = _model(PConvUNet, 0, layers=3, base=8)
    save_checkpoint(tmp_path / "pconv.pt", model=pconv.state_dict(),
                    config={"model": {"name": "PConvUNet", "layers": 3, "base": 8}})
    dual = _model(DualDecoderUNet, 0, base=8, depth=2)
    save_checkpoint(tmp_path / "dual.pt", model=dual.state_dict(),
                    config={"model": {"name": "DualDecoderUNet", "base": 8, "depth": 2}})
    (tmp_path / "corrupt.pt").write_bytes((tmp_path / "pconv.pt").read_bytes()[:300])  # truncated
    (tmp_path / "garbage.pt").write_bytes(b"hello, not a checkpoint")
    return {"dir": tmp_path, "image": image, "holes": holes, "dual": dual}


@pytest.mark.parametrize("hole_value", [0, 255])
def test_cli_restore_end_to_end(files, hole_value, capsys):
    """murallab restore writes an image of the input's size whose known pixels are the input's 8-bit values."""
    d = files["dir"]
    _write_mask(d / "mask.png", files["holes"], hole_value)
    out = d / "out" / "restored.png"
    rc = cli.main(["restore", str(d / "wall.png"), "--mask", str(d / "mask.png"), "--mask-hole-value",
                   str(hole_value), "--checkpoint", str(d / "pconv.pt"), "-o", str(out), "--tile", "64",
                   "--overlap", "16", "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    restored = np.asarray(Image.open(out).convert("RGB"))
    assert restored.shape == files["image"].shape
    known = ~files["holes"]
    assert np.array_equal(restored[known], files["image"][known])
    assert not np.array_equal(restored[~known], files["image"][~known])
    assert str(out) in captured.out and "70" in captured.out and "90" in captured.out and "holes" in captured.out


def test_cli_detect_and_blind_restore(files, capsys):
    """murallab detect writes a binary PNG mask (white = known) equal to detect() < threshold; restore --blind
    writes an image whose pixels outside that mask's holes are the input's."""
    d = files["dir"]
    prob = detect(files["dual"], load_image(d / "wall.png"), tile=64, overlap=16)
    threshold = round(float(prob.median()), 4)
    rc = cli.main(["detect", str(d / "wall.png"), "--checkpoint", str(d / "dual.pt"), "-o", str(d / "damage.png"),
                   "--threshold", str(threshold), "--tile", "64", "--overlap", "16", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    saved = np.asarray(Image.open(d / "damage.png"))
    assert saved.shape == (70, 90) and set(np.unique(saved)) == {0, 255}
    known = (prob[0] < threshold).numpy()
    assert np.array_equal(saved == 255, known)
    assert "damage.png" in capsys.readouterr().out

    rc = cli.main(["restore", str(d / "wall.png"), "--blind", "--threshold", str(threshold), "--checkpoint",
                   str(d / "dual.pt"), "-o", str(d / "blind.png"), "--tile", "64", "--overlap", "16"])
    assert rc == 0, capsys.readouterr().err
    restored = np.asarray(Image.open(d / "blind.png").convert("RGB"))
    assert np.array_equal(restored[known], files["image"][known])


def test_cli_progress_bar_only_for_many_tiles(files, capsys):
    """A tqdm bar goes to stderr when there are more than 4 tiles, and none for 4 or fewer."""
    d = files["dir"]
    _write_mask(d / "mask.png", files["holes"], 0)
    base = ["restore", str(d / "wall.png"), "--mask", str(d / "mask.png"), "--mask-hole-value", "0",
            "--checkpoint", str(d / "pconv.pt"), "-o", str(d / "out.png")]
    assert cli.main(base + ["--tile", "32", "--overlap", "8"]) == 0  # 3 × 4 tiles
    assert "tile" in capsys.readouterr().err
    assert cli.main(base + ["--tile", "64", "--overlap", "16"]) == 0  # 2 × 2 tiles
    assert capsys.readouterr().err == ""


def _errors():
    """(name, extra setup, argv builder, command, phrases the message must contain)."""
    r = ["restore", "{d}/wall.png", "--checkpoint", "{d}/pconv.pt", "-o", "{d}/out.png"]
    m0 = ["--mask", "{d}/mask.png", "--mask-hole-value", "0"]
    return [
        ("no mask", r, "restore", ["--mask", "--blind"]),
        ("no hole value", r + ["--mask", "{d}/mask.png"], "restore", ["--mask-hole-value", "0", "255", "1 = known"]),
        ("size mismatch", r + ["--mask", "{d}/small_mask.png", "--mask-hole-value", "0"], "restore",
         ["60×40", "90×70", "size"]),
        ("inverted mask", r + ["--mask", "{d}/inverted.png", "--mask-hole-value", "0"], "restore",
         ["holes", "--mask-hole-value 255"]),
        ("corrupt checkpoint", ["restore", "{d}/wall.png", "--checkpoint", "{d}/corrupt.pt", "-o", "{d}/out.png"]
         + m0, "restore", ["corrupt.pt", "corrupt"]),
        ("garbage checkpoint", ["restore", "{d}/wall.png", "--checkpoint", "{d}/garbage.pt", "-o", "{d}/out.png"]
         + m0, "restore", ["garbage.pt", "not a readable murallab checkpoint"]),
        ("missing checkpoint", ["restore", "{d}/wall.png", "--checkpoint", "{d}/nope.pt", "-o", "{d}/out.png"]
         + m0, "restore", ["nope.pt"]),
        ("missing image", ["restore", "{d}/nope.png", "--checkpoint", "{d}/pconv.pt", "-o", "{d}/out.png"] + m0,
         "restore", ["nope.png"]),
        ("blind with a PConvUNet", ["restore", "{d}/wall.png", "--blind", "--checkpoint", "{d}/pconv.pt", "-o",
                                    "{d}/out.png"], "restore", ["PConvUNet", "DualDecoderUNet", "--mask"]),
        ("mask with a DualDecoderUNet", ["restore", "{d}/wall.png", "--checkpoint", "{d}/dual.pt", "-o",
                                         "{d}/out.png"] + m0, "restore", ["DualDecoderUNet", "--blind"]),
        ("detect with a PConvUNet", ["detect", "{d}/wall.png", "--checkpoint", "{d}/pconv.pt", "-o",
                                     "{d}/out.png"], "detect", ["PConvUNet", "DualDecoderUNet", "murallab restore"]),
        ("detect to JPEG", ["detect", "{d}/wall.png", "--checkpoint", "{d}/dual.pt", "-o", "{d}/out.jpg"],
         "detect", ["losslessly", ".png"]),
        ("overlap too large", r + m0 + ["--tile", "64", "--overlap", "32"], "restore", ["--overlap", "half"]),
        ("output is the input", ["restore", "{d}/wall.png", "--checkpoint", "{d}/pconv.pt", "-o", "{d}/wall.png"]
         + m0, "restore", ["input"]),
    ]


@pytest.mark.parametrize("name,argv,command,phrases", _errors(), ids=[e[0] for e in _errors()])
def test_cli_errors(files, name, argv, command, phrases, capsys):
    """User errors exit 2 with one line ``murallab <command>: error: ...`` on stderr, naming what to do, and write
    nothing."""
    d = files["dir"]
    _write_mask(d / "mask.png", files["holes"], 0)
    _write_mask(d / "small_mask.png", files["holes"][:40, :60], 0)
    _write_mask(d / "inverted.png", files["holes"], 255)  # white = hole, read as black = hole
    before = sorted(p.name for p in d.iterdir())
    rc = cli.main([a.format(d=d) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"murallab {command}: error: ") and err.count("\n") == 1, err
    for phrase in phrases:
        assert phrase in err, (phrase, err)
    assert sorted(p.name for p in d.iterdir()) == before
