"""Building blocks shared by the restoration networks: conv/BN/activation blocks, the ResNet block, the
encoder plan of the PConv paper, padding to a multiple of the network's stride, and the encoder/decoder split
that phased training uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..data.masks import composite
from .partial_conv import PartialConv2d


def encoder_plan(layers: int, in_channels: int, base: int) -> list[tuple[int, int, int]]:
    """``(in_ch, out_ch, kernel)`` of each stride-2 encoder layer of the PConv U-Net (Liu et al. 2018).

    Kernels are 7, 5, 5, 3, 3, …; channels base·(1, 2, 4, 8, 8, …), so 64, 128, 256, 512, 512, … for base 64.
    """
    if layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    kernels = [7, 5, 5] + [3] * max(layers - 3, 0)
    channels = [in_channels] + [base * min(2 ** i, 8) for i in range(layers)]
    return [(channels[i], channels[i + 1], kernels[i]) for i in range(layers)]


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "constant", minimum: int = 1) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` at the bottom and right so that H and W are multiples of ``multiple`` and at least
    ``minimum``.

    ``mode="constant"`` pads with zeros (for a mask: padding is a hole); ``"replicate"`` repeats the border.
    Crop back with ``y[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = max(-h % multiple, minimum - h), max(-w % multiple, minimum - w)
    return F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x


class PConvBlock(nn.Module):
    """Partial conv → BatchNorm (optional) → activation (optional): ``forward(x, mask) -> (y, new_mask)``.

    'Same' padding ``(k-1)//2``; the conv has a bias only when there is no BatchNorm to absorb it.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, *, bn: bool, act: nn.Module | None,
                 multi_channel: bool = False):
        super().__init__()
        self.conv = PartialConv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=not bn,
                                  multi_channel=multi_channel)
        self.bn = nn.BatchNorm2d(out_ch) if bn else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.conv(x, mask)
        return self.act(self.bn(x)), mask


def conv_block(in_ch: int, out_ch: int, kernel: int, stride: int, *, bn: bool, act: nn.Module | None) -> nn.Module:
    """Plain conv → BatchNorm (optional) → activation (optional): the ordinary-convolution twin of PConvBlock."""
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=not bn)]
    layers += [nn.BatchNorm2d(out_ch)] if bn else []
    layers += [act] if act is not None else []
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """ResNet basic block: ``SiLU(x̂ + BN(conv3×3(SiLU(BN(conv3×3(x))))))``.

    ``x̂`` is ``x`` itself (identity skip) when the channel counts match, else a 1×1 projection.
    Shapes: ``(B, in_ch, H, W) -> (B, out_ch, H, W)``.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.SiLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch))
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.skip(x) + self.body(x))


def check_upsample(mode: str) -> str:
    """The decoder's upsampling: ``"nearest"`` (the PConv paper) or ``"bilinear"``."""
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"upsample must be 'nearest' (the paper) or 'bilinear', got {mode!r}")
    return mode


@torch.no_grad()
def zero_last_layer(conv: nn.Conv2d) -> None:
    """Zero a network's output convolution, so a residual network starts as the identity of what it corrects."""
    conv.weight.zero_()
    if conv.bias is not None:
        conv.bias.zero_()


class EncoderDecoder(nn.Module):
    """Base for the U-Nets: ``self.enc`` holds the encoder; everything else is the decoder.

    Gives phased training its parameter groups and the paper's frozen-encoder-BatchNorm fine-tuning, and the one
    calling convention that the trainer and ``murallab.restore`` use for every network:

        output   = model(*model.inputs(batch))         # batch: {"image", "mask", "masked", ["corrupted"]}
        restored = model.restored(output, batch)       # (B, 3, H, W) in [0, 1], known pixels from the input

    ``task`` says which kind it is: ``"guided"``, told where the holes are (``forward(masked, mask)``), or
    ``"blind"``, finding them itself (``forward(corrupted) -> (image, damage_probability)``).
    """

    enc: nn.Module
    _freeze_enc_bn = False
    task = "guided"

    def inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """The forward arguments for a batch: ``(masked, mask)``, shapes ``(B, 3, H, W)`` and ``(B, 1, H, W)``."""
        return batch["masked"], batch["mask"]

    def restored(self, output: torch.Tensor, batch: dict) -> torch.Tensor:
        """The restored image: the batch's known pixels, the prediction (clamped to [0, 1]) in the holes."""
        return composite(batch["image"], batch["mask"], output.float().clamp(0, 1))

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        return self.enc.parameters()

    def decoder_parameters(self) -> Iterator[nn.Parameter]:
        encoder = {id(p) for p in self.enc.parameters()}
        return (p for p in self.parameters() if id(p) not in encoder)

    def freeze_encoder_bn(self, freeze: bool = True) -> EncoderDecoder:
        """Keep every encoder BatchNorm in eval mode (running statistics fixed) even under ``train()``.

        Liu et al. fine-tune this way: the holes bias the batch statistics, so the encoder keeps those it learned.
        """
        self._freeze_enc_bn = freeze
        return self.train(self.training)

    def train(self, mode: bool = True) -> EncoderDecoder:
        super().train(mode)
        if mode and self._freeze_enc_bn:
            for m in self.enc.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
