"""Choosing where tensors live: CPU by default, CUDA when there is one."""

from __future__ import annotations

import torch


def device(name: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    ``None`` or ``"auto"``: CUDA if available, else CPU. Any other name (``"cpu"``, ``"cuda"``,
    ``"cuda:1"``) is checked, so asking for a GPU that is not there fails here with a clear message
    rather than deep inside a training step.
    """
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):  # torch lists its twenty device types; say what this kit runs on
        raise RuntimeError(f"unknown device {name!r}: expected 'cpu', 'cuda', 'cuda:N' (N: a GPU's number), "
                           f"another torch device type such as 'mps', or None / 'auto' to choose") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but PyTorch sees no CUDA GPU here; "
                               f"use device='cpu' (or None to choose automatically)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) visible")
    return dev
