"""The kit's own pretrained weights, in torchvision's style: a registry whose entries carry their metadata.

The course runs offline, so it ships its weights in ``murallab/weights/`` (fp16, a few MB), trained by the kit's
own ``murallab train`` on procedural murals and a pool of real mural photographs (docs/MODEL_CARD.md)::

    from murallab.pretrained import WEIGHTS, load_pretrained
    model = load_pretrained("restorer")          # an FFCUNet in eval mode: model(masked, mask)
    diffusion = load_pretrained("diffusion-64")  # a DiffusionRestorer: diffusion.sample(known, mask, sampler="ddim")
    WEIGHTS["restorer"].meta["scores"]           # what it scored, and on what
    WEIGHTS["restorer"].command                  # how it was made

Wherever a checkpoint path is taken, ``pretrained:NAME`` names one of them::

    murallab restore photo.jpg --mask damage.png --mask-hole-value 255 --checkpoint pretrained:restorer -o out.png
    init: pretrained:restorer                    # a config that fine-tunes it (configs/finetune_restorer.yaml)

A weights file is a checkpoint like any other (``murallab.train.load_checkpoint`` reads it, ``weights_only=True``):
``{"model": fp16 state_dict, "config": {"model": {...}}, "progress": {"step": ...}}``, written by :func:`export`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PREFIX", "Weights", "WEIGHTS", "weights_path", "load_pretrained", "export"]

PREFIX = "pretrained:"
WEIGHTS_DIR = Path(__file__).parent / "weights"
POOL = ("388 photographs of Dunhuang cave murals (349 train, 39 validate; the train/ folder of the kit's real-mural "
        "pool: public research photographs from two GitHub repositories, deduplicated; not redistributed)")


@dataclass(frozen=True)
class Weights:
    """One set of shipped weights.

    name: what ``pretrained:NAME`` and :func:`load_pretrained` call it; file: in ``murallab/weights/``;
    task: what the network does and how it is called; data: what it was trained on, in words; command: the commands
    that made the file; meta: ``steps`` (optimiser steps) and ``scores`` (benchmark figures, with how they were
    measured).
    """

    name: str
    file: str
    task: str
    data: str
    command: str
    meta: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def _diffusion(name: str, config: str, task: str, meta: dict) -> Weights:
    """A shipped diffusion model: both were trained the same way, on the same data, one CPU thread each."""
    return Weights(name=name, file=f"{name}.pt", task=task,
                   data=f"64 px patches (zoom 0.25-1) of {POOL} and of 200 procedural murals, together",
                   command=f"murallab train --config configs/{config}.yaml --data ../shared/murals_pool/train --out "
                           f"RUN && murallab export RUN/best.pt murallab/weights/{name}.pt",
                   meta={"hardware": "1 CPU thread of a 2-core machine", **meta})


def _restorer(name: str, config: str, network: str, epochs: tuple[int, int], meta: dict, scores: tuple) -> Weights:
    """A shipped restorer: the same recipe (one procedural epoch, ``epochs`` = (real, mixed) epochs) and benchmark.

    ``scores``: (PSNR dB, SSIM) of this file from ``bench/restoration.py --checkpoint pretrained:NAME`` (200 held-out
    256 px patches of 45 murals never trained on, random-walk holes of 10-40 %): overall, then per 10-20, 20-30 and
    30-40 % bin; then on notebook 07 at its defaults (40 procedural 64 px patches, holes 1-60 %). OpenCV Telea beside
    them."""
    overall, *bins, procedural = scores
    return Weights(
        name=name, file=f"{name}.pt",
        task=f"inpainting with a known mask{network}, model(masked, mask) -> image; it refines the push-pull fill with "
             "fast Fourier convolutions (murallab/nn/ffc_unet.py)",
        data=f"1,600 patches of 200 procedural murals (one epoch), then {POOL} ({epochs[0]} epochs), then both "
             f"({epochs[1]} epochs)",
        command=f"murallab train --config configs/{config}.yaml --data ../shared/murals_pool/train --out RUN && "
                f"murallab export RUN/best.pt murallab/weights/{name}.pt",
        meta={**meta, "scores": {
            "pool_heldout": {"pretrained": overall, "telea": (24.63, 0.856)},
            "pool_heldout_by_hole_ratio": dict(zip(("10-20%", "20-30%", "30-40%"), bins)),
            "procedural_64px": {"pretrained": procedural, "telea": (32.94, 0.893)}}})


WEIGHTS: dict[str, Weights] = {w.name: w for w in (
    _restorer("restorer", "pretrained_restorer", ": FFCUNet(base 48, blocks 6)", (34, 2),
              {"steps": 13164, "train_minutes": 115, "hardware": "2 CPU cores (bf16 autocast, channels-last, AMX)"},
              ((26.66, 0.879), (28.78, 0.928), (26.65, 0.886), (24.68, 0.826), (33.84, 0.900))),
    _restorer("restorer-small", "pretrained_restorer_small",
              ", small and fast (the diffusion models refine its fill): "
              "FFCUNet(base 24, blocks 4)", (20, 3),
              {"steps": 8827, "train_minutes": 80, "hardware": "2 CPU cores"},
              ((26.39, 0.876), (28.49, 0.926), (26.41, 0.883), (24.38, 0.822), (33.59, 0.898))),
    Weights(
        name="detector",
        file="detector.pt",
        task="blind restoration: DualDecoderUNet(base 16, depth 4), model(image) -> (image, P(damage)); trained on "
             "damage painted in as exposed plaster (flake-shaped blobs), beside intact pale paint (decoys), then "
             "photographed (a slight blur and a JPEG round trip, so that the damage carries the camera's fingerprint "
             "too)",
        data=f"{POOL} and 1,600 patches of 200 procedural murals, together",
        command="murallab train --config configs/pretrained_detector.yaml --data ../shared/murals_pool/train "
                "--out RUN && murallab export RUN/best.pt murallab/weights/detector.pt",
        meta={"steps": 1647, "train_minutes": 37, "hardware": "1 CPU thread of a 2-core machine",
              # chosen on validation data (metrics.choose_threshold): painted damage on one 128 px patch of each
              # training mural (bench/restoration.py --detector-checkpoint pretrained:detector)
              "threshold": 0.3,
              "scores": {
                  "painted_damage_validation_iou": 0.734,
                  # painted damage on 2 patches of each of the pool's 42 held-out murals, photographed and sharp
                  "heldout_painted_photographed_iou": 0.729,
                  "heldout_painted_sharp_iou": 0.793,
                  # real flaking on bodhisattva_damaged.png against its hand-labelled mask (issue 14's bar: 0.45)
                  "bodhisattva_iou": 0.326,
                  "bodhisattva_f1": 0.492,
              }},
    ),
    _diffusion(
        "diffusion-64", "diffusion_64",
        task="diffusion inpainting with a known mask at 64 px: DiffusionRestorer(scales [64], base 32, refine "
             "'pretrained:restorer-small'), a TimeUNet conditioned on the masked image, its holes filled by the small "
             "restorer (frozen, saved inside this file), and the mask, that predicts a correction of x0; "
             "model.sample(known, mask, sampler='ddim'|'ddpm'|'repaint') (RePaint with the condition hidden: 20 % "
             "of its training samples hid it, so it is also an unconditional model; unconditional-64 is one only)",
        meta={"steps": 2740, "train_minutes": 52, "scores": {
            # python bench/diffusion.py: 84 64 px patches of the pool's 42 held-out murals, random-walk holes of
            # 10-40 %; (hole PSNR dB, hole SSIM) per sampler (model calls), the restorer it refines, OpenCV Telea
            "pool_heldout_64px_hole": {"DDIM-50": (21.70, 0.730), "mean of 10 DDIM-5": (23.77, 0.778),
                                       "one step": (23.84, 0.777), "DDPM-50": (21.31, 0.721),
                                       "RePaint 50/5/5, condition hidden (230 calls)": (17.84, 0.578),
                                       "DDIM-50, condition hidden": (11.12, 0.234),
                                       "restorer (its fill)": (24.03, 0.786), "telea": (22.04, 0.711)}}}),
    _diffusion(
        "unconditional-64", "unconditional_64",
        task="unconditional diffusion at 64 px for RePaint: DiffusionRestorer(scales [64], base 32, cond_drop 1, "
             "prediction 'eps'), a TimeUNet that predicts the noise and never sees a mask or a known pixel; "
             "model.sample(known, mask) (sampler "
             "'repaint': the known pixels, noised to each step, pasted into x_t, with resampling jumps)",
        meta={"steps": 2740, "train_minutes": 39, "scores": {
            # as diffusion-64's (the x0-prediction model shipped before it: RePaint 50/5/5 17.66 / 0.588)
            "pool_heldout_64px_hole": {"RePaint 50/5/5 (230 calls)": (21.70, 0.708), "telea": (22.04, 0.711)}}}),
    _diffusion(
        "diffumural-64", "diffumural_64",
        task="DiffuMural-lite at 64 px: DiffusionRestorer(scales [32, 64], base 32, refine "
             "'pretrained:restorer-small', coarse_steps 5), two TimeUNets restoring coarse to fine, each conditioned "
             "on the restorer-filled "
             "masked image, the mask, the damage contour and the coarser result (in training the 32 px network's "
             "own sample), trained with the cycle-consistency term; model.sample(known, mask) (sampler "
             "'multiscale', DDIM at each scale)",
        meta={"steps": 1644, "train_minutes": 51, "scores": {
            # as diffusion-64's: DDIM at each scale, 50 calls in all (coarse + fine)
            "pool_heldout_64px_hole": {"multi-scale 25+25": (20.89, 0.686), "multi-scale 49+1": (23.78, 0.775),
                                       "multi-scale 45+5": (22.32, 0.722),
                                       "multi-scale 5+45": (20.41, 0.676),
                                       "mean of 5 multi-scale 5+5": (23.18, 0.757), "telea": (22.04, 0.711)}}}),
)}


def weights_path(name_or_path) -> Path:
    """The file behind ``pretrained:NAME`` (a one-line error for an unknown or missing one); any other path as is."""
    text = str(name_or_path)
    if not text.startswith(PREFIX):
        return Path(name_or_path)
    name = text[len(PREFIX):]
    if name not in WEIGHTS:
        raise ValueError(f"{text}: no such pretrained weights; the kit ships "
                         + ", ".join(PREFIX + n for n in WEIGHTS))
    path = WEIGHTS[name].path
    if not path.is_file():
        raise FileNotFoundError(f"{PREFIX}{name} should be at {path}, which is missing: reinstall murallab, or make "
                                f"it with: {WEIGHTS[name].command}")
    return path


def load_pretrained(name: str, device="cpu"):
    """The shipped network ``name`` (see ``WEIGHTS``) in eval mode, fp32, on ``device``."""
    from .train.checkpoint import load_model

    return load_model(weights_path(PREFIX + name), device)[0]


def export(checkpoint, dest, *, half: bool = True) -> Path:
    """Write the network of a training checkpoint as a weights file: its ``state_dict`` (fp16 floats when ``half``),
    how to rebuild it, and its step count; no optimiser state. Returns ``dest``."""
    from .train.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(checkpoint)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    config = ckpt.get("config") or {}
    if "model" not in config:
        raise ValueError(f"{checkpoint} does not say which network it holds (config['model'] is missing)")
    progress = ckpt.get("progress") or {}
    return save_checkpoint(dest, model=state, config={k: config[k] for k in ("name", "model") if k in config},
                           progress={k: progress[k] for k in ("step", "best", "best_epoch") if k in progress})
