"""Score a folder of restored images against ground truth: ``murallab evaluate --gt DIR --pred DIR [--mask DIR]``.

Files are paired by name (``001.png`` with ``001.jpg``; masks also as ``001_mask.png``). For each pair it reports
exact MSE (0-255 scale), PSNR and SSIM over the whole image and, with masks, over the holes only; and the legacy
DLCV-2019 number, which is **not** a mean squared error (see ``murallab.metrics.legacy_dlcv_mse``).

``--json FILE`` writes strict JSON (RFC 8259, readable by every JSON parser): a score that is not a finite number
is written as ``null``. PSNR is ``null`` where the restoration equals the ground truth exactly (MSE 0, so PSNR is
infinite; the table prints ``inf``), and so is a mean PSNR over such an image; hole-only scores are ``null`` for an
image without holes (``nan`` in the table). The file says so itself, under ``"null"``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import metrics
from ._atomic import write_text
from .data import list_images, load_image
from .data.io import load_mask_for

#: a mask marking more of its image as holes is most likely in the other convention
COLUMNS = ("mse", "psnr", "ssim", "mse_hole", "psnr_hole", "ssim_hole", "legacy_dlcv_mse")
LEGACY_NOTE = ("legacy_dlcv_mse: the DLCV-2019 evaluate.py number. It subtracts uint8 arrays, so every pixel "
               "counts d² mod 256: it is at most 255, and an unfilled hole scores about as well as a good "
               "inpainting. It is not an MSE; compare methods by mse/psnr/ssim.")
NULL_NOTE = ("null marks a score that is not a finite number (JSON has no inf or nan): psnr and psnr_hole are null "
             "where the restoration equals the ground truth exactly (MSE 0: PSNR is infinite), and so is their "
             "mean over such an image; "
             "mse_hole, psnr_hole and ssim_hole are null for an image without holes (nothing to score).")


class EvaluationError(ValueError):
    """The folders cannot be scored as given (missing, unpaired or mismatched files)."""


def _by_stem(folder, what: str, strip: str = "") -> dict[str, Path]:
    try:
        files = list_images(folder)
    except FileNotFoundError as e:
        raise EvaluationError(f"--{what}: {e}") from None
    if not files:
        raise EvaluationError(f"--{what}: no images in {folder}")
    out = {}
    for p in files:
        stem = p.stem[: -len(strip)] if strip and p.stem.endswith(strip) else p.stem
        if stem in out:
            raise EvaluationError(f"--{what}: two files for {stem!r}: {out[stem].name} and {p.name}")
        out[stem] = p
    return out


def pair_files(gt_dir, pred_dir, mask_dir=None) -> list[tuple[str, Path, Path, Path | None]]:
    """``(name, gt, pred, mask)`` for every image, paired by file stem; an unpaired file is an error."""
    gt, pred = _by_stem(gt_dir, "gt"), _by_stem(pred_dir, "pred")
    masks = _by_stem(mask_dir, "mask", strip="_mask") if mask_dir else None
    problems = []
    for name in sorted(gt.keys() - pred.keys()):
        problems.append(f"{gt[name].name} has no restored image in {pred_dir}")
    for name in sorted(pred.keys() - gt.keys()):
        problems.append(f"{pred[name].name} has no ground truth in {gt_dir}")
    if masks is not None:
        for name in sorted(gt.keys() - masks.keys()):
            problems.append(f"{gt[name].name} has no mask in {mask_dir} (expected {name}.png or {name}_mask.png)")
    if problems:
        raise EvaluationError("files do not pair up by name:\n  - " + "\n  - ".join(problems))
    return [(n, gt[n], pred[n], masks[n] if masks else None) for n in sorted(gt)]


def evaluate_folders(gt_dir, pred_dir, mask_dir=None, *, mask_hole_value: int = 0) -> dict:
    """``{"images": {name: {metric: value}}, "mean": {metric: value}}``; hole metrics only with masks.

    Means are over images. An image without holes has no hole-only scores (NaN) and is left out of their means;
    an image restored perfectly has PSNR inf, and so then does the mean PSNR.
    """
    rows = {}
    for name, g, p, m in pair_files(gt_dir, pred_dir, mask_dir):
        gt, pred = load_image(g), load_image(p)
        if gt.shape != pred.shape:
            raise EvaluationError(f"{name}: the ground truth {g.name} is {tuple(gt.shape[1:])} (H, W) but the "
                                  f"restored {p.name} is {tuple(pred.shape[1:])}")
        mask = None
        if m is not None:
            mask = load_mask_for(m, gt, hole_value=mask_hole_value, holes_needed=False)[None]
        scores = metrics.scores(pred[None], gt[None], mask)
        rows[name] = {k: float(v[0]) for k, v in scores.items()}
    mean = {}
    for k in COLUMNS:
        values = [r[k] for r in rows.values() if k in r and not math.isnan(r[k])]
        if values:
            mean[k] = sum(values) / len(values)
    return {"images": rows, "mean": mean}


def format_table(result: dict) -> str:
    cols = [c for c in COLUMNS if c in result["mean"]]
    width = max(8, *(len(n) for n in result["images"]))
    lines = [f"{'image':<{width}}" + "".join(f"{c:>17}" for c in cols)]
    for name, row in list(result["images"].items()) + [("mean", result["mean"])]:
        lines.append(f"{name:<{width}}" + "".join(f"{row.get(c, float('nan')):>17.4f}" for c in cols))
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines) + "\n\n" + LEGACY_NOTE


def to_json(result: dict) -> tuple[str, int]:
    """Strict JSON text of :func:`evaluate_folders`' result, and how many scores it wrote as ``null``.

    Non-finite scores (inf PSNR of a perfect restoration, NaN hole scores of an image without holes) become
    ``null``; then ``"null"`` holds :data:`NULL_NOTE`, which says what they mean. ``"note"`` holds the
    legacy-number warning. No ``Infinity``/``NaN`` (which ``json.dumps`` writes by default but strict parsers
    reject) can appear: it is written with ``allow_nan=False``.
    """
    nulls = 0

    def clean(row: dict) -> dict:
        nonlocal nulls
        out = {}
        for k, v in row.items():
            finite = math.isfinite(v)
            nulls += not finite
            out[k] = float(v) if finite else None
        return out

    data = {"images": {name: clean(row) for name, row in result["images"].items()}, "mean": clean(result["mean"]),
            "note": LEGACY_NOTE}
    if nulls:
        data["null"] = NULL_NOTE
    return json.dumps(data, indent=2, allow_nan=False), nulls


def write_json(result: dict, path) -> int:
    """Write :func:`to_json` of ``result`` to ``path`` atomically; returns the number of ``null`` scores."""
    text, nulls = to_json(result)
    write_text(path, text)
    return nulls
