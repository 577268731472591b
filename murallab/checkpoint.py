"""Checkpoint files: ``state_dict``s plus a small JSON-able dict of config and progress, written atomically.

File I/O only: ``murallab.models.load_model`` rebuilds the network a checkpoint names.

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
import re
import zipfile
from pathlib import Path

import torch

from ._atomic import atomic_path
from .pretrained import weights_path


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
    except pickle.UnpicklingError as e:  # torch's message advises weights_only=False (running the file's code)
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if not found:
            raise ValueError(f"{path} is not a readable murallab checkpoint (not a file torch.save wrote, or a "
                             f"truncated or corrupt one)") from None
        raise ValueError(f"{path} is not a murallab checkpoint or weights file: it holds Python objects ({found[1]}), "
                         f"not only tensors and plain data, and murallab runs no code from a file: save the model's "
                         f"state_dict") from None
    except (RuntimeError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a readable murallab checkpoint (truncated or corrupt file?): {e}") from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"{path} is not a murallab checkpoint: expected a dict with a 'model' state_dict")
    return ckpt

