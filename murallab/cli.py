"""The ``murallab`` command line: ``murallab train | restore | detect | evaluate | sweep``.

This file only declares the arguments. Each command runs a function of the library module it belongs to
(``murallab.restore.restore_command``, ...), imported when the command is used. Data preparation lives in
``data_scripts/`` (``make_patches.py``, ``check_dataset.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _tiling_and_device(ap) -> None:
    ap.add_argument("--tile", type=int, default=256, help="tile side in pixels (default 256)")
    ap.add_argument("--overlap", type=int, default=32, help="overlap between tiles in pixels (default 32)")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")


def _train(sub):
    ap = sub.add_parser("train", help="train a restoration model from a configs/*.yaml preset")
    ap.add_argument("--config", required=True, help="a YAML preset, e.g. configs/tiny_cpu.yaml")
    ap.add_argument("--data", help="a folder of mural images, or a DLCV / Kaggle Dunhuang layout "
                                   "(default: procedural murals)")
    ap.add_argument("--out", help="run folder for checkpoints and logs (default: runs/<config name>)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    return "murallab.train.cli:train_command"


def _restore(sub):
    ap = sub.add_parser("restore", help="restore a mural of any size with a trained checkpoint")
    ap.add_argument("image", help="the damaged mural")
    ap.add_argument("--mask", help="its damage mask (not needed with --blind)")
    ap.add_argument("--mask-hole-value", type=int, choices=(0, 255),
                    help="the mask file's convention: 0 if black = hole (DLCV, murallab), 255 if white = hole "
                         "(OpenCV, scikit-image, LaMa); required with --mask")
    ap.add_argument("--checkpoint", required=True, help="a checkpoint written by murallab train")
    ap.add_argument("-o", "--output", required=True, help="where to write the restored image")
    ap.add_argument("--blind", action="store_true",
                    help="no mask: detect the damage with a dual-decoder checkpoint, then restore")
    ap.add_argument("--threshold", type=float, default=0.1, help="damage probability threshold for --blind")
    _tiling_and_device(ap)
    return "murallab.restore:restore_command"


def _detect(sub):
    ap = sub.add_parser("detect", help="predict the damage mask of a mural (blind restoration)")
    ap.add_argument("image", help="the damaged mural")
    ap.add_argument("--checkpoint", required=True, help="a DualDecoderUNet checkpoint written by murallab train")
    ap.add_argument("-o", "--output", required=True, help="where to write the mask (PNG; white = known)")
    ap.add_argument("--threshold", type=float, default=0.1, help="damage probability threshold (default 0.1)")
    _tiling_and_device(ap)
    return "murallab.restore:detect_command"


def _evaluate(sub):
    ap = sub.add_parser("evaluate", help="score restored images against ground truth (PSNR, SSIM, hole-only)")
    ap.add_argument("--gt", required=True, help="folder of ground-truth images")
    ap.add_argument("--pred", required=True, help="folder of restored images, paired with --gt by file name")
    ap.add_argument("--mask", help="folder of masks, paired by name (NNN.png or NNN_mask.png), for hole-only scores")
    ap.add_argument("--mask-hole-value", type=int, choices=(0, 255), default=0,
                    help="the mask files' convention: 0 if black = hole (default; DLCV), 255 if white = hole")
    ap.add_argument("--json", help="also write the scores to this JSON file")
    return "murallab.evaluate:evaluate_command"


def _sweep(sub):
    ap = sub.add_parser("sweep", help="run a notebook over a parameter grid with papermill")
    ap.add_argument("notebook", help="the notebook to run, e.g. notebooks/04_phased_training.ipynb")
    ap.add_argument("--grid", required=True, help="a grid file, e.g. configs/sweeps/loss_ablation.yaml")
    ap.add_argument("--out", required=True, help="sweep folder: one subfolder per run, results.csv, summary.png")
    ap.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    ap.add_argument("--kernel", default="murallab", help="Jupyter kernel (default: murallab)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per notebook cell (default 1800)")
    ap.add_argument("--metric", help="the metrics.json key plotted in summary.png (default: the first number)")
    return "murallab.sweep:sweep_command"


COMMANDS = {"train": _train, "restore": _restore, "detect": _detect, "evaluate": _evaluate, "sweep": _sweep}


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    from murallab import __version__
    ap = argparse.ArgumentParser(prog="murallab", description="Restore damaged Dunhuang murals with deep learning.")
    ap.add_argument("--version", action="version", version=f"murallab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    targets = {name: add(sub) for name, add in COMMANDS.items()}
    return ap, targets


def main(argv=None) -> int:
    ap, targets = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    module, func = targets[args.command].split(":")
    return int(getattr(importlib.import_module(module), func)(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
