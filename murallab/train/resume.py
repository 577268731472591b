"""Resuming a run: ``last.pt`` continues only with the network and the phases it was trained with.

Each check fails in one line that names the checkpoint, what it holds and what was asked, and says what to do.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from pathlib import Path

from torch import nn

from ..models import MODELS
from .phases import Phase

__all__ = ["check_resumable"]


def _full(spec) -> tuple:
    """``(name, arguments)`` with the constructor's defaults filled in: ``{name: PConvUNet, base: 8}`` equals
    ``{name: PConvUNet, base: 8, layers: 7}``."""
    spec = dict(spec or {})
    name = spec.pop("name", None)
    try:
        bound = inspect.signature(MODELS[name]).bind(**spec)
    except (KeyError, TypeError):
        return name, spec
    bound.apply_defaults()
    return name, dict(bound.arguments)


def _show(spec: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in spec.items()) + "}"


def check_resumable(path: Path, ckpt: dict, config: dict, model: nn.Module) -> None:
    """Resuming ``path`` with another network than the one it was trained with is an error, in one line that names
    both (the model settings of the checkpoint and of the config, with the first parameter that differs); so is
    resuming with other phases (:func:`check_same_phases`)."""
    saved, asked = (ckpt.get("config") or {}).get("model"), config.get("model")
    theirs, ours = ckpt["model"], model.state_dict()
    shapes = [f"{k} is {tuple(theirs[k].shape)} there, {tuple(v.shape)} here" for k, v in ours.items()
              if k in theirs and theirs[k].shape != v.shape]
    only = sorted(set(ours) ^ set(theirs))
    if shapes or only or (saved and asked and _full(saved) != _full(asked)):
        detail = shapes[0] if shapes else f"{only[0]} is in only one of them" if only else ""
        raise ValueError(f"{path} was trained with " + (f"model {_show(saved)}" if saved else "another network")
                         + (f"; this config asks for {_show(asked)}" if asked else "")
                         + (f" ({detail})" if detail else "")
                         + ": resume with the same model settings, or choose another output folder (--out)")
    check_same_phases(path, (ckpt.get("config") or {}).get("phases"), config.get("phases"))


def check_same_phases(path: Path, saved, asked) -> None:
    """Resuming with other phases is an error: each phase's cosine schedule was fixed by its epochs when it started,
    so a resumed run with more epochs would anneal to zero at the old end and then climb again."""
    if not saved or not asked:
        return
    defaults = {f.name: f.default for f in fields(Phase) if f.default is not MISSING}  # keys newer than the run
    saved, asked = [defaults | p for p in saved], [defaults | p for p in asked]
    if saved == asked:
        return
    if len(saved) != len(asked):
        detail = f"{len(saved)} phases there, {len(asked)} here"
    else:
        i, a, b = next((i, a, b) for i, (a, b) in enumerate(zip(saved, asked)) if a != b)
        key = next(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
        detail = f"phase {i + 1} ({b.get('name', '?')!r}) has {key} {a.get(key)!r} there, {b.get(key)!r} here"
    raise ValueError(f"{path} was trained with other phases ({detail}): resume with the same phases (a phase's "
                     f"learning-rate schedule is fixed by its epochs), or start a new run in another folder (--out) "
                     f"from its weights (init: {path})")
