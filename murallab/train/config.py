"""Run presets: a YAML file in ``configs/`` describes the network, the loss, the data, the training settings and
the phases. ``load_config`` reads and checks it; ``build_run`` turns it into the objects ``fit`` takes.

    name: tiny_cpu
    model: {name: PConvUNet, layers: 4, base: 16}          # murallab.models.build_model arguments
    loss: {name: PConvLoss, weights: null}                  # a murallab.losses preset and its arguments
    data: {patch_size: 64, patches_per_image: 8, n_murals: 16, val_fraction: 0.2, hole_ratio: [0.1, 0.4]}
    train: {batch_size: 8, seed: 0, ...}                    # TrainConfig fields
    phases:                                                 # Phase fields, run in order
      - {name: pretrain, train: all, lr: 2.0e-4, epochs: 3, patience: 2}
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import numbers
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from .. import losses
from .._yaml import load_yaml
from ..checkpoint import load_checkpoint
from ..data import DamageShapes, MuralPatchDataset, PaintedDamage, PairedAugment, detect_layout, open_dataset
from ..models import MODELS, build_model
from .phases import Phase
from .settings import TrainConfig

DATA_DEFAULTS = {"patch_size": 128, "patches_per_image": 8, "n_murals": 16, "mural_size": None,
                 "val_fraction": 0.2, "hole_ratio": [0.1, 0.4], "augment": True, "jitter": {}, "upscale": False,
                 "scale": [1.0, 1.0], "hole_value": 0, "paint_damage": False, "flakes": 0.5,
                 "decoys": 0.0, "hole_masks": None, "real_holes": 0.5}
SECTIONS = {"name", "description", "init", "model", "loss", "data", "train", "phases"}


def load_config(source) -> dict:
    """A preset as a plain dict with every default filled in; ``source`` is a YAML path or a dict.

    Unknown sections or keys are errors (a typo must not be silently ignored), and so are model or loss
    arguments that their constructors do not take, so a bad config fails before any data is built.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no config at {path}; the presets are in configs/")
        cfg = load_yaml(path)
        if cfg is None:
            cfg = {}
        if not isinstance(cfg, dict):
            raise ValueError(f"{path} holds a {type(cfg).__name__}; expected a mapping of sections "
                             f"(model:, loss:, phases:, ...)")
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
    _check_arguments("model", cfg["model"], MODELS)
    _check_arguments("loss", cfg["loss"], {name: getattr(losses, name) for name in losses.presets.__all__})
    _check_keys("train", cfg.get("train", {}), TrainConfig)
    cfg["train"] = dataclasses.asdict(TrainConfig(**cfg.get("train", {})))
    if not isinstance(cfg["phases"], list) or not cfg["phases"]:
        raise ValueError(f"'phases' must be a list of phases such as [{{name: pretrain, lr: 1.0e-3, epochs: 2}}], "
                         f"got {cfg['phases']!r}")
    for p in cfg["phases"]:
        _check_keys("phase", p, Phase)
    cfg["phases"] = [Phase(**p).to_dict() for p in cfg["phases"]]
    return cfg


# The annotations of TrainConfig and Phase fields that are numbers or flags, and the Python types they accept.
_TYPES = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,)}


def _check_keys(what: str, given, cls) -> None:
    if not isinstance(given, dict):
        raise ValueError(f"each {what} must be a mapping of settings, got {given!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = set(given) - set(fields)
    if bad:
        raise ValueError(f"unknown {what} settings {sorted(bad)}; expected some of {sorted(fields)}")
    for key, value in given.items():
        annotation = str(fields[key].type).replace(" ", "")
        optional = annotation.endswith("|None")
        accepted = _TYPES.get(annotation.removesuffix("|None"))
        if accepted is None or (optional and value is None):
            continue
        if not isinstance(value, accepted) or (bool not in accepted and isinstance(value, bool)):
            expected = {"int": "an integer", "float": "a number", "bool": "true or false"}[
                annotation.removesuffix("|None")] + (" or null" if optional else "")
            raise ValueError(f"{what} setting {key!r} must be {expected}, got {value!r}"
                             + (" (a string: write numbers unquoted)" if isinstance(value, str) else ""))


def _check_arguments(section: str, spec, classes: dict) -> None:
    """``spec`` (``{"name": class name, **constructor arguments}``) names one of ``classes`` and only arguments
    its constructor takes, with every required one given."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"the '{section}' section must be a mapping with a 'name' (one of {sorted(classes)}), "
                         f"got {spec!r}")
    name = spec["name"]
    if name not in classes:
        raise ValueError(f"unknown {section} {name!r}; choose one of {sorted(classes)}")
    params = [p for p in inspect.signature(classes[name]).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(classes[name]).parameters.values()):
        return
    accepted = [p.name for p in params if p.kind != p.POSITIONAL_ONLY]
    given = [k for k in spec if k != "name"]
    bad = sorted(set(given) - set(accepted))
    if bad:
        raise ValueError(f"{section} {name} does not take {', '.join(map(repr, bad))}; "
                         f"its arguments are {', '.join(accepted)}")
    missing = [p.name for p in params if p.default is p.empty and p.name not in given]
    if missing:
        raise ValueError(f"{section} {name} needs {', '.join(map(repr, missing))}; its arguments are "
                         f"{', '.join(accepted)}")


def build_loss(spec: dict):
    spec = dict(spec)
    name = spec.pop("name")
    if name not in losses.presets.__all__:
        raise ValueError(f"unknown loss {name!r}; choose one of {losses.presets.__all__}")
    return getattr(losses, name)(**spec)


def build_data(data: dict, data_dir=None, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Training and validation sets. Procedural murals and mural folders are split by mural (no patch of a
    validation mural is seen in training); the DLCV and Kaggle layouts by image. ``data_dir`` may be a list of
    mural folders (several sources): each is split on its own and the parts joined. With ``hole_masks`` (a folder of
    real damage masks) a share ``real_holes`` of the holes are crops of real damage (:class:`murallab.data.DamageShapes`).
    With ``paint_damage`` every sample also carries ``"corrupted"``: its holes painted as exposed plaster and
    photographed, for blind restoration, a fraction ``flakes`` of its masks are redrawn as flakes, and a fraction
    ``decoys`` of its images get intact pale paint (:class:`murallab.data.PaintedDamage`)."""
    folders = data_dir if isinstance(data_dir, (list, tuple)) else [data_dir]
    holes = DamageShapes(data["hole_masks"]) if data["hole_masks"] else None  # read once, shared by every folder
    parts = [_split(data, d, seed + 1000 * k, holes) for k, d in enumerate(folders)]
    train, val = parts[0] if len(parts) == 1 else (ConcatDataset([t for t, _ in parts]),
                                                     ConcatDataset([v for _, v in parts]))
    if data["paint_damage"]:
        train, val = (PaintedDamage(d, s, flakes=data["flakes"], decoys=data["decoys"])
                      for d, s in ((train, seed), (val, seed + 1)))
    return train, val


def _split(data: dict, data_dir, seed: int, holes: DamageShapes | None) -> tuple[Dataset, Dataset]:
    augment = PairedAugment(seed=seed, **data["jitter"]) if data["augment"] else None
    common = dict(patch_size=data["patch_size"], patches_per_image=data["patches_per_image"],
                  hole_ratio=tuple(data["hole_ratio"]), upscale=data["upscale"], scale=tuple(data["scale"]),
                  holes=holes, holes_p=data["real_holes"], seed=seed)
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
        model.load_state_dict(load_checkpoint(cfg["init"])["model"])
    phases = [Phase(**p) for p in cfg["phases"]]
    train_set, val_set = build_data(cfg["data"], data_dir, seed)
    if data_dir is not None and any(p.data != "main" for p in phases):
        procedural = build_data(cfg["data"], None, seed)
        train_set, val_set = {"main": train_set, "procedural": procedural[0]}, {"main": val_set,
                                                                                "procedural": procedural[1]}
    return {"model": model, "loss": build_loss(cfg["loss"]), "train_set": train_set, "val_set": val_set,
            "phases": phases, "train": TrainConfig(**cfg["train"])}
