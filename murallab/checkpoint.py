"""Checkpoints: ``state_dict``s plus a small JSON-able dict of config and progress, written atomically.

A checkpoint is one ``torch.save`` file holding

    {"model": state_dict, "optimizer": …, "scheduler": …, "scaler": …,   # state_dicts (optional ones may be None)
     "config": {...},      # JSON-able: how to rebuild the model ("model": {"name": "PConvUNet", "layers": 5, ...})
     "progress": {...},    # JSON-able: epoch, step, best metric, ...
     "rng": {...}}         # RNG states (tensors), so a resumed run draws the same numbers

It is written to a temporary file in the same folder and renamed over the old one (``os.replace`` is atomic), so a
run killed mid-write leaves the previous checkpoint intact. It is read with ``torch.load(weights_only=True)``: a
checkpoint can hold only tensors and plain Python data, never code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .._atomic import atomic_path
from ..nn import build_model
from ..pretrained import weights_path


def save_checkpoint(path, **parts) -> Path:
    """Write ``parts`` (see the module docstring) to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(parts, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (``weights_only=True``), with clear errors.

    ``path`` may be ``pretrained:NAME``, one of the kit's shipped weights (``murallab.pretrained``)."""
    path = weights_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable murallab checkpoint (truncated or corrupt file?): {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path} is not a murallab checkpoint: expected a dict with a 'model' state_dict")
    return ckpt


def load_model(path, device="cpu") -> tuple[nn.Module, dict]:
    """Rebuild the network saved in a checkpoint (or ``pretrained:NAME``), in eval mode: ``(model, checkpoint)``.

    The checkpoint's ``config["model"]`` names the class and its arguments, e.g.
    ``{"name": "PConvUNet", "layers": 5, "base": 16}``, or ``{"name": "TimeUNet", "base": 16, ...}`` in a
    ``murallab.diffusion.train_diffusion`` checkpoint (its schedule: ``config["schedule"]``).
    """
    ckpt = load_checkpoint(path)
    spec = (ckpt.get("config") or {}).get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"{path} does not say which network it holds (config['model']['name'] is missing; a "
                         f"train_diffusion checkpoint written before it recorded the name is retrained and "
                         f"rewritten by calling train_diffusion again)")
    spec = dict(spec)
    model = build_model(spec.pop("name"), **spec)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt
