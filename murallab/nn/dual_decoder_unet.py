"""Blind restoration (seed 002): one encoder, two decoders. The model is given only the damaged mural and finds the
damage itself.

    e_0 = ResBlock(2x - 1),   e_i = ResBlock(maxpool(e_{i-1}))      shared encoder; skips e_i taken before pooling
    image decoder:   u_i = ResBlock([interp(u_{i+1}) ; e_i])  →  1×1 conv → tanh    restored image in [-1, 1]
    damage decoder:  v_i = ResBlock([interp(v_{i+1}) ; e_i])  →  1×1 conv → sigmoid  P(pixel is damaged)

At the library boundary images stay in [0, 1]: the input is mapped to [-1, 1] inside and the tanh output back.
The damage probability is the *opposite* of a mask: damage ≈ 1 - mask (1 = damaged).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data.masks import composite
from ..metrics import DAMAGE_THRESHOLD
from .blocks import EncoderDecoder, ResBlock, pad_to_multiple


class _Decoder(nn.Module):
    """Interpolate ×2, concatenate the skip, ResBlock; repeated from the bottom level up."""

    def __init__(self, chans: list[int]):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(chans[i + 1] + chans[i], chans[i]) for i in range(len(chans) - 1))

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for i in reversed(range(len(self.blocks))):
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = self.blocks[i](torch.cat([x, skips[i]], dim=1))
        return x


class DualDecoderUNet(EncoderDecoder):
    """``forward(corrupted) -> (image, damage_prob)``.

    Shapes: corrupted ``(B, in_channels, H, W)`` in [0, 1]; image ``(B, in_channels, H, W)`` in [0, 1];
    damage_prob ``(B, 1, H, W)`` in [0, 1], 1 = damaged. ``depth`` max-pools; channels ``base·2^i``.
    Any H×W works (replicate-padded to a multiple of ``2**depth``, then cropped).

    ``threshold``: the operating threshold on P(damage), part of the network's configuration so that it travels
    with its weights (a checkpoint's ``config["model"]``, a registry entry): ``restored`` and
    ``murallab.restore`` call a pixel damaged where ``damage_prob >= threshold``.
    """

    task = "blind"

    def __init__(self, in_channels: int = 3, base: int = 32, depth: int = 4, threshold: float = DAMAGE_THRESHOLD):
        super().__init__()
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a damage probability in [0, 1], got {threshold!r}")
        self.depth, self.threshold = depth, float(threshold)
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.enc = nn.ModuleList(ResBlock(c_in, c_out) for c_in, c_out in zip([in_channels] + chans[:-1], chans))
        self.image_decoder, self.damage_decoder = _Decoder(chans), _Decoder(chans)
        self.image_head = nn.Conv2d(base, in_channels, 1)
        self.damage_head = nn.Conv2d(base, 1, 1)

    def forward(self, corrupted: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if corrupted.dim() != 4:
            raise ValueError(f"corrupted must be (B, C, H, W) in [0, 1], got shape {tuple(corrupted.shape)}")
        h, w = corrupted.shape[-2:]
        x = pad_to_multiple(corrupted, 2 ** self.depth, mode="replicate") * 2 - 1
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        image = torch.tanh(self.image_head(self.image_decoder(skips)))
        damage = torch.sigmoid(self.damage_head(self.damage_decoder(skips)))
        return ((image + 1) / 2)[..., :h, :w], damage[..., :h, :w]

    def inputs(self, batch: dict) -> tuple[torch.Tensor]:
        """The forward argument for a batch: the corrupted mural (painted damage), else the masked one."""
        return (batch["corrupted"] if "corrupted" in batch else batch["masked"],)

    def restored(self, output: tuple[torch.Tensor, torch.Tensor], batch: dict,
                 threshold: float | None = None) -> torch.Tensor:
        """Keep the input wherever no damage is predicted: ``known = damage_prob < threshold`` (default
        ``self.threshold``),
        ``out = known · corrupted + (1 - known) · image``. Shapes as ``forward``; all in [0, 1].
        """
        image, damage = (o.float() for o in output)
        return composite(self.inputs(batch)[0], damage < (self.threshold if threshold is None else threshold), image)
