"""Notebook 02: reference answers."""

import torch
import torch.nn.functional as F


def my_partial_conv(x, mask, weight, bias, stride=1, padding=0):
    """x (B, C, H, W), mask (B, 1, H, W) with 1 = known; weight (C_out, C, k, k); bias (C_out,)."""
    k = weight.shape[-1]
    unfold = dict(kernel_size=k, stride=stride, padding=padding)
    X = F.unfold(x * mask, **unfold)                       # (B, C·k·k, L): masked windows
    sum_M = F.unfold(mask, **unfold).sum(dim=1)            # (B, L): known pixels per window
    sum_1 = k * k                                          # window size of a single-channel mask
    raw = weight.reshape(len(weight), -1) @ X              # (B, C_out, L) = W^T (X ⊙ M)
    seen = (sum_M > 0)[:, None]                            # m'
    y = torch.where(seen, raw * sum_1 / sum_M.clamp(min=1)[:, None] + bias[:, None], 0.0)
    h_out = (x.shape[-2] + 2 * padding - k) // stride + 1
    return y.reshape(len(x), len(weight), h_out, -1), seen.reshape(len(x), 1, h_out, -1).to(x.dtype)


naoto_factor = 7 * 7            # sum(1)/sum(M) against 1/sum(M): the window's k² entries
layers_to_close_40px = 4        # w: 40 -> (40 - 6)/2 = 17 -> (17 - 4)/2 = 6.5 -> (6.5 - 4)/2 = 1.25 -> (1.25 - 2)/2 < 0
window_size = 96 * 3 * 3        # multi_channel=True: one mask entry per input channel and kernel position
