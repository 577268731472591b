"""The plain-convolution U-Net baseline (where seed 003 started): the PConv U-Net's shape with ordinary convolutions.

The mask enters only as a 4th input channel, ``[image ⊙ mask ; mask]``. Ordinary convolutions mix hole and known
pixels alike, so the network has to learn from data what the partial convolution gets by construction.

``upsample`` and ``refine`` are as in ``PConvUNet``. With ``refine=True`` the input is ``[fill ; mask]`` with
``fill = push_pull(image, mask)``, and the prediction is ``fill + U-Net([fill ; mask])``: the network sees the
smooth fill it corrects, and starts (last layer zero) as that fill.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..classical import push_pull
from .blocks import EncoderDecoder, check_upsample, conv_block, encoder_plan, pad_to_multiple, zero_last_layer


class UNet(EncoderDecoder):
    """``forward(image, mask) -> prediction``, with the same depth, kernels and channels as ``PConvUNet``.

    Shapes: image ``(B, in_channels, H, W)`` in [0, 1]; mask ``(B, 1, H, W)``, 1 = known, 0 = hole; prediction
    ``(B, in_channels, H, W)``, unbounded. Any H×W works (padded to a multiple of ``2**layers``, then cropped).
    """

    def __init__(self, layers: int = 7, in_channels: int = 3, base: int = 64, upsample: str = "nearest",
                 refine: bool = False):
        super().__init__()
        self.layers, self.upsample, self.refine = layers, check_upsample(upsample), refine
        plan = encoder_plan(layers, in_channels + 1, base)
        self.enc = nn.ModuleList(
            conv_block(c_in, c_out, k, 2, bn=i > 0, act=nn.ReLU()) for i, (c_in, c_out, k) in enumerate(plan))
        chans = [in_channels + 1] + [c_out for _, c_out, _ in plan]
        outs = [in_channels] + chans[1:]
        self.dec = nn.ModuleList(
            conv_block(chans[i + 1] + chans[i], outs[i], 3, 1, bn=i > 0, act=nn.LeakyReLU(0.2) if i > 0 else None)
            for i in range(layers))
        if refine:
            zero_last_layer(self.dec[0][0])

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        mask = mask.to(image.dtype)
        start = push_pull(image, mask) if self.refine else image * mask
        x = pad_to_multiple(torch.cat([start, mask], dim=1), 2 ** self.layers)
        feats = [x]
        for enc in self.enc:
            x = enc(x)
            feats.append(x)
        for i in reversed(range(self.layers)):
            x = F.interpolate(x, scale_factor=2, mode=self.upsample)
            x = self.dec[i](torch.cat([x, feats[i]], dim=1))
        x = x[..., :h, :w]
        return start + x if self.refine else x
