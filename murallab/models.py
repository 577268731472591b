"""The model registry: build a network by name, rebuild one from a checkpoint, load the kit's pretrained weights.

    from murallab.models import build_model, load_model, load_pretrained
    net = build_model("PConvUNet", layers=5, base=16)     # as a config's model: section names it
    net, ckpt = load_model("runs/tiny/best.pt")           # any checkpoint, or "pretrained:NAME"
    restorer = load_pretrained("restorer")                # a shipped network (murallab.pretrained.WEIGHTS)

Every network says what it is in one class attribute, ``task``: ``"guided"`` (``model(masked, mask) -> image``),
``"blind"`` (``model(image) -> (image, P(damage))``) or ``"diffusion"`` (trains like the others, restores by
sampling); ``murallab.restore`` runs all three.
"""

from __future__ import annotations

from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .diffusion import DiffusionRestorer
from .nn import DualDecoderUNet, FFCUNet, PConvUNet, UNet
from .pretrained import PREFIX, WEIGHTS, entry

__all__ = ["MODELS", "build_model", "load_model", "load_pretrained", "export"]

#: the networks ``murallab train`` configs name
MODELS = {"PConvUNet": PConvUNet, "UNet": UNet, "FFCUNet": FFCUNet, "DualDecoderUNet": DualDecoderUNet,
          "DiffusionRestorer": DiffusionRestorer}


def build_model(name: str, **kwargs) -> nn.Module:
    """A network by class name and constructor arguments, as written in configs and checkpoints:
    ``build_model("PConvUNet", layers=5, base=16)``.

    A ``DiffusionRestorer`` whose ``refine`` names a checkpoint (``"pretrained:restorer-small"``, a path) starts
    from that restorer: its network is rebuilt here and its weights copied into the diffusion model's frozen
    ``fill_net`` (the model itself takes only the restorer's architecture and gets its weights from a state_dict).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    refine = kwargs.get("refine")
    if name == "DiffusionRestorer" and isinstance(refine, str):
        fill_net, ckpt = load_model(refine)
        if fill_net.task != "guided":
            raise ValueError(f"refine={refine!r} must be a mask-guided restorer (a UNet, PConvUNet or FFCUNet "
                             f"checkpoint), got a {type(fill_net).__name__}")
        model = DiffusionRestorer(**{**kwargs, "refine": _spec(refine, ckpt)})
        model.fill_net.load_state_dict(fill_net.state_dict())
        return model
    return MODELS[name](**kwargs)


def _spec(path, ckpt: dict) -> dict:
    """The ``{"name": class, **arguments}`` of the network in checkpoint ``ckpt`` (read from ``path``)."""
    spec = (ckpt.get("config") or {}).get("model")
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"{path} does not say which network it holds (config['model']['name'] is missing)")
    return dict(spec)


def load_model(path, device="cpu") -> tuple[nn.Module, dict]:
    """Rebuild the network saved in a checkpoint (or ``pretrained:NAME``), in eval mode, fp32: ``(model, ckpt)``.

    The checkpoint's ``config["model"]`` names the class and its arguments, e.g.
    ``{"name": "PConvUNet", "layers": 5, "base": 16}``; for ``pretrained:NAME`` the registry entry's
    ``architecture`` does (with the detector's ``threshold``), so the shipped files need nothing else.
    """
    ckpt = load_checkpoint(path)
    weights = entry(path)
    spec = dict(weights.architecture) if weights is not None else _spec(path, ckpt)
    if weights is not None and weights.threshold is not None:
        spec["threshold"] = weights.threshold
    model = build_model(spec.pop("name"), **spec)
    model.load_state_dict(ckpt["model"])
    return model.float().to(device).eval(), ckpt


def load_pretrained(name: str, device="cpu") -> nn.Module:
    """The shipped network ``name`` (see ``murallab.pretrained.WEIGHTS``) in eval mode, fp32, on ``device``."""
    if name not in WEIGHTS:
        raise ValueError(f"no pretrained weights {name!r}; the kit ships {', '.join(WEIGHTS)}")
    return load_model(PREFIX + name, device)[0]


def export(checkpoint, dest, *, half: bool = True):
    """Write the network of a training checkpoint as a weights file: its ``state_dict`` (fp16 floats when ``half``),
    how to rebuild it, and its step count; no optimiser state. Returns ``dest``."""
    ckpt = load_checkpoint(checkpoint)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    config = ckpt.get("config") or {}
    if "model" not in config:
        raise ValueError(f"{checkpoint} does not say which network it holds (config['model'] is missing)")
    progress = ckpt.get("progress") or {}
    return save_checkpoint(dest, model=state, config={k: config[k] for k in ("name", "model") if k in config},
                           progress={k: progress[k] for k in ("step", "best", "best_epoch") if k in progress})
