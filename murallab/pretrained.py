"""The kit's own pretrained weights, in torchvision's style: a registry whose entries carry structured metadata.

The course runs offline, so it ships its weights in ``murallab/weights/`` (fp16, a few MB), trained by the kit's
own ``murallab train`` on procedural murals and a pool of real mural photographs (docs/MODEL_CARD.md)::

    from murallab.models import load_pretrained
    from murallab.pretrained import WEIGHTS
    model = load_pretrained("restorer")              # an FFCUNet in eval mode, fp32
    WEIGHTS["restorer"].architecture                 # {"name": "FFCUNet", "base": 48, "blocks": 6}
    WEIGHTS["restorer"].metrics["pool_heldout"]      # {"psnr": 26.66, "ssim": 0.879}; BENCHMARKS says how measured
    WEIGHTS["restorer"].recipe.command               # how it was made
    WEIGHTS["detector"].threshold                    # the detector's operating threshold, 0.3

Wherever a checkpoint path is taken, ``pretrained:NAME`` names one of them::

    murallab restore photo.jpg --mask damage.png --mask-hole-value 255 --checkpoint pretrained:restorer -o out.png
    init: pretrained:restorer                        # a config that fine-tunes it (configs/finetune_restorer.yaml)

A weights file is a checkpoint like any other (``murallab.checkpoint.load_checkpoint`` reads it,
``weights_only=True``): ``{"model": fp16 state_dict, "config": {"model": {...}}, "progress": {"step": ...}}``,
written by ``murallab.models.export``. This module is metadata only: it imports no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PREFIX", "Recipe", "Weights", "WEIGHTS", "BENCHMARKS", "BASELINES", "weights_path", "entry"]

PREFIX = "pretrained:"
WEIGHTS_DIR = Path(__file__).parent / "weights"
POOL = ("388 photographs of Dunhuang cave murals (349 train, 39 validate; the train/ folder of the kit's real-mural "
        "pool: public research photographs from two GitHub repositories, deduplicated; not redistributed)")

#: how each ``Weights.metrics`` key was measured
BENCHMARKS = {
    "pool_heldout": "bench/restoration.py --checkpoint pretrained:NAME: 200 held-out 256 px patches of 45 murals never "
                    "trained on, random-walk holes of 10-40 %; PSNR (dB) and SSIM of the whole patch",
    "pool_heldout_10-20": "the same patches with 10-20 % holes",
    "pool_heldout_20-30": "the same patches with 20-30 % holes",
    "pool_heldout_30-40": "the same patches with 30-40 % holes",
    "pool_heldout_self_ensemble": "pool_heldout with the flip self-ensemble (bench/restoration.py --self-ensemble)",
    "pool_heldout_self_ensemble_10-20": "the self-ensemble on the patches with 10-20 % holes",
    "pool_heldout_self_ensemble_20-30": "the self-ensemble on the patches with 20-30 % holes",
    "pool_heldout_self_ensemble_30-40": "the self-ensemble on the patches with 30-40 % holes",
    "procedural_192px": "notebook 07 at its defaults: 40 procedural 192 px patches, holes 1-60 %",
    "sources_left_out_gain": "bench/restoration.py --split sources --checkpoint pretrained:NAME: the gain over Telea "
                             "(PSNR dB, SSIM) averaged over the three sources the restorers never trained on (the "
                             "pool's held-out faces and scans, the walls of ../shared/murals); 256 px patches, "
                             "random-walk holes of 10-40 %",
    "walls_gain": "the same benchmark on the walls alone: the gain over Telea (PSNR dB, SSIM)",
    "painted_validation": "photographed painted damage on one 128 px patch of each training mural (where the "
                          "threshold was chosen); IoU of the detected damage",
    "painted_heldout_photographed": "painted damage on 2 patches of each of the pool's 42 held-out murals, "
                                    "photographed; IoU",
    "painted_heldout_sharp": "the same painted damage, not photographed; IoU",
    "procedural_notebook05": "painted damage on notebook 05's procedural validation patches, at the threshold "
                             "chosen on the other half (0.2); IoU",
    "bodhisattva": "real flaking on bodhisattva_damaged.png against its hand-labelled mask; IoU and F1",
    "pool_heldout_64px": "bench/diffusion.py: 84 64 px patches of the pool's 42 held-out murals, random-walk holes of "
                         "10-40 %; hole PSNR (dB), hole SSIM and model calls, per sampler",
}

#: the same benchmarks scored by methods without weights
BASELINES = {
    "telea": {"pool_heldout": {"psnr": 24.63, "ssim": 0.856}, "pool_heldout_10-20": {"psnr": 26.70, "ssim": 0.913},
              "pool_heldout_20-30": {"psnr": 24.60, "ssim": 0.863}, "pool_heldout_30-40": {"psnr": 22.70, "ssim": 0.796},
              "procedural_192px": {"psnr": 31.69, "ssim": 0.893},
              "pool_heldout_64px": {"hole_psnr": 22.04, "hole_ssim": 0.711, "calls": 0}},
    "push_pull": {"pool_heldout": {"psnr": 24.95, "ssim": 0.855}, "procedural_192px": {"psnr": 31.77, "ssim": 0.894},
                  "pool_heldout_10-20": {"psnr": 26.94, "ssim": 0.912},
                  "pool_heldout_20-30": {"psnr": 24.94, "ssim": 0.862},
                  "pool_heldout_30-40": {"psnr": 23.08, "ssim": 0.795}},
    "mean_colour": {"pool_heldout_64px": {"hole_psnr": 16.29, "hole_ssim": 0.409, "calls": 0}},
}


@dataclass(frozen=True)
class Recipe:
    """How a weights file was made: ``murallab train --config configs/{config}.yaml`` on ``data``, ``steps``
    optimiser steps in ``minutes`` on ``hardware``, then ``murallab export``."""

    config: str
    data: str
    steps: int
    minutes: float
    hardware: str

    def command(self, name: str) -> str:
        return (f"murallab train --config configs/{self.config}.yaml --data ../shared/murals_pool/train --out RUN "
                f"&& murallab export RUN/best.pt murallab/weights/{name}.pt")


@dataclass(frozen=True)
class Weights:
    """One set of shipped weights.

    name: what ``pretrained:NAME`` and ``murallab.models.load_pretrained`` call it; file: in ``murallab/weights/``;
    architecture: the network, as ``murallab.models.build_model`` arguments (``{"name": class, **arguments}``);
    summary: what the network does and how it is called, in words; recipe: how it was trained;
    metrics: benchmark name (a ``BENCHMARKS`` key, then the sampler for a diffusion model) -> metric name ->
    value; threshold: a blind network's operating
    threshold on P(damage) (None for other networks).
    """

    name: str
    architecture: dict
    summary: str
    recipe: Recipe
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    threshold: float | None = None

    @property
    def file(self) -> str:
        return f"{self.name}.pt"

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file

    @property
    def command(self) -> str:
        return self.recipe.command(self.name)


def _psnr_ssim(**scores: tuple[float, float]) -> dict[str, dict[str, float]]:
    return {k.replace("_to_", "-"): {"psnr": p, "ssim": s} for k, (p, s) in scores.items()}


def _hole(psnr: float, ssim: float, calls: int) -> dict[str, float]:
    return {"hole_psnr": psnr, "hole_ssim": ssim, "calls": calls}


_RESTORER_DATA = (f"1,600 patches of 200 procedural murals (one epoch), then {POOL}, then both together")
_DIFFUSION_DATA = f"64 px patches (zoom 0.25-1) of {POOL} and of 200 procedural murals, together"
_SMALL = {"name": "FFCUNet", "base": 24, "blocks": 4}  # the restorer whose fill the diffusion models refine

WEIGHTS: dict[str, Weights] = {w.name: w for w in (
    Weights(
        name="restorer", architecture={"name": "FFCUNet", "base": 48, "blocks": 6},
        summary="inpainting with a known mask: FFCUNet(base 48, blocks 6), model(masked, mask) -> image; it refines "
                "the push-pull fill with fast Fourier convolutions (murallab/nn/ffc_unet.py)",
        recipe=Recipe("pretrained_restorer", _RESTORER_DATA, 13164, 115,
                      "2 CPU cores (bf16 autocast, channels-last, AMX)"),
        metrics=_psnr_ssim(pool_heldout=(26.66, 0.879), pool_heldout_10_to_20=(28.78, 0.928),
                           pool_heldout_20_to_30=(26.65, 0.886), pool_heldout_30_to_40=(24.68, 0.826),
                           pool_heldout_self_ensemble=(26.75, 0.880),
                           pool_heldout_self_ensemble_10_to_20=(28.85, 0.929),
                           pool_heldout_self_ensemble_20_to_30=(26.76, 0.887),
                           pool_heldout_self_ensemble_30_to_40=(24.76, 0.828),
                           procedural_192px=(33.30, 0.906), sources_left_out_gain=(1.61, 0.021),
                           walls_gain=(1.31, 0.020))),
    Weights(
        name="restorer-small", architecture=_SMALL,
        summary="inpainting with a known mask, small and fast (the diffusion models refine its fill): "
                "FFCUNet(base 24, blocks 4), model(masked, mask) -> image",
        recipe=Recipe("pretrained_restorer_small", _RESTORER_DATA, 8827, 80, "2 CPU cores"),
        metrics={**_psnr_ssim(pool_heldout=(26.39, 0.876), pool_heldout_10_to_20=(28.49, 0.926),
                              pool_heldout_20_to_30=(26.41, 0.883), pool_heldout_30_to_40=(24.38, 0.822),
                              procedural_192px=(32.87, 0.903), sources_left_out_gain=(1.32, 0.017),
                              walls_gain=(1.06, 0.017)),
                 "pool_heldout_64px": _hole(24.03, 0.786, 1)}),
    Weights(
        name="detector", architecture={"name": "DualDecoderUNet", "base": 16, "depth": 4},
        summary="blind restoration: DualDecoderUNet(base 16, depth 4), model(image) -> (image, P(damage)); trained on "
                "damage painted in as exposed plaster (flake-shaped blobs), beside intact pale paint (decoys), then "
                "photographed (a slight blur and a JPEG round trip, so that the damage carries the camera's "
                "fingerprint too)",
        recipe=Recipe("pretrained_detector", f"{POOL} and 1,600 patches of 200 procedural murals, together", 1647, 37,
                      "1 CPU thread of a 2-core machine"),
        # chosen on validation data (metrics.choose_threshold), painted_validation's patches
        threshold=0.3,
        metrics={"painted_validation": {"iou": 0.734}, "painted_heldout_photographed": {"iou": 0.729},
                 "painted_heldout_sharp": {"iou": 0.793}, "procedural_notebook05": {"iou": 0.62},
                 "bodhisattva": {"iou": 0.326, "f1": 0.492}}),
    Weights(
        name="diffusion-64",
        architecture={"name": "DiffusionRestorer", "scales": [64], "base": 32, "mults": [1, 2, 2],
                      "prediction": "x0", "cond_drop": 0.2, "refine": _SMALL},
        summary="diffusion inpainting with a known mask at 64 px: DiffusionRestorer(scales [64], base 32, refining "
                "restorer-small's fill), a TimeUNet conditioned on the masked image, its holes filled by the small "
                "restorer (frozen, saved inside this file), and the mask, that predicts a correction of x0; "
                "restore(model, image, mask, sampler='ddim'|'ddpm'|'repaint') (RePaint with the condition hidden: "
                "20 % of its training samples hid it, so it is also an unconditional model; unconditional-64 is one "
                "only)",
        recipe=Recipe("diffusion_64", _DIFFUSION_DATA, 2740, 52, "1 CPU thread of a 2-core machine"),
        metrics={"pool_heldout_64px DDIM-50": _hole(23.04, 0.740, 50),
                 "pool_heldout_64px mean of 10 DDIM-5": _hole(23.92, 0.780, 50),
                 "pool_heldout_64px one step": _hole(23.84, 0.777, 1),
                 "pool_heldout_64px DDPM-50": _hole(23.08, 0.738, 50),
                 "pool_heldout_64px RePaint 50/5/5, condition hidden": _hole(17.84, 0.578, 230),
                 "pool_heldout_64px DDIM-50, condition hidden": _hole(11.61, 0.239, 50)}),
    Weights(
        name="unconditional-64",
        architecture={"name": "DiffusionRestorer", "scales": [64], "base": 32, "mults": [1, 2, 2],
                      "prediction": "eps", "cond_drop": 1.0},
        summary="unconditional diffusion at 64 px for RePaint: DiffusionRestorer(scales [64], base 32, cond_drop 1, "
                "prediction 'eps'), a TimeUNet that predicts the noise and never sees a mask or a known pixel; "
                "restore(model, image, mask) (sampler 'repaint': the known pixels, noised to each step, pasted into "
                "x_t, with resampling jumps)",
        recipe=Recipe("unconditional_64", _DIFFUSION_DATA, 2740, 39, "1 CPU thread of a 2-core machine"),
        metrics={"pool_heldout_64px RePaint 50/5/5": _hole(21.70, 0.708, 230)}),
    Weights(
        name="diffumural-64",
        architecture={"name": "DiffusionRestorer", "scales": [32, 64], "base": 32, "mults": [1, 2, 2],
                      "prediction": "x0", "cond_drop": 0.2, "refine": _SMALL, "coarse_steps": 5},
        summary="DiffuMural-lite at 64 px: DiffusionRestorer(scales [32, 64], base 32, refining restorer-small's "
                "fill, coarse_steps 5), two TimeUNets restoring coarse to fine, each conditioned on the "
                "restorer-filled masked image, the mask, the damage contour and the coarser result (in training the "
                "32 px network's own sample), trained with the cycle-consistency term; restore(model, image, mask) "
                "(sampler 'multiscale', DDIM at each scale)",
        recipe=Recipe("diffumural_64", _DIFFUSION_DATA, 1644, 51, "1 CPU thread of a 2-core machine"),
        metrics={"pool_heldout_64px multi-scale 25+25": _hole(23.02, 0.731, 50),
                 "pool_heldout_64px multi-scale 49+1": _hole(23.78, 0.775, 50),
                 "pool_heldout_64px multi-scale 45+5": _hole(23.07, 0.734, 50),
                 "pool_heldout_64px multi-scale 5+45": _hole(23.03, 0.732, 50),
                 "pool_heldout_64px mean of 5 multi-scale 5+5": _hole(23.78, 0.772, 50)}),
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


def entry(name_or_path) -> Weights | None:
    """The registry entry of ``pretrained:NAME`` (None for any other path)."""
    text = str(name_or_path)
    return WEIGHTS.get(text[len(PREFIX):]) if text.startswith(PREFIX) else None
