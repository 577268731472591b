"""SSIM and MS-SSIM (Wang et al. 2004, 2003): differentiable, and equal to scikit-image's reference SSIM.

For two images x, y, every pixel gets a Gaussian window (11 taps, σ = 1.5) and the weighted local moments

    μx = G*x,  μy = G*y,  σx² = G*(x²) - μx²,  σy² = G*(y²) - μy²,  σxy = G*(xy) - μx μy

(``*`` is a 2-D convolution with the window, done as two 1-D passes), from which

    SSIM = l · cs,   l = (2 μx μy + C1) / (μx² + μy² + C1),   cs = (2 σxy + C2) / (σx² + σy² + C2)

with C1 = (0.01 L)², C2 = (0.03 L)² and L the data range (1.0 for images in [0, 1]). ``l`` compares brightness,
``cs`` contrast and structure. SSIM is 1 for identical images and falls towards 0 (or below, for anti-correlated
content). The image's SSIM is the mean of this map over the windows, and over the channels.

Which implementation we match, and why
--------------------------------------
We match ``skimage.metrics.structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=L, channel_axis=...)``, which is Wang et al.'s definition as their MATLAB
``ssim_index.m`` computes it (their later ``ssim.m`` also downsamples images larger than about 256 pixels first;
scikit-image and we do not). Scikit-image filters with ``scipy.ndimage.gaussian_filter`` (``truncate=3.5``, so radius
``int(3.5·σ + 0.5) = 5`` and 11 taps; ``mode='reflect'``), then crops ``(win_size - 1) // 2 = 5`` pixels from every
side of the map before averaging. The cropped map holds exactly the windows that lie entirely inside the image,
so the padding never reaches the mean: it is a *valid* convolution. We compute that valid map directly (no padding,
less work); for an H×W image it has (H - 10)×(W - 10) entries. Covariances are population ones (divide by the
window's weight 1, not n - 1), as in the paper. Measured against scikit-image on its real photographs
(``tests/losses/test_ssim.py``): agreement to a few 1e-6 in float32 and to rounding (1e-13) in float64.

The maintained libraries, and the pitfalls students meet in them:

- **pytorch-msssim** (``pytorch_msssim.ssim``) also uses the valid convolution, so it agrees with us, *but its
  ``data_range`` defaults to 255*. Called on [0, 1] images without ``data_range=1``, C1 and C2 are 65,025 times too
  large and every pair of images scores close to 1.
- **torchmetrics** (``structural_similarity_index_measure``) reflect-pads the image by the window radius and, in
  its current releases, averages the whole padded map, border windows included. Those windows see mirrored pixels
  and agree more easily, so it reads higher than scikit-image, most visibly on small images where the border is a
  large share. With ``data_range=None`` (its default) it *guesses* L as the largest max - min of the two batches,
  so the same pair scores differently depending on what else is in the batch.
- **kornia** (``kornia.metrics.ssim``) pads by default (``padding='same'``) and returns the map, not its mean.
  ``kornia.losses.SSIMLoss`` is ``(1 - SSIM) / 2``, half of the ``1 - SSIM`` used by most papers (and by
  :class:`SSIMLoss` here), so a loss weight copied from a paper must be doubled for kornia.
- **scikit-image's own defaults** are not Wang et al.'s SSIM either: ``structural_similarity(x, y)`` uses a 7×7
  uniform window and sample covariance. The DLCV-2019 ``evaluate.py`` used those defaults.

How it is computed
------------------
The five moment maps of a batch are stacked and filtered by one depthwise convolution per direction in
channels-last layout (there oneDNN's depthwise kernel is several times faster on CPU than in NCHW). The gradient is
written out by hand (``_SSIMFunction.backward``): it needs only three or four maps filtered back (the transposed
filter), where autograd would replay every elementwise step. ``bench/ssim.py`` times it against kornia and
pytorch-msssim. In float32, ``E[x²] - E[x]²`` loses digits where a window is flat and bright; the images are
therefore shifted by their per-channel mean first (SSIM does not change; the variances keep their digits).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["ssim", "SSIM", "SSIMLoss", "ms_ssim", "MSSSIM", "gaussian_window", "MS_SSIM_WEIGHTS"]

K1, K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli & Bovik 2003, five scales
_REDUCTIONS = ("mean", "none", "map")


def gaussian_window(window: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """The 1-D Gaussian window ``exp(-k² / 2σ²)`` for ``k = -r..r`` (``r = window // 2``), normalised to sum 1.

    This is ``scipy.ndimage.gaussian_filter``'s kernel when ``window = 2·int(3.5·σ + 0.5) + 1`` (11 for σ = 1.5),
    the window scikit-image uses. Returns shape ``(window,)``.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of taps, got {window}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    k = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-0.5 * (k / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(maps: list[torch.Tensor], g: torch.Tensor, adjoint: bool = False) -> list[torch.Tensor]:
    """Filter each ``(B, C, H, W)`` map with the separable window ``g``.

    ``adjoint=False``: valid convolution, ``(H, W) -> (H - k + 1, W - k + 1)``.
    ``adjoint=True``: its transpose (zero-padded full convolution, ``g`` is symmetric), back to ``(H + k - 1, ...)``;
    this is what the backward pass needs.
    """
    c, n, pad = maps[0].shape[1], len(maps) * maps[0].shape[1], (g.numel() - 1 if adjoint else 0)
    t = torch.cat(maps, 1).contiguous(memory_format=torch.channels_last)
    t = F.conv2d(t, g.view(1, 1, 1, -1).expand(n, 1, 1, -1), padding=(0, pad), groups=n)
    t = F.conv2d(t, g.view(1, 1, -1, 1).expand(n, 1, -1, 1), padding=(pad, 0), groups=n)
    return list(t.contiguous().split(c, 1))


class _SSIMFunction(torch.autograd.Function):
    """``(x, y) -> (ssim_map, cs_map)`` over the valid windows, with the gradient written out by hand.

    Write x' = x - cx and y' = y - cy (cx, cy: per-channel means, treated as constants, since SSIM does not depend
    on them), mx = G*x', mxx = G*x'², mxy = G*x'y' and so on. Then μx = mx + cx, σx² = mxx - mx², σxy = mxy - mx my,
    a1 = 2 μx μy + C1, b1 = μx² + μy² + C1, a2 = 2 σxy + C2, b2 = σx² + σy² + C2, l = a1/b1 and cs = a2/b2.
    Given the upstream gradients gS (of S = l·cs) and gcs, let gl = gS·cs and gc = gS·l + gcs. Then

        ∂/∂mx  = gl·2(μy - l μx)/b1 + gc·2(cs mx - my)/b2        (∂/∂my: swap x and y)
        ∂/∂mxx = ∂/∂myy = -gc·cs/b2,       ∂/∂mxy = 2 gc/b2

    and, with Gᵀ the transposed filter,  ∂L/∂x = Gᵀ(∂/∂mx) + 2x'·Gᵀ(∂/∂mxx) + y'·Gᵀ(∂/∂mxy).
    """

    @staticmethod
    def forward(ctx, x, y, g, c1: float, c2: float):
        cx, cy = x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True)
        x, y = x - cx, y - cy                  # x', y': SSIM does not change, float32 variances keep their digits
        mx, my, mxx, myy, mxy = _blur([x, y, x * x, y * y, x * y], g)             # G*x', G*y', G*x'², ...
        mu_x, mu_y = mx + cx, my + cy                                               # μx, μy
        var_x, var_y, cov_xy = mxx - mx * mx, myy - my * my, mxy - mx * my          # σx², σy², σxy
        a1, b1 = 2 * mu_x * mu_y + c1, mu_x ** 2 + mu_y ** 2 + c1
        a2, b2 = 2 * cov_xy + c2, var_x + var_y + c2
        ssim_map = (a1 * a2) / (b1 * b2)  # ((2 μx μy + C1)(2 σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2))
        cs = a2 / b2                      # contrast-structure alone: MS-SSIM's finer scales use it
        ctx.save_for_backward(x, y, g, mu_x, mu_y, mx, my, a1, cs, b1, b2)
        ctx.set_materialize_grads(False)
        return ssim_map, cs

    @staticmethod
    @once_differentiable
    def backward(ctx, g_s, g_cs):
        x, y, g, mu_x, mu_y, mx, my, a1, cs, b1, b2 = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[:2]
        if g_s is None and g_cs is None:
            return None, None, None, None, None
        lum = a1 / b1                                                               # l
        # In-place and fused (addcmul) steps: the maps are large and the work is memory-bound.
        gc = g_cs.clone() if g_s is None else (g_s * lum if g_cs is None else torch.addcmul(g_cs, g_s, lum))
        con = gc.mul_(2).div_(b2)                                                   # 2 gc / b2
        d_mx = (cs * mx).sub_(my).mul_(con)                                         # ∂/∂mx, cs part
        d_my = (cs * my).sub_(mx).mul_(con)
        if g_s is not None:
            gl = (g_s * cs).mul_(2).div_(b1)                                        # 2 gl / b1
            d_mx.addcmul_(gl, torch.addcmul(mu_y, lum, mu_x, value=-1))             # + gl·2(μy - l μx)/b1
            d_my.addcmul_(gl, torch.addcmul(mu_x, lum, mu_y, value=-1))
        d_var = (con * cs).mul_(-0.5)                                               # -gc cs / b2
        t = _blur([d_mx] * need_x + [d_my] * need_y + [d_var, con], g, adjoint=True)
        gx = torch.addcmul(t[0], x, t[-2], value=2).addcmul_(y, t[-1]) if need_x else None
        gy = torch.addcmul(t[int(need_x)], y, t[-2], value=2).addcmul_(x, t[-1]) if need_y else None
        return gx, gy, None, None, None


def _check(x: torch.Tensor, y: torch.Tensor, window: int, data_range: float) -> None:
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.dim() != 4 or x.shape != y.shape:
        raise ValueError(f"x and y must both be (B, C, H, W) with the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    if not (x.is_floating_point() and y.is_floating_point()):
        raise TypeError(f"x and y must be floating point (images in [0, data_range]), got {x.dtype} and {y.dtype}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least window x window = {window}x{window}, got "
                         f"{x.shape[-2]}x{x.shape[-1]}")
    if not data_range > 0:
        raise ValueError(f"data_range must be positive (1.0 for images in [0, 1], 255 for [0, 255]), got {data_range}")


def _maps(x, y, data_range: float, window: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and cs maps, ``(B, C, H - window + 1, W - window + 1)``, computed in float32 or float64."""
    _check(x, y, window, data_range)
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)  # half -> float32
    g = gaussian_window(window, sigma, dtype=dtype, device=x.device)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    with torch.autocast(x.device.type, enabled=False):
        return _SSIMFunction.apply(x.to(dtype), y.to(dtype), g, c1, c2)


def ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
         reduction: str = "mean") -> torch.Tensor:
    """Structural similarity of two image batches, as scikit-image computes it (module docstring).

    Args:
        x, y: ``(B, C, H, W)`` float images in ``[0, data_range]``; any C (1 for grey), ``H, W >= window``.
            Symmetric in x and y. Half precision is computed in float32.
        data_range: L, the span of pixel values: 1.0 for [0, 1] (the library's convention), 255 for [0, 255].
        window, sigma: taps and standard deviation of the Gaussian window. scikit-image ties them as
            ``window = 2·int(3.5·sigma + 0.5) + 1``; the defaults 11 and 1.5 are Wang et al.'s.
        reduction: ``"mean"``: one number, the mean over images, channels and windows (equal to the mean of the
            per-image values); ``"none"``: per image, ``(B,)``; ``"map"``: the SSIM map
            ``(B, C, H - window + 1, W - window + 1)``, whose entry ``[i, j]`` is the window centred on pixel
            ``(i + window // 2, j + window // 2)``.

    Returns:
        SSIM in [-1, 1] (1 = identical), shaped by ``reduction``. Differentiable in x and y (once).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    s, _ = _maps(x, y, data_range, window, sigma)
    if reduction == "map":
        return s
    return s.mean((1, 2, 3)) if reduction == "none" else s.mean()


def _halve(t: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling; an odd last row/column is repeated first (MATLAB's 'symmetric' padding)."""
    h, w = t.shape[-2:]
    if h % 2 or w % 2:
        t = F.pad(t, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(t, 2)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5,
            weights=MS_SSIM_WEIGHTS, reduction: str = "mean") -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003).

    The images are halved (2×2 mean) ``len(weights) - 1`` times. At every scale but the coarsest, the mean
    contrast-structure term ``cs`` is kept; at the coarsest, the full SSIM. Per image and channel,
    ``MS-SSIM = Π_j cs_j^{w_j} · SSIM_M^{w_M}``, then averaged over channels.

    Args:
        x, y: ``(B, C, H, W)`` float images in ``[0, data_range]``. With the default 5 scales and 11 taps, H and W
            must be at least 161 (the coarsest scale must still hold one window).
        data_range, window, sigma: as :func:`ssim`.
        weights: exponents per scale, finest first (default: the paper's five).
        reduction: ``"mean"`` (a number) or ``"none"`` (``(B,)``).

    Returns:
        MS-SSIM in [0, 1]. A scale whose mean cs (or SSIM) is negative counts as 0, as in pytorch-msssim, and
        passes no gradient. pytorch-msssim pads odd sizes with zeros before halving; we repeat the last
        row/column, so the two agree exactly only when every halving meets even sizes (e.g. 256×256).
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none' for ms_ssim, got {reduction!r}")
    h, w = x.shape[-2:]
    for _ in range(len(weights) - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
    if min(h, w) < window:
        need = (window - 1) * 2 ** (len(weights) - 1) + 1
        raise ValueError(f"ms_ssim with {len(weights)} scales and a {window}-tap window needs images of at least "
                         f"{need}x{need}, got {x.shape[-2]}x{x.shape[-1]}; use ssim or fewer weights")
    values = []
    for j in range(len(weights)):
        s, cs = _maps(x, y, data_range, window, sigma)
        values.append((s if j == len(weights) - 1 else cs).mean((2, 3)))
        if j < len(weights) - 1:
            x, y = _halve(x), _halve(y)
    v = torch.stack(values)  # (scales, B, C)
    w = torch.as_tensor(weights, dtype=v.dtype, device=v.device).view(-1, 1, 1)
    powered = torch.where(v > 0, v.clamp_min(torch.finfo(v.dtype).tiny) ** w, torch.zeros_like(v))
    per_image = powered.prod(0).mean(1)
    return per_image if reduction == "none" else per_image.mean()


class SSIM(nn.Module):
    """Module form of :func:`ssim`: ``SSIM(data_range=1.0, window=11, sigma=1.5, reduction="mean")(x, y)``.

    Returns the similarity (1 = identical). For a loss use :class:`SSIMLoss`.
    """

    def __init__(self, data_range: float = 1.0, window: int = 11, sigma: float = 1.5, reduction: str = "mean"):
        super().__init__()
        self.data_range, self.window, self.sigma, self.reduction = data_range, window, sigma, reduction

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, data_range=self.data_range, window=self.window, sigma=self.sigma, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}, window={self.window}, sigma={self.sigma}, reduction={self.reduction!r}"


class SSIMLoss(SSIM):
    """``1 - SSIM(x, y)``: 0 for identical images, up to 2. ``reduction`` ``"mean"`` or ``"none"`` (per image).

    This is the form papers weight (e.g. seed 000's "SSIM 0.5"). kornia's ``SSIMLoss`` is ``(1 - SSIM) / 2``.
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 1 - super().forward(x, y)


class MSSSIM(nn.Module):
    """Module form of :func:`ms_ssim`: ``MSSSIM(data_range=1.0, window=11, sigma=1.5, weights=..., reduction=...)``."""

    def __init__(self, data_range: float = 1.0, window: int = 11, sigma: float = 1.5, weights=MS_SSIM_WEIGHTS,
                 reduction: str = "mean"):
        super().__init__()
        self.data_range, self.window, self.sigma, self.reduction = data_range, window, sigma, reduction
        self.weights = tuple(weights)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ms_ssim(x, y, data_range=self.data_range, window=self.window, sigma=self.sigma, weights=self.weights,
                       reduction=self.reduction)
