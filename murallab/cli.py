"""The ``murallab`` command line: ``murallab train | restore | detect | evaluate | sweep``.

Data preparation lives in ``data_scripts/`` (``make_patches.py``, ``check_dataset.py``).
"""

from __future__ import annotations

import argparse
import sys

#: subcommand -> (one-line help, the course step that delivers it)
COMMANDS = {
    "train": ("train a restoration model from a configs/*.yaml preset", "phased training (notebook 04)"),
    "restore": ("restore a mural of any size with a trained checkpoint", "phased training (notebook 04)"),
    "detect": ("predict the damage mask of a mural (blind restoration)", "blind restoration (notebook 05)"),
    "evaluate": ("score restored images against ground truth (PSNR, SSIM, hole-only)", "loss design (notebook 03)"),
    "sweep": ("run a notebook over a parameter grid with papermill", "evaluation (notebook 07)"),
}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="murallab", description="Restore damaged Dunhuang murals with deep learning.")
    from murallab import __version__
    ap.add_argument("--version", action="version", version=f"murallab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for name, (text, _) in COMMANDS.items():
        sub.add_parser(name, help=text, description=text)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    print(f"murallab {args.command}: not available in this version yet; it arrives with "
          f"{COMMANDS[args.command][1]}.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
