"""Perceptual and style losses on VGG-16 features (Johnson et al. 2016; Gatys et al. 2016; Liu et al. 2018).

A frozen ImageNet classifier turns an image into feature maps Ψ_p (one per chosen layer p). Two images that a
classifier "sees" alike have close features even when their pixels differ (a one-pixel shift, say), and the
features notice texture that L1 averages away. With N_p = C_p·H_p·W_p elements in layer p:

    perceptual = Σ_p ‖Ψ_p(pred) - Ψ_p(target)‖₁ / N_p                     (mean absolute feature difference)
    style      = Σ_p ‖G_p(pred) - G_p(target)‖₁ / C_p²,   G_p = Ψ_pᵀ Ψ_p / (C_p·H_p·W_p)

G_p is the Gram matrix: channel-by-channel correlations summed over positions, which keep "which textures
occur" and forget "where". The PConv paper prints the normaliser as "K_n", a typo for K_p = 1/(C_p·H_p·W_p);
dividing by C·H·W is what makes G independent of the image size (``gram_matrix`` below). The paper takes pool1,
pool2 and pool3 of VGG-16, our default.

Weights
-------
The network is torchvision's own ``torchvision.models.vgg16().features``, cut after the deepest layer asked for.
``VGG16Features(weights="imagenet")`` loads torchvision's ``IMAGENET1K_V1`` file, ``vgg16-397923af.pth``, from
torchvision's own cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``), or from a path you give (``weights="/path/vgg16-397923af.pth"``). It never
downloads unless you pass ``download=True``: on an offline machine it raises :class:`VGGWeightsNotFoundError`,
which says where to put the file and where to get it.

``weights=None`` builds the same network with random weights (seeded). Those features are *untrained*: the
"perceptual" and "style" numbers then measure differences through random filters, which still react to edges and
textures but not to what ImageNet taught. Tests and offline CPU notebooks use them; say so wherever you show them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import VGG16_Weights, vgg16

__all__ = ["VGG16Features", "VGGWeightsNotFoundError", "gram_matrix", "perceptual_distance", "style_distance",
           "perceptual_loss", "style_loss", "PerceptualLoss", "StyleLoss", "VGG16_LAYERS", "IMAGENET_MEAN",
           "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_URL = VGG16_Weights.IMAGENET1K_V1.url  # https://download.pytorch.org/models/vgg16-397923af.pth
_FILE = _URL.rsplit("/", 1)[-1]


def _torchvision_features() -> nn.Sequential:
    """``torchvision.models.vgg16().features``, built on the meta device: the layers without any memory (the
    classifier's 124M parameters, which we never use, are neither allocated nor initialised)."""
    with torch.device("meta"):
        return vgg16(weights=None, init_weights=False).features


def _layer_names(features: nn.Sequential) -> tuple[str, ...]:
    """Index in ``vgg16().features`` -> name: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names, block, conv = [], 1, 1
    for m in features:
        if isinstance(m, nn.MaxPool2d):
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        elif isinstance(m, nn.Conv2d):
            names.append(f"conv{block}_{conv}")
        else:
            names.append(f"relu{block}_{conv}")
            conv += 1
    return tuple(names)


VGG16_LAYERS = _layer_names(_torchvision_features())


class VGGWeightsNotFoundError(FileNotFoundError):
    """The ImageNet VGG-16 weights file is not on this machine (and downloading was not asked for)."""


def _load_imagenet_state_dict(weights, download: bool) -> dict:
    if weights == "imagenet":
        folder = Path(torch.hub.get_dir()) / "checkpoints"
        path = folder / _FILE
        if not path.is_file() and download:
            return VGG16_Weights.IMAGENET1K_V1.get_state_dict(map_location="cpu", check_hash=True, weights_only=True)
        where = (f"expected {_FILE} in {folder} (torchvision's cache: torch.hub.get_dir()/checkpoints, which "
                 f"follows $TORCH_HOME)")
    else:
        path = Path(weights).expanduser()
        where = f"no file at {path}"
    if not path.is_file():
        raise VGGWeightsNotFoundError(
            f"VGG-16 ImageNet weights not found: {where}. Download {_URL} on a machine with internet and copy it "
            f"to {Path(torch.hub.get_dir()) / 'checkpoints' / _FILE}, or pass weights='/path/to/{_FILE}'. "
            f"With internet here, pass download=True. For untrained random features (tests, offline demos), pass "
            f"weights=None explicitly.")
    return torch.load(path, map_location="cpu", weights_only=True)


class VGG16Features(nn.Module):
    """Frozen VGG-16 feature extractor: ``VGG16Features(layers=("pool1", "pool2", "pool3"), weights="imagenet")``.

    Args:
        layers: names from ``VGG16_LAYERS`` (``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}``, b = 1..5), returned in
            the order given. The network is built only up to the deepest one.
        weights: ``"imagenet"`` (torchvision's cached IMAGENET1K_V1 file), a path to that file (a full
            ``vgg16`` state dict, or one of its ``features``), or ``None`` for random, untrained weights; never
            implied. See the module docstring.
        download: with ``weights="imagenet"`` and no cached file, download it through ``torch.hub`` (needs
            internet; off by default so an offline machine fails fast with a clear message).
        seed: seeds the random weights of ``weights=None``.

    Call:
        ``features(x) -> list`` of ``(B, C_p, H_p, W_p)`` tensors, one per layer. ``x`` is ``(B, 3, H, W)`` in
        [0, 1]; the ImageNet normalisation happens inside. Parameters never train and the module stays in eval
        mode, but gradients flow to ``x``.
    """

    def __init__(self, layers=("pool1", "pool2", "pool3"), weights="imagenet", *, download: bool = False,
                 seed: int = 0):
        super().__init__()
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        unknown = [n for n in layers if n not in VGG16_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown VGG-16 layer(s) {unknown or layers}; choose from {VGG16_LAYERS}")
        if isinstance(weights, VGG16_Weights) or weights == "IMAGENET1K_V1":
            weights = "imagenet"
        if weights is not None and not isinstance(weights, (str, Path)):
            raise TypeError(f"weights must be 'imagenet', a path or None, got {weights!r}")
        self.layers, self.weights = layers, weights
        self.index = [VGG16_LAYERS.index(n) for n in layers]
        state = None if weights is None else _load_imagenet_state_dict(weights, download)  # fail before building
        # torchvision's network, cut after the deepest requested layer; its ReLUs work in place, which would
        # overwrite a returned conv map, so they are switched off here.
        self.features = _torchvision_features()[:max(self.index) + 1].to_empty(device="cpu")
        for m in self.features:
            if isinstance(m, nn.ReLU):
                m.inplace = False
        if weights is None:
            gen = torch.Generator().manual_seed(seed)
            for m in self.features:
                if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation, from a seeded generator
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    nn.init.zeros_(m.bias)
        else:
            if any(k.startswith("features.") for k in state):
                state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            mine = self.features.state_dict()
            missing = [k for k in mine if k not in state]
            if missing:
                raise ValueError(f"{weights} is not a VGG-16 state dict: missing {missing[:4]}")
            self.features.load_state_dict({k: state[k] for k in mine})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        """Always eval: the extractor is frozen (``model.train()`` on a parent leaves it alone)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG16Features expects (B, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        h = (x - self.mean) / self.std
        out = {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self.index:
                out[i] = h
        return [out[i] for i in self.index]

    def extra_repr(self) -> str:
        w = "random (untrained)" if self.weights is None else repr(str(self.weights))
        return f"layers={self.layers}, weights={w}"


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, C)``: ``G = F Fᵀ / (C·H·W)`` with F the ``(C, H·W)`` feature matrix (in float32)."""
    b, c, h, w = f.shape
    f = f.float().reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def perceptual_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
    """Σ over layers of the mean absolute difference of two feature lists (scalar, >= 0)."""
    return sum((a - b).abs().mean() for a, b in zip(fa, fb, strict=True))


def style_distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
    """Σ over layers of the mean absolute difference of the Gram matrices (scalar, >= 0)."""
    return sum((gram_matrix(a) - gram_matrix(b)).abs().mean() for a, b in zip(fa, fb, strict=True))


def perceptual_loss(pred: torch.Tensor, target: torch.Tensor, features: VGG16Features) -> torch.Tensor:
    """Perceptual loss of ``(B, 3, H, W)`` images in [0, 1] through ``features`` (a :class:`VGG16Features`)."""
    return perceptual_distance(features(pred), features(target))


def style_loss(pred: torch.Tensor, target: torch.Tensor, features: VGG16Features) -> torch.Tensor:
    """Style (Gram) loss of ``(B, 3, H, W)`` images in [0, 1] through ``features``."""
    return style_distance(features(pred), features(target))


class PerceptualLoss(nn.Module):
    """Module form of :func:`perceptual_loss`. Pass ``features`` to share one extractor between losses, or let it
    build ``VGG16Features(layers, weights)``. Call ``loss(pred, target)`` with ``(B, 3, H, W)`` in [0, 1]."""

    def __init__(self, features: VGG16Features | None = None, *, layers=("pool1", "pool2", "pool3"),
                 weights="imagenet"):
        super().__init__()
        self.features = features if features is not None else VGG16Features(layers, weights)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return perceptual_loss(pred, target, self.features)


class StyleLoss(PerceptualLoss):
    """Module form of :func:`style_loss`; arguments as :class:`PerceptualLoss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return style_loss(pred, target, self.features)
