"""Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018).

For each output position, with ``X`` the input window, ``M`` the mask window (1 = known, 0 = hole) and ``W``, ``b``
the convolution's weight and bias:

    x' = W^T (X ⊙ M) · sum(1) / sum(M) + b     if sum(M) > 0
    x' = 0                                      otherwise

    m' = 1 if sum(M) > 0 else 0

``sum(1)`` is the number of entries in the window: ``k_h·k_w`` for a single-channel mask and ``C_in·k_h·k_w`` for a
multi-channel one. The factor rescales a window that sees only part of the image to the scale of a full window.

Three details on which published ports differ from the paper, and what this layer does:

- **The window factor.** NVIDIA's reference layer multiplies by ``sum(1)``; naoto0804's popular port divides by
  ``sum(M)`` alone, which shrinks every output by ``sum(1)``. We follow the paper and NVIDIA.
- **The bias** is added after the rescaling, and a window that sees no known pixel outputs exactly 0 (bias included).
- **No stale state.** NVIDIA's layer caches the last mask ratio and reuses it when called without a mask. This layer
  has no cache: ``forward(x, mask)`` needs the mask and always computes from it.

Mixed precision: the mask arithmetic (the window sums and the ratio) always runs in float32, outside autocast. In
fp16 the usual ``1e-8`` epsilon rounds to 0, and in bf16 window sums above 256 are no longer exact integers. Since
``sum(M)`` counts whole pixels, we divide by ``max(sum(M), 1)`` where ``sum(M) > 0``: no epsilon is needed for binary
masks. The ratio is then cast to the feature dtype; its largest value, ``sum(1)``, fits fp16 and bf16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """A 2-D partial convolution: ``forward(x, mask) -> (y, new_mask)``.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as ``nn.Conv2d``
            (zero padding; padded pixels count as holes).
        multi_channel: if False the mask is ``(B, 1, H, W)`` and is shared by all input channels; if True it is
            ``(B, C_in, H, W)``, one mask per input channel (used when feature maps with different masks are
            concatenated, as in the U-Net decoder).

    Shapes:
        x: ``(B, C_in, H, W)``; mask: ``(B, 1, H, W)`` or ``(B, C_in, H, W)``, binary, 1 = known, 0 = hole.
        y: ``(B, C_out, H', W')``; new_mask: ``(B, 1, H', W')``, binary, the same for every output channel.

    The gradient with respect to hole pixels of ``x`` is exactly 0: they enter only through ``X ⊙ M``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, multi_channel: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         dilation=dilation, bias=bias)
        self.multi_channel = multi_channel
        kh, kw = self.kernel_size
        self.window = (in_channels if multi_channel else 1) * kh * kw  # sum(1)
        # sum(M) over a window is a convolution of the channel-summed mask with a kernel of ones.
        self.register_buffer("ones", torch.ones(1, 1, kh, kw), persistent=False)

    def mask_update(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mask half of the layer, in float32 (float64 for a float64 mask): ``(ratio, new_mask)``, both
        ``(B, 1, H', W')``.

        ``ratio = sum(1) / sum(M)`` where ``sum(M) > 0`` and 0 elsewhere; ``new_mask = [sum(M) > 0]``.
        """
        with torch.no_grad(), torch.autocast(mask.device.type, enabled=False):
            m = mask.to(torch.promote_types(mask.dtype, torch.float32))  # float32, or float64 if given
            if self.multi_channel:
                m = m.sum(dim=1, keepdim=True)
            msum = F.conv2d(m, self.ones.to(m.dtype), None, self.stride, self.padding, self.dilation)
            new_mask = (msum > 0).to(m.dtype)
            ratio = self.window / msum.clamp(min=1.0) * new_mask
        return ratio, new_mask

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        expected_c = self.in_channels if self.multi_channel else 1
        if mask.dim() != 4 or mask.shape[1] != expected_c or mask.shape[0] != x.shape[0] \
                or mask.shape[-2:] != x.shape[-2:]:
            kind = "multi_channel" if self.multi_channel else "single-channel"
            raise ValueError(f"PartialConv2d ({kind}) expects a mask of shape ({x.shape[0]}, {expected_c}, "
                             f"{x.shape[-2]}, {x.shape[-1]}) for an input of shape {tuple(x.shape)}, got "
                             f"{tuple(mask.shape)}. Masks are 1 = known, 0 = hole.")
        ratio, new_mask = self.mask_update(mask)
        raw = F.conv2d(x * mask.to(x.dtype), self.weight, None, self.stride, self.padding, self.dilation)
        ratio = ratio.to(raw.dtype)
        if self.bias is None:
            y = raw * ratio
        else:  # b + raw · ratio in one pass, then 0 where no known pixel was seen (bias included)
            y = torch.addcmul(self.bias.view(1, -1, 1, 1).to(raw.dtype), raw, ratio)
            y.mul_(new_mask.to(raw.dtype))
        return y, new_mask.to(x.dtype)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", multi_channel={self.multi_channel}"
