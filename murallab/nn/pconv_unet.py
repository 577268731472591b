"""The PConv U-Net of Liu et al. (ECCV 2018), the network of seeds 001 and 003.

Encoder (``layers`` stride-2 partial convolutions, kernels 7, 5, 5, 3, 3, …, channels 64, 128, 256, 512, 512, …,
BatchNorm except on the first layer, ReLU):

    h_0 = image, m_0 = mask;   (h_i, m_i) = PConv_i(h_{i-1}, m_{i-1})

Decoder (from the bottom up; nearest-neighbour upsampling of both features and mask, concatenation with the
encoder's skip, a 3×3 partial convolution, BatchNorm except on the last layer, LeakyReLU(0.2)):

    (d_i, n_i) = PConv'_i([up(d_{i+1}) ; h_{i-1}], [up(n_{i+1}) ; m_{i-1}]),   d_{L+1} = h_L

The last decoder layer therefore sees the input image and mask, and outputs 3 channels with no activation.

Each encoder layer halves the size and grows every hole's known border by about half its kernel, so after a few
layers the mask is all ones: notebook 02 plots this.

Two options beyond the paper:

- ``upsample="bilinear"`` upsamples the decoder's features bilinearly (the mask stays nearest). Nearest upsampling
  copies each deep feature onto a 2^L × 2^L block, which shows as blocky fills of large holes early in training.
- ``refine=True`` starts from a classical fill and learns only its correction:

      prediction = push_pull(image, mask) + U-Net(image, mask)

  with the last layer initialised to zero, so an untrained network already fills like ``push_pull`` (which beats
  OpenCV Telea on murals), and training only has to learn what that fill gets wrong. On a CPU budget this is what
  lets a small network beat the classical methods (BENCHMARKS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..classical import push_pull
from .blocks import EncoderDecoder, PConvBlock, check_upsample, encoder_plan, pad_to_multiple, zero_last_layer


class PConvUNet(EncoderDecoder):
    """``forward(image, mask) -> prediction``.

    Shapes: image ``(B, in_channels, H, W)`` in [0, 1]; mask ``(B, 1, H, W)``, 1 = known, 0 = hole; prediction
    ``(B, in_channels, H, W)``, unbounded (composite it with ``mask * image + (1 - mask) * prediction``).
    Any H×W works: the input is zero-padded to a multiple of ``2**layers`` with the padding marked as hole, then
    the output is cropped back.

    ``layers=7, base=64`` is the paper's network for 256² inputs: 25.8M parameters. (naoto0804's port reports
    51.6M because it registers its fixed all-ones mask kernels as parameters.) On a CPU use fewer layers and
    channels, e.g. ``PConvUNet(layers=5, base=16)`` (0.73M).
    """

    def __init__(self, layers: int = 7, in_channels: int = 3, base: int = 64, upsample: str = "nearest",
                 refine: bool = False):
        super().__init__()
        self.layers, self.upsample, self.refine = layers, check_upsample(upsample), refine
        plan = encoder_plan(layers, in_channels, base)
        self.enc = nn.ModuleList(
            PConvBlock(c_in, c_out, k, 2, bn=i > 0, act=nn.ReLU()) for i, (c_in, c_out, k) in enumerate(plan))
        chans = [in_channels] + [c_out for _, c_out, _ in plan]
        # dec[i] takes up(level i+1) concatenated with level i's skip and returns level i's channel count.
        self.dec = nn.ModuleList(
            PConvBlock(chans[i + 1] + chans[i], chans[i], 3, 1, bn=i > 0,
                       act=nn.LeakyReLU(0.2) if i > 0 else None, multi_channel=True)
            for i in range(layers))
        if refine:
            zero_last_layer(self.dec[0].conv)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        x = pad_to_multiple(image, 2 ** self.layers)  # hole values are never read: PConv masks them
        m = pad_to_multiple(mask.to(image.dtype), 2 ** self.layers)  # padding = hole
        feats, masks = [x], [m]
        for enc in self.enc:
            x, m = enc(x, m)
            feats.append(x)
            masks.append(m)
        for i in reversed(range(self.layers)):
            skip, skip_mask = feats[i], masks[i]
            x = F.interpolate(x, scale_factor=2, mode=self.upsample)
            m = F.interpolate(m, scale_factor=2, mode="nearest")
            m = torch.cat([m.expand(-1, x.shape[1], -1, -1), skip_mask.expand(-1, skip.shape[1], -1, -1)], dim=1)
            x, m = self.dec[i](torch.cat([x, skip], dim=1), m)
        x = x[..., :h, :w]
        return push_pull(image, mask) + x if self.refine else x
