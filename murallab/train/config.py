"""Run presets: a YAML file in ``configs/`` describes the network, the loss, the data, the training settings and
the phases. ``load_config`` reads and checks it; ``build_run`` turns it into the objects ``fit`` takes.

    name: tiny_cpu
    model: {name: PConvUNet, layers: 4, base: 16}          # murallab.nn.build_model arguments
    loss: {name: PConvLoss, weights: null}                  # a murallab.losses preset and its arguments
    data: {patch_size: 64, patches_per_image: 8, n_murals: 16, val_fraction: 0.2, hole_ratio: [0.1, 0.4]}
    train: {batch_size: 8, seed: 0, ...}                    # TrainConfig fields
    phases:                                                 # Phase fields, run in order
      - {name: pretrain, train: all, lr: 2.0e-4, epochs: 3, patience: 2}
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import torch
import yaml
from torch.utils.data import Dataset, Subset

from .. import losses
from ..data import MuralPatchDataset, PaintedDamage, PairedAugment, detect_layout, open_dataset
from ..nn import build_model
from .phases import Phase
from .trainer import TrainConfig

DATA_DEFAULTS = {"patch_size": 128, "patches_per_image": 8, "n_murals": 16, "mural_size": None,
                 "val_fraction": 0.2, "hole_ratio": [0.1, 0.4], "augment": True, "jitter": {}, "upscale": False,
                 "scale": [1.0, 1.0], "hole_value": 0, "paint_damage": False}
SECTIONS = {"name", "description", "init", "model", "loss", "data", "train", "phases"}


def load_config(source) -> dict:
    """A preset as a plain dict with every default filled in; ``source`` is a YAML path or a dict.

    Unknown sections or keys are errors (a typo must not be silently ignored).
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no config at {path}; the presets are in configs/")
        cfg = yaml.safe_load(path.read_text()) or {}
        cfg.setdefault("name", path.stem)
    else:
        cfg = copy.deepcopy(source)
    unknown = set(cfg) - SECTIONS
    if unknown:
        raise ValueError(f"unknown config sections {sorted(unknown)}; expected some of {sorted(SECTIONS)}")
    for section in ("model", "loss", "phases"):
        if section not in cfg:
            raise ValueError(f"the config needs a '{section}' section")
    data = dict(DATA_DEFAULTS)
    bad = set(cfg.get("data", {})) - set(DATA_DEFAULTS)
    if bad:
        raise ValueError(f"unknown data settings {sorted(bad)}; expected some of {sorted(DATA_DEFAULTS)}")
    data.update(cfg.get("data", {}))
    cfg["data"] = data
    _check_keys("train", cfg.get("train", {}), TrainConfig)
    cfg["train"] = dataclasses.asdict(TrainConfig(**cfg.get("train", {})))
    for p in cfg["phases"]:
        _check_keys("phase", p, Phase)
    cfg["phases"] = [Phase(**p).to_dict() for p in cfg["phases"]]
    return cfg


def _check_keys(what: str, given: dict, cls) -> None:
    fields = {f.name for f in dataclasses.fields(cls)}
    bad = set(given) - fields
    if bad:
        raise ValueError(f"unknown {what} settings {sorted(bad)}; expected some of {sorted(fields)}")


def build_loss(spec: dict):
    spec = dict(spec)
    name = spec.pop("name")
    if name not in losses.presets.__all__:
        raise ValueError(f"unknown loss {name!r}; choose one of {losses.presets.__all__}")
    return getattr(losses, name)(**spec)


def build_data(data: dict, data_dir=None, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Training and validation sets. Procedural murals and mural folders are split by mural (no patch of a
    validation mural is seen in training); the DLCV and Kaggle layouts by image. With ``paint_damage`` every
    sample also carries ``"corrupted"``: its holes painted as exposed plaster, for blind restoration."""
    train, val = _split(data, data_dir, seed)
    if data["paint_damage"]:
        train, val = PaintedDamage(train, seed), PaintedDamage(val, seed + 1)
    return train, val


def _split(data: dict, data_dir, seed: int) -> tuple[Dataset, Dataset]:
    augment = PairedAugment(seed=seed, **data["jitter"]) if data["augment"] else None
    common = dict(patch_size=data["patch_size"], patches_per_image=data["patches_per_image"],
                  hole_ratio=tuple(data["hole_ratio"]), upscale=data["upscale"], scale=tuple(data["scale"]),
                  seed=seed)
    if data_dir is None:
        n_val = max(1, round(data["n_murals"] * data["val_fraction"]))
        train = MuralPatchDataset(None, n_murals=data["n_murals"], mural_size=data["mural_size"], augment=augment,
                                  **common)
        val = MuralPatchDataset(None, n_murals=n_val, mural_size=data["mural_size"],
                                **dict(common, seed=seed + 10_000))  # other murals, no augmentation
        return train, val
    layout = detect_layout(data_dir)
    if layout == "folder":
        full = MuralPatchDataset(data_dir, augment=augment, **common)
        plain = MuralPatchDataset(data_dir, **common)
        n = len(full) // data["patches_per_image"]
        n_val = max(1, round(n * data["val_fraction"]))
        if n < 2:
            raise ValueError(f"{data_dir} holds {n} mural image(s); a train/validation split needs at least 2")
        ppi = data["patches_per_image"]
        return (Subset(full, range((n - n_val) * ppi)), Subset(plain, range((n - n_val) * ppi, n * ppi)))
    full = open_dataset(data_dir, augment=augment, hole_value=data["hole_value"], seed=seed)
    plain = open_dataset(data_dir, hole_value=data["hole_value"], seed=seed)
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(full) * data["val_fraction"]))
    return Subset(full, order[n_val:]), Subset(plain, order[:n_val])


def build_run(cfg: dict, data_dir=None) -> dict:
    """``{"model", "loss", "train_set", "val_set", "phases", "train"}`` from a config made by ``load_config``.

    The model is built after seeding torch with the config's seed, so the same config gives the same start; with
    ``init: path/to/checkpoint.pt`` it then starts from that checkpoint's weights (e.g. phase 1's best).
    When some phases train on procedural murals and others on ``data_dir``, the sets are
    ``{"main": ..., "procedural": ...}`` dicts.
    """
    seed = cfg["train"]["seed"]
    torch.manual_seed(seed)
    model = build_model(**cfg["model"])
    if cfg.get("init"):
        from .checkpoint import load_checkpoint
        model.load_state_dict(load_checkpoint(cfg["init"])["model"])
    phases = [Phase(**p) for p in cfg["phases"]]
    train_set, val_set = build_data(cfg["data"], data_dir, seed)
    if data_dir is not None and any(p.data == "procedural" for p in phases):
        procedural = build_data(cfg["data"], None, seed)
        train_set, val_set = {"main": train_set, "procedural": procedural[0]}, {"main": val_set,
                                                                                "procedural": procedural[1]}
    return {"model": model, "loss": build_loss(cfg["loss"]), "train_set": train_set, "val_set": val_set,
            "phases": phases, "train": TrainConfig(**cfg["train"])}
