"""murallab.pretrained and murallab.models: the registry, ``pretrained:NAME`` wherever a checkpoint is taken,
``export``, the shipped weights themselves (loaded with weights_only=True, known pixels kept, better than Telea on
procedural murals), and the score tables of README.md and docs/MODEL_CARD.md against the registry's metadata."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from murallab import cli, metrics, pretrained
from murallab.classical import telea
from murallab.data import make_mural, paint_damage, photograph, random_walk_masks, save_image, save_mask
from murallab.data import load_image
from murallab.models import build_model, export, load_pretrained
from murallab.restore import detect, restore
from murallab.train import load_checkpoint, load_model, save_checkpoint
from murallab.train.config import build_run, load_config


def _checkpoint(path, spec=None):
    """A training checkpoint (optimiser state included) of a small random network."""
    spec = spec or {"name": "FFCUNet", "base": 8, "blocks": 1}
    torch.manual_seed(0)
    model = build_model(**spec)
    for p in model.parameters():  # non-zero everywhere (the head starts at zero)
        torch.nn.init.normal_(p, std=0.05)
    opt = torch.optim.Adam(model.parameters())
    save_checkpoint(path, model=model.state_dict(), optimizer=opt.state_dict(), config={"name": "x", "model": spec},
                    progress={"step": 123, "best": 25.0})
    return model


def test_export_halves_the_floats_and_keeps_the_network(tmp_path):
    model = _checkpoint(tmp_path / "best.pt")
    export(tmp_path / "best.pt", tmp_path / "w.pt")
    ckpt = torch.load(tmp_path / "w.pt", weights_only=True)
    assert set(ckpt) == {"model", "config", "progress"}  # no optimiser state
    assert ckpt["progress"]["step"] == 123
    for k, v in model.state_dict().items():
        assert ckpt["model"][k].dtype == (torch.float16 if v.is_floating_point() else v.dtype), k
        torch.testing.assert_close(ckpt["model"][k].float(), v.float(), rtol=1e-3, atol=1e-4)  # fp16 rounding
    loaded, _ = load_model(tmp_path / "w.pt")
    x, m = torch.rand(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.3).float()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x * m, m), model(x * m, m), rtol=0, atol=1e-2)
    assert next(loaded.parameters()).dtype == torch.float32


def test_pretrained_names_resolve_anywhere_a_checkpoint_path_does(tmp_path, monkeypatch):
    _checkpoint(tmp_path / "best.pt")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    export(tmp_path / "best.pt", tmp_path / "restorer.pt")
    assert pretrained.weights_path("pretrained:restorer") == tmp_path / "restorer.pt"
    assert pretrained.weights_path("runs/x/best.pt") == pretrained.Path("runs/x/best.pt")
    assert load_checkpoint("pretrained:restorer")["progress"]["step"] == 123
    small = {"name": "FFCUNet", "base": 8, "blocks": 1}  # the registry entry names the network it rebuilds
    monkeypatch.setitem(pretrained.WEIGHTS, "restorer",
                        dataclasses.replace(pretrained.WEIGHTS["restorer"], architecture=small))
    assert isinstance(load_pretrained("restorer"), type(build_model(**small)))
    with pytest.raises(ValueError, match="pretrained:nope: no such pretrained weights; the kit ships "
                                         "pretrained:restorer, pretrained:restorer-small, pretrained:detector"):
        load_model("pretrained:nope")
    with pytest.raises(FileNotFoundError, match="pretrained:detector should be at .*murallab train --config"):
        load_model("pretrained:detector")


def test_export_command_and_one_line_errors(tmp_path, capsys):
    _checkpoint(tmp_path / "best.pt")
    assert cli.main(["export", str(tmp_path / "best.pt"), str(tmp_path / "w.pt")]) == 0
    assert "MB)" in capsys.readouterr().out and (tmp_path / "w.pt").is_file()
    assert cli.main(["export", str(tmp_path / "best.pt"), str(tmp_path / "best.pt")]) == 2
    assert "is the checkpoint itself" in capsys.readouterr().err
    save_image(make_mural(64, seed=0), tmp_path / "a.png")
    save_mask(random_walk_masks(1, 64, seed=0)[0], tmp_path / "m.png")
    assert cli.main(["restore", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"), "--mask-hole-value", "0",
                     "--checkpoint", "pretrained:nope", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no such pretrained weights" in err


# --- the shipped weights -------------------------------------------------------------------------------------------

def _procedural(n=8, size=128, seed=7):
    images = torch.stack([make_mural(size, seed=1000 + seed + i) for i in range(n)])
    masks = random_walk_masks(n, size, hole_ratio=(0.1, 0.4), seed=seed)
    return images, masks


@pytest.mark.parametrize("name", sorted(pretrained.WEIGHTS))
def test_shipped_weights_load_safely_and_match_their_card(name):
    w = pretrained.WEIGHTS[name]
    assert w.path.is_file(), f"{w.path} is missing: {w.command}"
    ckpt = torch.load(w.path, map_location="cpu", weights_only=True)  # tensors and plain data only
    spec = dict(w.architecture)
    net = build_model(spec.pop("name"), **spec)
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in ckpt["model"].items()} == shapes
    assert ckpt["progress"]["step"] == w.recipe.steps
    # the registry's architecture is the one the file was trained as (its refine named the shipped restorer-small)
    saved = dict(ckpt["config"]["model"])
    if "refine" in saved:
        assert saved.pop("refine") == "pretrained:restorer-small"
        assert w.architecture["refine"] == pretrained.WEIGHTS["restorer-small"].architecture
    assert saved == {k: v for k, v in w.architecture.items() if k != "refine"}
    assert (w.threshold is not None) == (w.architecture["name"] == "DualDecoderUNet")
    assert sum(p.stat().st_size for p in pretrained.WEIGHTS_DIR.glob("*.pt")) < 30 * 2**20


def test_shipped_restorer_keeps_known_pixels_and_beats_telea_on_procedural_murals():
    model = load_pretrained("restorer")
    images, masks = _procedural()
    ours = torch.stack([restore(model, i * m, m) for i, m in zip(images, masks)])
    known = masks.bool().expand_as(images)
    assert torch.equal(ours[known], images[known])  # copied from the input
    ours_psnr = metrics.psnr(ours, images).item()
    telea_psnr = metrics.psnr(telea(images * masks, masks), images).item()
    assert ours_psnr > telea_psnr + 0.3, (ours_psnr, telea_psnr)


def test_shipped_detector_finds_painted_damage():
    model = load_pretrained("detector")
    images, masks = _procedural(seed=11)
    corrupted = paint_damage(images, masks, seed=11)
    prob = torch.stack([detect(model, c) for c in corrupted])
    assert model.threshold == pretrained.WEIGHTS["detector"].threshold == 0.3  # it travels with the weights
    iou = metrics.iou(prob >= model.threshold, masks < 0.5).item()
    assert iou > 0.5, iou


def test_shipped_detector_did_not_learn_the_sharpness_shortcut():
    """Painted damage sent through a camera and a JPEG file (`photograph`) is found about as well as sharp painted
    damage: the detector finds what damage looks like, not that it is sharp (a detector trained on sharp painted
    damage scores 0.84 sharp and 0.14 photographed on held-out murals; BENCHMARKS.md, "Damage detection")."""
    model = load_pretrained("detector")
    tau = pretrained.WEIGHTS["detector"].threshold
    images, masks = _procedural(seed=13)
    sharp = paint_damage(images, masks, seed=13)
    photographed = torch.stack([photograph(c, seed=i) for i, c in enumerate(sharp)])
    with torch.no_grad():
        iou = {name: metrics.iou(model(x)[1] >= tau, masks < 0.5).item()
               for name, x in (("sharp", sharp), ("photographed", photographed))}
    assert iou["photographed"] > 0.5 and iou["photographed"] > iou["sharp"] - 0.15, iou


def test_the_finetuning_preset_starts_from_the_shipped_restorer(repo_root):
    cfg = load_config(repo_root / "configs" / "finetune_restorer.yaml")
    cfg["data"].update(n_murals=2, mural_size=128, patch_size=64, patches_per_image=1)
    model = build_run(cfg)["model"]
    shipped = load_pretrained("restorer").state_dict()
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, shipped[k], rtol=0, atol=0)  # the same fp16 values, widened


def test_the_library_and_the_command_line_give_the_detector_the_same_mask(tmp_path, capsys):
    """restore(load_pretrained("detector"), image) and `murallab restore --blind --checkpoint pretrained:detector`
    use one threshold, the one the weights carry: the same holes,
    the same pixels up to the 8-bit file."""
    images, masks = _procedural(n=1, seed=3)
    save_image(paint_damage(images, masks, seed=3)[0], tmp_path / "wall.png")
    image = load_image(tmp_path / "wall.png")
    restored, mask = restore(load_pretrained("detector"), image, return_mask=True)
    assert cli.main(["restore", str(tmp_path / "wall.png"), "--blind", "--checkpoint", "pretrained:detector",
                     "-o", str(tmp_path / "out.png")]) == 0
    printed = capsys.readouterr().out
    assert f"{float(1 - mask.mean()):.1%} holes (detected, threshold 0.3)" in printed, printed
    torch.testing.assert_close(load_image(tmp_path / "out.png"), restored, rtol=0, atol=0.5 / 255 + 1e-6)
    assert 0.02 < float(1 - mask.mean()) < 0.6  # a real test: some damage found, not all


def test_an_image_smaller_than_the_networks_padding_restores_with_the_shipped_restorer(tmp_path, capsys):
    """An 8x8 image with pretrained:restorer: restored (a reflection-padding traceback before), known pixels kept,
    in the library and on the command line."""
    image = make_mural(64, seed=4)[:, :8, :8]
    mask = torch.ones(1, 8, 8)
    mask[:, 2:5, 3:6] = 0
    out = restore(load_pretrained("restorer"), image, mask)
    assert out.shape == (3, 8, 8) and torch.isfinite(out).all()
    assert torch.equal(out[:, mask[0].bool()], image[:, mask[0].bool()])
    save_image(image, tmp_path / "tiny.png")
    save_mask(mask, tmp_path / "tiny_mask.png")
    assert cli.main(["restore", str(tmp_path / "tiny.png"), "--mask", str(tmp_path / "tiny_mask.png"),
                     "--mask-hole-value", "0", "--checkpoint", "pretrained:restorer",
                     "-o", str(tmp_path / "out.png")]) == 0, capsys.readouterr().err
    assert load_image(tmp_path / "out.png").shape == (3, 8, 8)


def test_the_diffusion_models_carry_the_restorer_they_refine():
    """diffusion-64's frozen fill network is built from the registry's architecture and filled from its own
    state_dict: the same weights as the shipped restorer-small (no file of that restorer is read)."""
    fill = load_pretrained("diffusion-64").fill_net.state_dict()
    small = load_pretrained("restorer-small").state_dict()
    assert fill.keys() == small.keys()
    for k, v in small.items():
        torch.testing.assert_close(fill[k], v, rtol=0, atol=0)


def test_detect_uses_the_shipped_detectors_validated_threshold(tmp_path, capsys):
    """`murallab detect --checkpoint pretrained:detector` thresholds at the τ of its card unless told otherwise."""
    images, masks = _procedural(n=1, seed=3)
    save_image(paint_damage(images, masks, seed=3)[0], tmp_path / "wall.png")
    tau = pretrained.WEIGHTS["detector"].threshold
    assert cli.main(["detect", str(tmp_path / "wall.png"), "--checkpoint", "pretrained:detector", "-o",
                     str(tmp_path / "m.png")]) == 0
    assert f"(threshold {tau})" in capsys.readouterr().out
    assert cli.main(["detect", str(tmp_path / "wall.png"), "--checkpoint", "pretrained:detector", "--threshold", "0.2",
                     "-o", str(tmp_path / "m2.png")]) == 0
    assert "(threshold 0.2)" in capsys.readouterr().out


def _patches64(n=8, seed=5):
    """Procedural 64 px patches with random-walk holes of 15-35 %, as the diffusion models were trained on."""
    images = torch.stack([make_mural(128, seed=seed + i)[:, 32:96, 32:96] for i in range(n)])
    return images, random_walk_masks(n, 64, hole_ratio=(0.15, 0.35), seed=seed)


def test_shipped_diffusion_model_uses_its_condition():
    """The condition probe: hiding the condition (the masked image and the mask) from the shipped model costs it
    more than 3 dB of hole PSNR, and with it the DDIM fill beats the mean colour of the known pixels."""
    from murallab.diffusion import ddim_sample

    model = load_pretrained("diffusion-64")
    images, masks = _patches64()
    known = images * masks
    ours = model.sample(known, masks, sampler="ddim", steps=10, seed=0)
    hidden = ddim_sample(model.nets[0], model.schedule, known=known, mask=masks,
                         cond=torch.zeros(len(images), 4, 64, 64), steps=10, seed=0)
    mean = (known.sum((2, 3), keepdim=True) / masks.sum((2, 3), keepdim=True)).expand_as(images)
    keep = masks.bool().expand_as(images)
    assert torch.equal(ours[keep], images[keep])
    with_cond, without = metrics.psnr(ours, images, masks).item(), metrics.psnr(hidden, images, masks).item()
    assert with_cond > without + 3, (with_cond, without)
    assert with_cond > metrics.psnr(torch.where(keep, images, mean), images, masks).item()


def test_shipped_multiscale_pair_restores_coarse_to_fine():
    model = load_pretrained("diffumural-64")
    assert model.scales == [32, 64]
    images, masks = _patches64(seed=9)
    damaged = paint_damage(images, masks, seed=9)
    ours = model.sample(damaged, masks, steps=5, seed=0)
    keep = masks.bool().expand_as(images)
    assert torch.equal(ours[keep], images[keep])
    assert metrics.psnr(ours, images, masks).item() > metrics.psnr(damaged, images, masks).item() + 3


def test_shipped_unconditional_model_restores_with_repaint_only():
    """RePaint with the shipped unconditional model keeps the known pixels and fills the holes better than the damage
    left in place and the mean colour; it refuses the conditional samplers, having never seen a known pixel."""
    model = load_pretrained("unconditional-64")
    assert model.cond_drop == 1 and model.default_sampler == "repaint"
    images, masks = _patches64(seed=11)
    damaged = paint_damage(images, masks, seed=11)
    ours = model.sample(damaged, masks, steps=10, jump_length=5, jump_n_sample=2, seed=0)
    keep = masks.bool().expand_as(images)
    assert torch.equal(ours[keep], images[keep])
    mean = (damaged * masks).sum((2, 3), keepdim=True) / masks.sum((2, 3), keepdim=True)
    floor = max(metrics.psnr(damaged, images, masks).item(),
                metrics.psnr(torch.where(keep, images, mean.expand_as(images)), images, masks).item())
    assert metrics.psnr(ours, images, masks).item() > floor, floor
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(damaged, masks, sampler="ddim", steps=2)


# --- the score tables of README.md and docs/MODEL_CARD.md quote the registry ---------------------------------------

def _tables(path) -> dict[str, list[list[str]]]:
    """Every markdown table in ``path``: its header line (cells joined by " | ") -> its body rows (lists of cells)."""
    tables, header, rows = {}, None, []
    for line in list(path.read_text(encoding="utf-8").splitlines()) + [""]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells is None:
            if header is not None:
                tables[header] = rows
            header, rows = None, []
        elif header is None:
            header = " | ".join(cells)
        elif not set("".join(cells)) <= set("-: "):
            rows.append(cells)
    return tables


def _numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"(?<![\w.])\d[\d,]*\.?\d*", text.replace("*", ""))]


def _row(rows, label: str) -> list[str]:
    found = [r for r in rows if r[0].replace("*", "") == label]
    assert len(found) == 1, f"no single row {label!r} in {[r[0] for r in rows]}"
    return found[0]


def _pairs(metrics: dict, *keys: str, psnr="psnr", ssim="ssim") -> list[float]:
    return [v for k in keys for v in (metrics[k][psnr], metrics[k][ssim])]


def test_model_card_tables_quote_the_registry(repo_root):
    """Every score in docs/MODEL_CARD.md's tables is the registry's (murallab.pretrained), so a score lives in one
    place: the restorers' table (overall and per hole-ratio bin), the detector's, the diffusion models', and each
    file's steps."""
    tables = _tables(repo_root / "docs" / "MODEL_CARD.md")
    w, base = pretrained.WEIGHTS, pretrained.BASELINES
    bins = ("pool_heldout", "pool_heldout_10-20", "pool_heldout_20-30", "pool_heldout_30-40")
    ensemble = ("pool_heldout_self_ensemble",) + tuple(f"pool_heldout_self_ensemble_{b}" for b in
                                                       ("10-20", "20-30", "30-40"))
    restorers = tables["method | PSNR | SSIM | 10–20 % holes | 20–30 % | 30–40 %"]
    expected = {"OpenCV Telea": _pairs(base["telea"], *bins),
                "push-pull (the restorers' starting fill)": _pairs(base["push_pull"], *bins),
                "`pretrained:restorer-small`": _pairs(w["restorer-small"].metrics, *bins),
                "`pretrained:restorer`": _pairs(w["restorer"].metrics, *bins),
                "`pretrained:restorer`, flip self-ensemble (`--self-ensemble`)": _pairs(w["restorer"].metrics,
                                                                                      *ensemble)}
    for label, values in expected.items():
        row = _row(restorers, label)
        assert pytest.approx(values, abs=5e-4) == _numbers(" ".join(row[1:])), label
    assert len(restorers) == len(expected)

    det = w["detector"].metrics
    detector = tables[f"where | IoU at τ = {w['detector'].threshold}"]
    expected = [det["painted_validation"]["iou"],
                det["painted_heldout_photographed"]["iou"], det["painted_heldout_sharp"]["iou"],
                det["procedural_notebook05"]["iou"], det["bodhisattva"]["iou"], det["bodhisattva"]["f1"]]
    got = [x for row in detector for x in _numbers(row[1])]
    assert pytest.approx(expected, abs=5e-4) == got

    diffusion = tables["method | model calls | hole PSNR | hole SSIM"]
    key = "pool_heldout_64px"
    expected = {"OpenCV Telea": base["telea"][key],
                "`pretrained:restorer-small`, the fill the diffusion models refine": w["restorer-small"].metrics[key],
                "`diffusion-64`, the mean of 10 DDIM-5 samples": w["diffusion-64"].metrics[f"{key} mean of 10 DDIM-5"],
                "`diffusion-64`, one DDIM-50 sample": w["diffusion-64"].metrics[f"{key} DDIM-50"],
                "`diffumural-64`, DDIM 49 + 1 (32 px + 64 px calls; the split chosen on training murals)":
                    w["diffumural-64"].metrics[f"{key} multi-scale 49+1"],
                "`diffumural-64`, DDIM 25 + 25": w["diffumural-64"].metrics[f"{key} multi-scale 25+25"],
                "`unconditional-64`, RePaint 50/5/5": w["unconditional-64"].metrics[f"{key} RePaint 50/5/5"],
                "`diffusion-64`, RePaint 50/5/5, its condition hidden":
                    w["diffusion-64"].metrics[f"{key} RePaint 50/5/5, condition hidden"],
                "the mean colour of the known pixels": base["mean_colour"][key]}
    for label, m in expected.items():
        row = _row(diffusion, label)
        assert pytest.approx([m["calls"], m["hole_psnr"], m["hole_ssim"]], abs=5e-4) == _numbers(" ".join(row[1:]))
    assert len(diffusion) == len(expected)

    files = tables["name | network | file | parameters | steps | made by"]
    for name, weights in w.items():
        row = _row(files, f"`{name}`")
        assert _numbers(row[4]) == [weights.recipe.steps] and row[5] == f"`configs/{weights.recipe.config}.yaml`"
    assert len(files) == len(w)


def test_readme_measured_table_quotes_the_registry(repo_root):
    """The README's figures for the shipped weights are the registry's: every row about a shipped file quotes its
    numbers as the registry holds them (the restorer's row at least is there)."""
    rows = {r[0]: r[1] for r in _tables(repo_root / "README.md")["what | figure"]}
    w, telea = pretrained.WEIGHTS, pretrained.BASELINES["telea"]

    def pair(m):
        return f"{m['hole_psnr']:.2f} / {m['hole_ssim']:.3f}"

    r, t = w["restorer"].metrics["pool_heldout"], telea["pool_heldout"]
    key, d, pair_model = "pool_heldout_64px", w["diffusion-64"].metrics, w["diffumural-64"].metrics
    det = w["detector"].metrics
    quotes = {
        "the shipped `pretrained:restorer`": [
            f"{r['psnr']:.2f} vs {t['psnr']:.2f} dB PSNR, SSIM {r['ssim']:.3f} vs {t['ssim']:.3f}"],
        "`pretrained:restorer` on murals from sources": [
            f"{g['psnr']:+.2f} dB, {g['ssim']:+.3f} SSIM over Telea on average"
            for g in [w["restorer"].metrics["sources_left_out_gain"]]] + [
            f"on the walls alone {w['restorer'].metrics['walls_gain']['psnr']:+.2f} dB",
            f"`restorer-small`: {w['restorer-small'].metrics['sources_left_out_gain']['psnr']:+.2f} dB",
            f"walls {w['restorer-small'].metrics['walls_gain']['psnr']:+.2f} dB"],
        "the shipped `pretrained:diffusion-64`": [
            f"one DDIM-50 sample {pair(d[f'{key} DDIM-50'])}",
            f"the mean of 10 DDIM-5 samples {pair(d[f'{key} mean of 10 DDIM-5'])}",
            f"the restorer it refines {pair(w['restorer-small'].metrics[key])}",
            f"OpenCV Telea {pair(telea[key])}",
            f"49 + 1 calls {pair(pair_model[f'{key} multi-scale 49+1'])}",
            f"unconditional ε-prediction model {pair(w['unconditional-64'].metrics[f'{key} RePaint 50/5/5'])}"],
        "notebook 07 at its defaults": [
            "{psnr:.2f} dB / {ssim:.3f}".format(**w["restorer"].metrics["procedural_192px"]),
            *(f"{name} {m['procedural_192px']['psnr']:.2f} / {m['procedural_192px']['ssim']:.3f}"
              for name, m in (("push-pull", pretrained.BASELINES["push_pull"]), ("Telea", telea)))],
        "the shipped `pretrained:detector`": [
            f"IoU {det['bodhisattva']['iou']:.3f}", f"IoU {det['painted_validation']['iou']:.2f} on validation"],
    }
    checked = 0
    for start, wanted in quotes.items():
        for label, figure in rows.items():
            if label.startswith(start):
                checked += 1
                for quoted in wanted:
                    assert quoted in f"{label} | {figure}", (label, quoted)
    assert checked >= 1 and any(k.startswith("the shipped `pretrained:restorer`") for k in rows)
