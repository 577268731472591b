"""The ``murallab`` command line: ``murallab train | export | restore | detect | evaluate | sweep``.

Each command is a thin layer over the library: it parses its arguments, calls ``murallab.train.fit``,
``murallab.restore.restore`` and so on, and prints what happened. Every command runs inside one error wrapper
(``run``): a problem with what the user gave (a missing file, a bad config key, a mask in the other convention, a
diverging run) is printed as one line, ``murallab COMMAND: error: ...``, with exit status 2; Ctrl-C exits 130.
Set ``MURALLAB_TRACEBACK=1`` to see the full traceback instead. Data preparation lives in ``data_scripts/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import yaml

from ._atomic import check_output
from .diffusion.restorer import SAMPLERS

#: file formats that store a mask exactly (JPEG would blur its edges into grey)
LOSSLESS_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")


class UsageError(Exception):
    """A problem with what the user gave a command: printed as one line, exit status 2."""


#: what a command reports as one line (exit 2) rather than a traceback: the library raises these for bad input, and
#: ModuleNotFoundError for a tool that is not installed (``murallab sweep`` without the ``course`` extra)
USER_ERRORS = (UsageError, ValueError, OSError, FloatingPointError, ModuleNotFoundError, yaml.YAMLError)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def run(command: str, body: Callable, args) -> int:
    """Run ``body(args)`` for ``murallab COMMAND``: its exit status (0 when it returns None), 2 after a one-line
    error on stderr for bad input (``USER_ERRORS``), 130 after Ctrl-C. Warnings are printed as one line each."""
    def one_line_warning(message, category, *_, **__):  # not Python's "file:line: Category: ..." and source line
        print(f"murallab {command}: warning: {_one_line(message)}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            return int(body(args) or 0)
    except KeyboardInterrupt as e:  # a sweep says what it stopped and where its results are
        print(f"murallab {command}: interrupted" + (f": {_one_line(e)}" if str(e) else ""), file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if os.environ.get("MURALLAB_TRACEBACK"):
            raise
        print(f"murallab {command}: error: {_one_line(e)}", file=sys.stderr)
        return 2


def _check_device(name):
    """``murallab.device(name)``, checked before any work: its error as one line in the command's own terms."""
    from ._device import device as pick_device

    try:
        return pick_device(name)
    except RuntimeError as e:
        raise UsageError(_one_line(e).replace("device='cpu' (or None to choose automatically)",
                                              "--device cpu (or leave --device out to choose automatically)")) from None


# --- murallab train ------------------------------------------------------------------------------------------------

def _train_args(sub) -> None:
    ap = sub.add_parser("train", help="train a restoration model from a configs/*.yaml preset")
    ap.add_argument("--config", required=True, help="a YAML preset, e.g. configs/tiny_cpu.yaml")
    ap.add_argument("--data", nargs="+", help="a folder of mural images (or several: one per source), or a DLCV / "
                                              "Kaggle Dunhuang layout (default: procedural murals)")
    ap.add_argument("--hole-masks", help="a folder of real damage masks (255 = damage): a share of the holes "
                                         "(data.real_holes, default half) are crops of them")
    ap.add_argument("--out", help="run folder for checkpoints and logs (default: runs/<config name>)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")


def train(args) -> None:
    from .train import build_run, fit, load_config

    cfg = load_config(args.config)
    if args.device:
        cfg["train"]["device"] = args.device
    if args.hole_masks:
        cfg["data"]["hole_masks"] = args.hole_masks
    _check_device(cfg["train"].get("device"))
    folders = {f"data folder {d}": d for d in args.data or []}
    out = check_output(args.out or Path("runs") / cfg["name"], "--out", {"config file": args.config, **folders},
                       folder=True)
    run_ = build_run(cfg, args.data[0] if args.data and len(args.data) == 1 else args.data)
    result = fit(run_["model"], run_["loss"], run_["train_set"], run_["val_set"], run_["phases"], run_["train"], out,
                 resume=args.resume, config={k: cfg[k] for k in ("name", "model", "loss", "data")})
    summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in result.items() if k != "history"}
    print(json.dumps(summary, indent=2))


def _export_args(sub) -> None:
    ap = sub.add_parser("export", help="write a trained checkpoint's network as a small weights file (fp16)")
    ap.add_argument("checkpoint", help="a checkpoint written by murallab train, e.g. runs/NAME/best.pt")
    ap.add_argument("output", help="the weights file to write, e.g. murallab/weights/restorer.pt")
    ap.add_argument("--fp32", action="store_true", help="keep 32-bit floats (default: 16-bit, half the size)")


def export(args) -> None:
    from .models import export as export_weights

    if Path(args.output).resolve() == Path(args.checkpoint).resolve():
        raise UsageError(f"the output {args.output} is the checkpoint itself; write the weights to a new file")
    check_output(args.output, "output", {"checkpoint": args.checkpoint})
    path = export_weights(args.checkpoint, args.output, half=not args.fp32)
    print(f"{args.checkpoint} -> {path} ({path.stat().st_size / 2**20:.1f} MB)")


# --- murallab restore / detect -------------------------------------------------------------------------------------

def _tiling_and_device(ap) -> None:
    ap.add_argument("--tile", type=int, help="tile side in pixels (default 256; a diffusion model's own size)")
    ap.add_argument("--overlap", type=int, help="overlap between tiles in pixels (default 32; a quarter of a "
                                                "diffusion model's tile)")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")


def _restore_args(sub) -> None:
    ap = sub.add_parser("restore", help="restore a mural of any size with a trained checkpoint")
    ap.add_argument("image", help="the damaged mural")
    ap.add_argument("--mask", help="its damage mask (not needed with --blind)")
    ap.add_argument("--mask-hole-value", type=int, choices=(0, 255),
                    help="the mask file's convention: 0 if black = hole (DLCV, murallab), 255 if white = hole "
                         "(OpenCV, scikit-image, LaMa); required with --mask. A mask saved with values 0 and 1 "
                         "reads 1 as white")
    ap.add_argument("--checkpoint", required=True, help="a checkpoint written by murallab train, or the kit's own "
                                                        "weights: pretrained:restorer (or pretrained:detector with "
                                                        "--blind)")
    ap.add_argument("-o", "--output", required=True, help="where to write the restored image")
    ap.add_argument("--blind", action="store_true",
                    help="no mask: detect the damage with a dual-decoder checkpoint, then restore")
    ap.add_argument("--threshold", type=float,
                    help="damage probability threshold for --blind (default: the checkpoint's own, e.g. the one "
                         "chosen on validation data for pretrained:detector)")
    ap.add_argument("--sampler", choices=SAMPLERS,
                    help="a diffusion checkpoint's sampler (default ddim; multiscale for a multi-scale model, "
                         "repaint for an unconditional one)")
    ap.add_argument("--steps", type=int, nargs="+", help="a diffusion sampler's model calls (DDIM, DDPM; per scale "
                    "for multiscale, or one count per scale, coarse first: --steps 49 1) or inference steps "
                    "(RePaint); default 50")
    ap.add_argument("--seed", type=int, default=0, help="a diffusion sampler's seed (default 0)")
    _tiling_and_device(ap)


def _detect_args(sub) -> None:
    ap = sub.add_parser("detect", help="predict the damage mask of a mural (blind restoration)")
    ap.add_argument("image", help="the damaged mural")
    ap.add_argument("--checkpoint", required=True, help="a DualDecoderUNet checkpoint written by murallab train, or "
                                                        "the kit's own: pretrained:detector")
    ap.add_argument("-o", "--output", required=True, help="where to write the mask (PNG; white = known)")
    ap.add_argument("--threshold", type=float,
                    help="damage probability threshold (default: the checkpoint's own, e.g. the one chosen on "
                         "validation data for pretrained:detector)")
    _tiling_and_device(ap)


def _check_image_args(args, *, output_suffixes, what):
    """Tiling, output path, threshold and device, checked before anything is loaded; returns the device."""
    out = Path(args.output)
    if out.suffix.lower() not in output_suffixes:
        raise UsageError(f"cannot tell the format of --output {out}: {what}, e.g. {out.with_suffix('.png')}")
    check_output(out, "--output", {"input image": args.image, "mask": getattr(args, "mask", None),
                                   "checkpoint": args.checkpoint})
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold is a damage probability in [0, 1], got {args.threshold}")
    return _check_device(args.device)


def _load_network(path, device, *, blind: bool, instead: str):
    """The checkpoint's network, checked to be the kind the command needs (``blind``: it finds the damage itself)."""
    from .models import load_model
    from .restore import task_of

    try:
        model, _ = load_model(path, device)
    except FileNotFoundError as e:
        raise UsageError(f"{e} (give the .pt file written by murallab train)") from None
    except (ValueError, TypeError, KeyError, RuntimeError) as e:
        # ValueError: load_checkpoint's own message, or an unknown network; the others come from a file torch reads
        # as something else, or from a state_dict that does not fit the network the config names.
        msg = _one_line(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {_one_line(e)}"
        raise UsageError(msg if str(path) in msg else f"cannot load the checkpoint {path}: it is not a murallab "
                                                      f"checkpoint, or its weights do not fit the network its "
                                                      f"config names ({msg})") from None
    if (task_of(model) == "blind") != blind:
        raise UsageError(f"the checkpoint {path} holds a {type(model).__name__}; {instead}")
    return model


def _tiling(args, model) -> None:
    """Fill in ``--tile`` and ``--overlap`` for ``model`` (``restore.default_tiling``), checked."""
    from .restore import default_tiling

    try:
        args.tile, args.overlap = default_tiling(model, args.tile, args.overlap)
    except ValueError as e:
        raise UsageError(f"--tile {args.tile} --overlap {args.overlap}: {e}") from None


def _tiled_run(fn, image, args):
    """``fn()`` with seconds and the tile count; out of memory becomes advice on ``--tile``."""
    import torch

    from .tiling import count_tiles

    start = time.perf_counter()
    try:
        result = fn()
    except torch.OutOfMemoryError:
        raise UsageError(f"out of memory with --tile {args.tile}; try a smaller --tile (peak memory grows with its "
                         f"square)") from None
    tiles = count_tiles(*image.shape[-2:], args.tile, args.overlap)
    return result, f"{tiles} tiles of {args.tile} px, {time.perf_counter() - start:.1f} s"


def _sampling(args, model) -> dict | None:
    """A diffusion model's ``sample`` arguments from --sampler, --steps and --seed (None for other networks); the
    model's ``sample`` refuses a sampler it cannot run."""
    if model.task != "diffusion":
        given = [f"--{k}" for k in ("sampler", "steps") if getattr(args, k) is not None]
        if given:
            verb = "is" if len(given) == 1 else "are"
            raise UsageError(f"{' and '.join(given)} {verb} for a diffusion checkpoint; the {type(model).__name__} in "
                             f"{args.checkpoint} restores in one pass")
        return None
    sampler = args.sampler or model.default_sampler
    steps = [50] if args.steps is None else args.steps
    limit = model.schedule.num_steps
    if not all(1 <= n <= limit for n in steps):
        raise UsageError(f"--steps must be between 1 and the model's {limit} diffusion steps, got "
                         f"{' '.join(map(str, steps))}")
    if len(steps) > 1 and (sampler != "multiscale" or len(steps) != len(model.scales)):
        raise UsageError(f"several --steps are one count per scale of a multi-scale model ({args.checkpoint} has "
                         f"scales {model.scales}); got {' '.join(map(str, steps))}")
    return {"sampler": sampler, "steps": steps[0] if len(steps) == 1 else steps, "seed": args.seed}


def restore(args) -> None:
    from .data.io import IMAGE_SUFFIXES, load_image, load_mask_for, save_image
    from .data.masks import hole_ratio
    from .restore import restore as restore_image

    if args.blind and args.mask is not None:
        raise UsageError("--blind detects the damage itself; drop --mask (or drop --blind to use your mask)")
    if not args.blind and args.threshold is not None:
        raise UsageError("--threshold is the damage threshold of --blind; with --mask the mask says where the holes are")
    if not args.blind and args.mask is None:
        raise UsageError("give the damage mask with --mask MASK --mask-hole-value 0|255, or use --blind with a "
                         "DualDecoderUNet checkpoint to detect the damage")
    if not args.blind and args.mask_hole_value is None:
        raise UsageError("--mask-hole-value is required with --mask: 0 if black = hole (DLCV, murallab's own "
                         "masks), 255 if white = hole (OpenCV, scikit-image, LaMa). murallab reads masks as "
                         "1 = known, 0 = hole")
    device = _check_image_args(args, output_suffixes=IMAGE_SUFFIXES,
                               what=f"give it one of the suffixes {', '.join(IMAGE_SUFFIXES)}")
    if args.blind:
        instead = ("--blind needs a DualDecoderUNet checkpoint (it detects the damage itself); this network needs a "
                   "mask: drop --blind and give --mask MASK --mask-hole-value 0|255")
    else:
        instead = ("a blind-restoration network that finds the damage itself and takes no mask: use --blind "
                   "(without --mask), or a PConvUNet / UNet checkpoint to restore with your mask")
    model = _load_network(args.checkpoint, device, blind=args.blind, instead=instead)
    _tiling(args, model)
    sampling = _sampling(args, model)
    image = load_image(args.image)
    given = None if args.blind else load_mask_for(args.mask, image, hole_value=args.mask_hole_value)
    (restored, mask), took = _tiled_run(lambda: restore_image(
        model, image, given, threshold=args.threshold, tile=args.tile, overlap=args.overlap, progress=True,
        return_mask=True, **(sampling or {})), image, args)
    source = f"detected, threshold {model.threshold if args.threshold is None else args.threshold}" if args.blind \
        else f"from {args.mask}"
    if sampling:
        steps = sampling["steps"]
        steps = "+".join(map(str, steps)) if isinstance(steps, list) else steps
        source += f", {sampling['sampler']} {steps} steps, seed {sampling['seed']}"
    save_image(restored, args.output)
    h, w = image.shape[-2:]
    print(f"restored {w}×{h} image: {float(hole_ratio(mask)):.1%} holes ({source}), {took} -> {args.output}")


def detect(args) -> None:
    from .data.io import load_image, save_mask
    from .data.masks import hole_ratio
    from .restore import detect as detect_damage

    device = _check_image_args(args, output_suffixes=LOSSLESS_SUFFIXES,
                               what=f"a mask must be stored losslessly: use {', '.join(LOSSLESS_SUFFIXES)}")
    model = _load_network(args.checkpoint, device, blind=True,
                          instead="detect needs a DualDecoderUNet checkpoint (the blind-restoration network with a "
                                  "damage decoder); with this network restore with a known mask instead: "
                                  "murallab restore IMAGE --mask MASK --mask-hole-value 0|255")
    _tiling(args, model)
    image = load_image(args.image)
    damage, took = _tiled_run(lambda: detect_damage(model, image, tile=args.tile, overlap=args.overlap,
                                                    progress=True), image, args)
    args.threshold = model.threshold if args.threshold is None else args.threshold
    known = (damage < args.threshold).float()
    save_mask(known, args.output)
    h, w = image.shape[-2:]
    print(f"detected {float(hole_ratio(known)):.1%} damaged pixels in a {w}×{h} image (threshold {args.threshold}), "
          f"{took} -> {args.output} (white = known, black = damaged)")


# --- murallab evaluate / sweep -------------------------------------------------------------------------------------

def _evaluate_args(sub) -> None:
    ap = sub.add_parser("evaluate", help="score restored images against ground truth (PSNR, SSIM, hole-only)")
    ap.add_argument("--gt", required=True, help="folder of ground-truth images")
    ap.add_argument("--pred", required=True, help="folder of restored images, paired with --gt by file name")
    ap.add_argument("--mask", help="folder of masks, paired by name (NNN.png or NNN_mask.png), for hole-only scores")
    ap.add_argument("--mask-hole-value", type=int, choices=(0, 255), default=0,
                    help="the mask files' convention: 0 if black = hole (default; DLCV), 255 if white = hole")
    ap.add_argument("--json", help="also write the scores to this JSON file")


def evaluate(args) -> None:
    from .evaluate import NULL_NOTE, evaluate_folders, format_table, write_json

    if args.json:
        folders = {"ground-truth": args.gt, "restored": args.pred, "mask": args.mask}
        check_output(args.json, "--json", {f"{what} image {p.name}": p for what, folder in folders.items()
                                           if folder and Path(folder).is_dir() for p in Path(folder).iterdir()})
    result = evaluate_folders(args.gt, args.pred, args.mask, mask_hole_value=args.mask_hole_value)
    print(format_table(result))
    if args.json:
        nulls = write_json(result, args.json)
        print(f"\nscores written to {args.json}")
        if nulls:
            print(f"{nulls} score(s) in it are null. {NULL_NOTE}")


def _sweep_args(sub) -> None:
    ap = sub.add_parser("sweep", help="run a notebook over a parameter grid with papermill")
    ap.add_argument("notebook", help="the notebook to run, e.g. notebooks/04_phased_training.ipynb")
    ap.add_argument("--grid", required=True, help="a grid file, e.g. configs/sweeps/loss_ablation.yaml")
    ap.add_argument("--out", required=True, help="sweep folder: one subfolder per run, results.csv, summary.png")
    ap.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    ap.add_argument("--kernel", default="murallab", help="Jupyter kernel (default: murallab)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell (default 1800)")
    ap.add_argument("--metric", help="the metrics.json key plotted in summary.png (default: the first number)")


def sweep(args) -> int:
    from .sweep import sweep as run_sweep

    if args.jobs < 1:
        raise UsageError(f"--jobs is the number of notebooks run at the same time, at least 1; got {args.jobs}")
    check_output(args.out, "--out", {"notebook": args.notebook, "grid file": args.grid}, folder=True)
    rows = run_sweep(args.notebook, args.grid, args.out, jobs=args.jobs, kernel=args.kernel, timeout=args.timeout,
                     metric=args.metric)
    failed = [r["run"] for r in rows if r["status"] != "done"]
    print(f"results: {Path(args.out) / 'results.csv'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


#: name -> (declare the arguments, run the command)
COMMANDS = {"train": (_train_args, train), "export": (_export_args, export), "restore": (_restore_args, restore),
            "detect": (_detect_args, detect), "evaluate": (_evaluate_args, evaluate), "sweep": (_sweep_args, sweep)}


def build_parser() -> argparse.ArgumentParser:
    from murallab import __version__
    ap = argparse.ArgumentParser(prog="murallab", description="Restore damaged Dunhuang murals with deep learning.")
    ap.add_argument("--version", action="version", version=f"murallab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for declare, _ in COMMANDS.values():
        declare(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    return run(args.command, COMMANDS[args.command][1], args)


if __name__ == "__main__":
    sys.exit(main())
