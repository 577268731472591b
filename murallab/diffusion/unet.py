"""A small time-conditioned U-Net that predicts the noise ε in x_t (Ho et al. 2020, at course scale).

    x_t (B, channels, H, W) ⊕ cond (B, cond_channels, H, W) ─ conv3×3 ─┐
        level i (i = 0 … L-1):  ResBlock(t) → [skip] → stride-2 conv     (not after the last level)
        middle:                 ResBlock(t) → self-attention (optional) → ResBlock(t)
        level i (reversed):     upsample → concat skip → ResBlock(t)
    ─ GroupNorm → SiLU → conv3×3 → ε̂ (B, channels, H, W)

Every ResBlock adds a projection of the sinusoidal time embedding of t to its features, so one network serves
every noise level. Conditioning channels (the masked image, the mask, a coarser result, a contour map) are
concatenated to x_t at the input: the same network is unconditional with ``cond_channels=0``.

Inputs live in the diffusion space ([-1, 1]); the samplers in ``murallab.diffusion.samplers`` do the conversion
from and to [0, 1] images. H and W must be multiples of ``2 ** (len(mults) - 1)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .schedule import _check_prediction


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (integer or real) steps ``t (B,)`` -> ``(B, dim)``: [cos(t·f_k), sin(t·f_k)],
    f_k = max_period^(-k / (dim/2)), k = 0 … dim/2 - 1 (the Transformer's position encoding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, 1)) if dim % 2 else emb


def _groups(channels: int, groups: int) -> int:
    while channels % groups:
        groups -= 1
    return groups


class ResBlock(nn.Module):
    """``x + conv(SiLU(GN(conv(SiLU(GN(x))) + W·emb)))``, with a 1×1 skip when channels change.
    Shapes: x ``(B, in_ch, H, W)``, emb ``(B, emb_dim)`` -> ``(B, out_ch, H, W)``."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, groups: int = 8, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch, groups), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(emb_dim, out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch, groups), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H·W positions, with a residual: ``(B, C, H, W) -> (B, C, H, W)``."""

    def __init__(self, channels: int, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels, groups), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # each (B, HW, C)
        y = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / sqrt(C)) v
        return x + self.proj(y.transpose(-1, -2).reshape(b, c, h, w))


class TimeUNet(nn.Module):
    """``forward(x_t, t, cond=None)``: ε̂, the noise in x_t (or x̂_0 or v̂, by ``prediction``), same shape as x_t.

    Args:
        channels: image channels of x_t and of the output (3).
        cond_channels: extra conditioning channels concatenated to x_t (0 = unconditional; 4 for
            ``mask_condition``; 8 for ``multiscale.scale_condition``).
        base: channels at the first level; level i has ``base * mults[i]``.
        mults: channel multipliers, one per resolution level.
        attention: self-attention in the middle (the lowest resolution).
        prediction: what the output is: "eps" (the noise ε, Ho et al.), "x0" (the clean image) or "v"
            (``NoiseSchedule.split`` converts); the samplers read it from ``model.prediction``.
    Shapes: x_t ``(B, channels, H, W)``; t int or ``(B,)``; cond ``(B, cond_channels, H, W)``.
    ``model.config`` rebuilds it: ``TimeUNet(**model.config)``.
    """

    def __init__(self, channels: int = 3, cond_channels: int = 0, base: int = 32, mults=(1, 2, 2),
                 attention: bool = True, groups: int = 8, dropout: float = 0.0, prediction: str = "eps"):
        super().__init__()
        _check_prediction(prediction)
        self.config = {"channels": channels, "cond_channels": cond_channels, "base": base, "mults": list(mults),
                       "attention": attention, "groups": groups, "dropout": dropout, "prediction": prediction}
        self.prediction = prediction
        self.channels, self.cond_channels, self.factor = channels, cond_channels, 2 ** (len(mults) - 1)
        emb_dim = 4 * base
        self.time_mlp = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Conv2d(channels + cond_channels, base, 3, padding=1)
        widths = [base * m for m in mults]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        ch = base
        for i, w in enumerate(widths):
            self.down.append(ResBlock(ch, w, emb_dim, groups, dropout))
            self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1) if i < len(widths) - 1 else nn.Identity())
            ch = w
        self.mid1 = ResBlock(ch, ch, emb_dim, groups, dropout)
        self.attn = SelfAttention(ch, groups) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, groups, dropout)
        self.up = nn.ModuleList()
        for w in reversed(widths):
            self.up.append(ResBlock(ch + w, w, emb_dim, groups, dropout))
            ch = w
        self.out = nn.Sequential(nn.GroupNorm(_groups(ch, groups), ch), nn.SiLU(), nn.Conv2d(ch, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != self.channels or h % self.factor or w % self.factor:
            raise ValueError(f"x_t must be (B, {self.channels}, H, W) with H, W multiples of {self.factor}, "
                             f"got {tuple(x.shape)}")
        if self.cond_channels:
            if cond is None or cond.shape != (b, self.cond_channels, h, w):
                raise ValueError(f"this model needs cond (B, {self.cond_channels}, H, W) = "
                                 f"{(b, self.cond_channels, h, w)}, got "
                                 f"{None if cond is None else tuple(cond.shape)}")
            x = torch.cat([x, cond.to(x.dtype)], dim=1)
        elif cond is not None:
            raise ValueError("this model is unconditional (cond_channels=0) but a cond tensor was given")
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(b)
        emb = self.time_mlp(timestep_embedding(t, self.time_mlp[0].in_features))
        x = self.inp(x)
        skips = []
        for block, down in zip(self.down, self.downsample):
            x = block(x, emb)
            skips.append(x)
            x = down(x)
        x = self.mid2(self.attn(self.mid1(x, emb)), emb)
        for block in self.up:
            skip = skips.pop()
            if x.shape[-1] != skip.shape[-1]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
            x = block(torch.cat([x, skip], dim=1), emb)
        return self.out(x)
