"""A refining U-Net with fast Fourier convolutions in its bottleneck (the idea of LaMa, Suvorov et al. 2022).

A 3×3 convolution sees 3×3 pixels; a hole 100 pixels wide needs many layers before its centre sees any paint. The
fast Fourier convolution (FFC, Chi et al. 2020) gives a layer an image-wide view at once: part of its channels
(the *global* ones) go through a Fourier unit,

    FU(x) = F⁻¹( ReLU(BN( W · [Re F(x) ; Im F(x)] )) )          F: the real 2-D FFT, W: a 1×1 convolution

and a 1×1 convolution of the spectrum mixes every position with every other. The *local* channels keep ordinary
3×3 convolutions, and the two exchange information in both directions:

    y_local  = conv_ll(x_local) + conv_gl(x_global)
    y_global = conv_lg(x_local) + SpectralTransform(x_global)

``FFCUNet`` is ``UNet(refine=True)``'s design with this bottleneck: input ``[fill ; mask]`` with
``fill = push_pull(image, mask)``, three stride-2 convolutions down to 1/8 resolution, ``blocks`` residual FFC
blocks there, and bilinear upsampling with skips back to full size; the last layer starts at zero, so the untrained
network *is* push-pull and learns a correction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..classical import push_pull
from .blocks import EncoderDecoder, conv_block, pad_to_multiple, zero_last_layer


class FourierUnit(nn.Module):
    """``FU(x) = irfft2(ReLU(BN(conv1×1([Re rfft2(x) ; Im rfft2(x)]))))``: ``(B, C, H, W) -> (B, C, H, W)``.

    The FFT runs in float32 (``norm="ortho"``), whatever the autocast dtype.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        with torch.autocast(x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), norm="ortho")  # (B, C, H, W/2 + 1) complex
            z = F.relu(self.bn(self.conv(torch.cat([spectrum.real, spectrum.imag], dim=1))))
            real, imag = z.chunk(2, dim=1)
            return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """The global path: halve the channels (1×1), add the Fourier unit's output to its input, restore them (1×1)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        mid = max(out_ch // 2, 1)
        self.reduce = conv_block(in_ch, mid, 1, 1, bn=True, act=nn.ReLU())
        self.fu = FourierUnit(mid)
        self.expand = nn.Conv2d(mid, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fu(x))


class FFC(nn.Module):
    """One fast Fourier convolution on ``(local, global)`` channel groups, then BN and ReLU on each.

    ``channels`` split into ``global = round(channels · ratio)`` and ``local = channels - global``.
    """

    def __init__(self, channels: int, ratio: float = 0.75):
        super().__init__()
        self.g = round(channels * ratio)
        self.l = channels - self.g
        if not 0 < self.g < channels:
            raise ValueError(f"ratio must leave both groups some of the {channels} channels, got {ratio}")
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, padding_mode="reflect", bias=False)  # noqa: E731
        self.ll, self.gl, self.lg = conv(self.l, self.l), conv(self.g, self.l), conv(self.l, self.g)
        self.gg = SpectralTransform(self.g, self.g)
        self.bn_l, self.bn_g = nn.BatchNorm2d(self.l), nn.BatchNorm2d(self.g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_l, x_g = x.split([self.l, self.g], dim=1)
        y_l = self.ll(x_l) + self.gl(x_g)
        y_g = self.lg(x_l) + self.gg(x_g)
        return torch.cat([F.relu(self.bn_l(y_l)), F.relu(self.bn_g(y_g))], dim=1)


class FFCResBlock(nn.Module):
    """``x + FFC(FFC(x))``: LaMa's residual block, shapes ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, ratio: float = 0.75):
        super().__init__()
        self.body = nn.Sequential(FFC(channels, ratio), FFC(channels, ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FFCUNet(EncoderDecoder):
    """``forward(image, mask) -> prediction``: push-pull's fill plus a learned correction (module docstring).

    Shapes: image ``(B, in_channels, H, W)`` in [0, 1]; mask ``(B, 1, H, W)``, 1 = known, 0 = hole; prediction
    ``(B, in_channels, H, W)``, unbounded. Any H×W (padded to a multiple of 8 and at least 16, then cropped:
    the FFC blocks' reflection padding needs 2 pixels at 1/8 size). Channels ``base``,
    ``2·base`` and ``4·base`` at 1/2, 1/4 and 1/8 resolution, ``blocks`` FFC blocks at 1/8; like ``UNet``, the only
    full-resolution layer is the last, which sees the input ``[fill ; mask]`` again.
    """

    def __init__(self, in_channels: int = 3, base: int = 24, blocks: int = 4, ratio: float = 0.75):
        super().__init__()
        c = [in_channels + 1, base, 2 * base, 4 * base]
        self.enc = nn.ModuleList(conv_block(c[i], c[i + 1], 7 if i == 0 else 3, 2, bn=True, act=nn.ReLU())
                                 for i in range(3))
        self.mid = nn.Sequential(*(FFCResBlock(c[3], ratio) for _ in range(blocks)))
        self.dec = nn.ModuleList(conv_block(c[i + 1] + c[i], c[i], 3, 1, bn=True, act=nn.LeakyReLU(0.2))
                                 for i in range(1, 3))
        self.head = nn.Conv2d(c[1] + c[0], in_channels, 3, padding=1)
        zero_last_layer(self.head)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        mask = mask.to(image.dtype)
        fill = push_pull(image, mask)
        x = pad_to_multiple(torch.cat([fill, mask], dim=1), 8, mode="replicate", minimum=16)
        skips = [x]
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
        x = self.mid(x)
        for i in (2, 1, 0):  # 1/8 -> 1/4 -> 1/2 -> full resolution, each with the encoder's features there
            x = F.interpolate(x, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, skips[i]], dim=1)
            x = self.head(x) if i == 0 else self.dec[i - 1](x)
        return fill + x[..., :h, :w]
