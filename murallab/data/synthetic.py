"""Procedural "murals": the built-in, offline dataset every notebook uses by default.

A Dunhuang wall painting, at the scale of a training patch, is made of a few recurring things:
smooth grounds of earth pigment on pale plaster, figures with concentric halos, robes whose drapery is
drawn with long flowing lines and striped patchwork, streaming ribbons, repeated pattern bands along the borders,
rows of small identical seated Buddhas (the "thousand Buddhas" that cover whole cave walls) and the long straight
rules that frame the panels; all of it faded, stained and grainy after a thousand years. ``make_mural`` draws
random combinations of these, so a network has to learn to continue lines, colour fields and periodic patterns
rather than memorise a picture. The repeated motifs are where a fill that only propagates the colours at a hole's
border fails: the missing Buddha is the next one of the row, not the colours around it.

Drawing is done with PIL at 2x resolution and box-downsampled (anti-aliasing); ageing is done in torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

__all__ = ["PALETTE", "make_mural", "make_murals"]

#: Mineral and earth pigments of the Dunhuang palette, as sRGB in [0, 1].
PALETTE = {
    "plaster": (0.88, 0.81, 0.67),
    "ochre": (0.80, 0.58, 0.28),
    "red_ochre": (0.58, 0.26, 0.17),
    "cinnabar": (0.79, 0.25, 0.15),
    "malachite": (0.30, 0.57, 0.45),
    "azurite": (0.24, 0.40, 0.64),
    "lamp_black": (0.13, 0.11, 0.10),
    "umber": (0.45, 0.33, 0.25),  # darkened lead white: the brown skin and robes of many caves
    "skin": (0.90, 0.74, 0.58),
}
_PIGMENTS = ["ochre", "red_ochre", "cinnabar", "malachite", "azurite", "umber"]
_SS = 2  # supersampling factor


def _colour(rng: np.random.Generator, name: str, jitter: float = 0.04) -> tuple[int, int, int]:
    c = np.clip(np.array(PALETTE[name]) + rng.normal(0, jitter, 3), 0, 1)
    return tuple(int(v * 255) for v in c)


def _pigment(rng, exclude=()):
    return _colour(rng, str(rng.choice([p for p in _PIGMENTS if p not in exclude])))


def _darker(c, f=0.55):
    return tuple(int(v * f) for v in c)


def _smooth_noise(rng, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1], ``(h, w)``: a ``cells``-sized grid upsampled bicubically."""
    small = rng.random((1, 1, cells + 3, cells + 3), dtype=np.float32)
    big = F.interpolate(torch.from_numpy(small), size=(h + 2 * h // cells, w + 2 * w // cells),
                        mode="bicubic", align_corners=False)[0, 0, h // cells:h // cells + h,
                                                               w // cells:w // cells + w]
    big = big - big.min()
    return (big / big.max().clamp_min(1e-6)).numpy()


def _ground(rng, h, w) -> Image.Image:
    """Plaster with soft fields of a secondary pigment."""
    plaster = np.array(_colour(rng, "plaster", 0.03), np.float32) / 255
    second = np.array(_colour(rng, str(rng.choice(["ochre", "malachite", "red_ochre", "umber"]))),
                      np.float32) / 255
    field = _smooth_noise(rng, h, w, int(rng.integers(2, 5)))
    amount = rng.uniform(0.1, 0.45) * np.clip((field - 0.35) / 0.4, 0, 1)[..., None]
    rgb = plaster * (1 - amount) + second * amount
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _wavy(rng, n, amp, periods):
    t = np.linspace(0, 1, n)
    phase = rng.uniform(0, 2 * np.pi)
    return amp * (np.sin(2 * np.pi * periods * t + phase) + 0.35 * np.sin(2 * np.pi * 2.7 * periods * t))


def _panel(draw, rng, h, w):
    """A large coloured panel with a wavy edge (a painted ground behind the figures)."""
    c = _pigment(rng, exclude=("cinnabar",))
    y0 = rng.uniform(0.45, 0.8) * h
    xs = np.linspace(-0.05 * w, 1.05 * w, 40)
    ys = y0 + _wavy(rng, 40, 0.04 * h, rng.uniform(0.5, 2))
    top = list(zip(xs, ys))
    if rng.random() < 0.5:  # panel below or above
        poly = top + [(1.05 * w, 1.05 * h), (-0.05 * w, 1.05 * h)]
    else:
        poly = top + [(1.05 * w, -0.05 * h), (-0.05 * w, -0.05 * h)]
    draw.polygon(poly, fill=c)
    draw.line(top, fill=_darker(c), width=max(1, int(0.006 * min(h, w))))


def _halo(draw, rng, cx, cy, radius, line):
    """Concentric rings, optionally fringed with flame tips."""
    n_rings = int(rng.integers(2, 5))
    if rng.random() < 0.5:  # flame-tipped outer ring
        k = int(rng.integers(14, 26))
        ang = np.linspace(0, 2 * np.pi, 2 * k, endpoint=False)
        rr = np.where(np.arange(2 * k) % 2 == 0, 1.12 * radius, 0.98 * radius)
        pts = list(zip(cx + rr * np.cos(ang), cy + rr * np.sin(ang)))
        draw.polygon(pts, fill=_pigment(rng), outline=line)
    for i in range(n_rings):
        r = radius * (1 - i / (n_rings + 0.6))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_pigment(rng), outline=line,
                     width=max(1, int(radius * 0.025)))


def _figure(draw, rng, cx, cy, s, line, lw, motifs):
    """A standing figure: halo, head, robe (striped patchwork or plain) with drapery folds.

    ``motifs`` is a second generator for the stripes, so that a mural's other elements do not depend on them.
    """
    _halo(draw, rng, cx, cy, 0.55 * s, line)
    # Robe: a flaring shape from the shoulders down, with sinuous sides.
    n = 30
    t = np.linspace(0, 1, n)
    top_y, bottom_y = cy + 0.35 * s, cy + 2.6 * s
    ys = top_y + t * (bottom_y - top_y)
    half = 0.35 * s + 0.55 * s * t**0.8
    left = cx - half + _wavy(rng, n, 0.06 * s, rng.uniform(1, 2.5))
    right = cx + half + _wavy(rng, n, 0.06 * s, rng.uniform(1, 2.5))
    robe = _pigment(rng)
    draw.polygon(list(zip(left, ys)) + list(zip(right[::-1], ys[::-1])), fill=robe, outline=line)
    if motifs.random() < 0.5:  # a kasaya of stripes: bands of a second pigment at a fixed period, seams between
        _stripes(draw, motifs, left, right, ys, robe, line, lw)
    # Drapery: flowing fold lines following the robe, in a darker shade of it.
    for _ in range(int(rng.integers(3, 8))):
        f = rng.uniform(0.1, 0.9)
        t0 = rng.uniform(0.0, 0.4)
        sel = t >= t0
        xs = left[sel] * (1 - f) + right[sel] * f + _wavy(rng, sel.sum(), 0.05 * s, rng.uniform(0.5, 1.5))
        draw.line(list(zip(xs, ys[sel])), fill=_darker(robe, 0.6), width=lw, joint="curve")
    # A sash across the robe.
    sash_y = top_y + rng.uniform(0.2, 0.5) * (bottom_y - top_y)
    xs = np.linspace(cx - 0.9 * s, cx + 0.9 * s, 20)
    draw.line(list(zip(xs, sash_y + _wavy(rng, 20, 0.08 * s, 1))), fill=_pigment(rng), width=3 * lw,
              joint="curve")
    # Head and a dark top-knot.
    hr = 0.22 * s
    draw.ellipse([cx - 0.45 * hr, cy - 1.55 * hr, cx + 0.45 * hr, cy - 0.7 * hr], fill=_colour(rng, "lamp_black"))
    skin = _colour(rng, str(rng.choice(["skin", "umber", "ochre"])), 0.05)
    draw.ellipse([cx - 0.8 * hr, cy - hr, cx + 0.8 * hr, cy + hr], fill=skin, outline=line, width=lw)


def _stripes(draw, rng, left, right, ys, robe, line, lw):
    """Horizontal bands across a robe whose sides are ``left(y)``, ``right(y)``: every other band of ``period``."""
    period = rng.uniform(0.06, 0.12) * (ys[-1] - ys[0])
    band = _pigment(rng)
    for y0 in np.arange(ys[0] + rng.uniform(0, period), ys[-1] - period / 2, period):
        y = np.array([y0, y0 + period / 2])
        xl, xr = np.interp(y, ys, left), np.interp(y, ys, right)
        draw.polygon([(xl[0], y[0]), (xr[0], y[0]), (xr[1], y[1]), (xl[1], y[1])], fill=band)
        draw.line([(xl[0], y[0]), (xr[0], y[0])], fill=_darker(robe, 0.6), width=lw)


def _thousand_buddhas(draw, rng, h, w, line, lw):
    """Rows of small identical seated Buddhas, a mandorla and a halo each, robes cycling through three pigments
    along the diagonals (as the thousand-Buddha walls are painted), over a horizontal band of the wall."""
    cell = rng.uniform(0.09, 0.15) * w
    rows = max(2, int(rng.uniform(0.35, 1.0) * h / (1.15 * cell)))
    y_top = rng.uniform(0, max(h - rows * 1.15 * cell, 1))
    robes = [_pigment(rng) for _ in range(3)]
    mandorla, halo, skin = _pigment(rng), _pigment(rng), _colour(rng, "skin", 0.03)
    x_off = rng.uniform(-cell, 0)
    for i in range(rows):
        cy = y_top + (i + 0.5) * 1.15 * cell
        for j, cx in enumerate(np.arange(x_off + cell / 2, w + cell, cell)):
            r = 0.42 * cell
            draw.ellipse([cx - r, cy - 0.55 * cell, cx + r, cy + 0.5 * cell], fill=mandorla, outline=line, width=lw)
            draw.ellipse([cx - 0.2 * cell, cy - 0.48 * cell, cx + 0.2 * cell, cy - 0.08 * cell], fill=halo,
                         outline=line, width=lw)
            draw.polygon([(cx - 0.33 * cell, cy + 0.38 * cell), (cx - 0.12 * cell, cy - 0.05 * cell),
                          (cx + 0.12 * cell, cy - 0.05 * cell), (cx + 0.33 * cell, cy + 0.38 * cell)],
                         fill=robes[(i + j) % 3], outline=line)
            draw.ellipse([cx - 0.09 * cell, cy - 0.36 * cell, cx + 0.09 * cell, cy - 0.14 * cell], fill=skin,
                         outline=line, width=max(1, lw // 2))
        draw.line([(0, cy + 0.55 * cell), (w, cy + 0.55 * cell)], fill=line, width=lw)


def _rules(draw, rng, h, w, line, lw):
    """The long straight double rules that frame a wall's panels, crossing the whole mural."""
    for _ in range(int(rng.integers(1, 4))):
        vertical = rng.random() < 0.5
        at = rng.uniform(0.15, 0.85) * (w if vertical else h)
        gap = rng.uniform(0.01, 0.025) * min(h, w)
        for d in (0, gap):
            pts = [(at + d, 0), (at + d, h)] if vertical else [(0, at + d), (w, at + d)]
            draw.line(pts, fill=line, width=lw)


def _ribbon(draw, rng, h, w, lw):
    """A streaming ribbon (the scarves of flying apsaras): a sinuous band of varying width."""
    n = 60
    t = np.linspace(0, 1, n)
    x0, y0 = rng.uniform(-0.1, 1.1) * w, rng.uniform(0, 1) * h
    ang = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(0.5, 1.2) * max(h, w)
    d = np.array([np.cos(ang), np.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    bend = _wavy(rng, n, rng.uniform(0.05, 0.15) * length, rng.uniform(0.6, 1.6))
    centre = np.array([x0, y0]) + np.outer(t * length, d) + np.outer(bend, nrm)
    width = rng.uniform(0.01, 0.03) * min(h, w) * (0.4 + np.sin(np.pi * t))
    a, b = centre + width[:, None] * nrm, centre - width[:, None] * nrm
    c = _pigment(rng)
    draw.polygon([tuple(p) for p in a] + [tuple(p) for p in b[::-1]], fill=c, outline=_darker(c))
    draw.line([tuple(p) for p in centre], fill=_darker(c, 0.7), width=max(1, lw // 2), joint="curve")


def _border(draw, rng, h, w, top: bool, lw):
    """A repeated pattern band: coloured ground, rule lines and a periodic motif."""
    bh = rng.uniform(0.07, 0.13) * h
    y0 = 0 if top else h - bh
    ground, motif, accent = _pigment(rng), _pigment(rng), _pigment(rng)
    line = _colour(rng, "lamp_black")
    draw.rectangle([0, y0, w, y0 + bh], fill=ground)
    period = rng.uniform(0.8, 1.5) * bh
    kind = int(rng.integers(0, 3))
    cy = y0 + bh / 2
    for i, cx in enumerate(np.arange(-period, w + period, period) + rng.uniform(0, period)):
        r = 0.32 * bh
        if kind == 0:  # alternating rhombi and roundels
            if i % 2:
                draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=motif, outline=line)
            else:
                draw.ellipse([cx - 0.6 * r, cy - 0.6 * r, cx + 0.6 * r, cy + 0.6 * r], fill=accent, outline=line)
        elif kind == 1:  # lotus petals
            draw.pieslice([cx - r, cy - r, cx + r, cy + r], 180, 360, fill=motif if i % 2 else accent, outline=line)
            draw.rectangle([cx - r, cy, cx + r, cy + 0.25 * r], fill=_darker(ground, 0.8))
        else:  # chequer of blocks
            draw.rectangle([cx - period / 2, y0 + (i % 2) * bh / 2, cx, y0 + (i % 2 + 1) * bh / 2], fill=motif)
    for yy in (y0 + 0.08 * bh, y0 + bh - 0.08 * bh):
        draw.line([(0, yy), (w, yy)], fill=line, width=lw)


def _scroll(draw, rng, h, w, lw):
    """A small cloud scroll: a spiral line."""
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    r = rng.uniform(0.03, 0.08) * min(h, w)
    t = np.linspace(0, rng.uniform(2.5, 4.5) * np.pi, 50)
    rr = r * t / t[-1]
    sgn = rng.choice([-1, 1])
    draw.line(list(zip(cx + rr * np.cos(sgn * t), cy + rr * np.sin(t))), fill=_pigment(rng), width=2 * lw,
              joint="curve")


def _age(rgb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Fading, stains and plaster grain on a ``(3, H, W)`` image in [0, 1]."""
    _, h, w = rgb.shape
    g = torch.Generator().manual_seed(int(rng.integers(2**62)))
    plaster = torch.tensor(PALETTE["plaster"]).view(3, 1, 1)
    rgb = torch.lerp(rgb, plaster, float(rng.uniform(0.08, 0.3)))  # pigments fade toward the plaster
    stain = torch.from_numpy(_smooth_noise(rng, h, w, int(rng.integers(3, 7))))
    brown = torch.tensor([0.85, 0.75, 0.62]).view(3, 1, 1)
    rgb = rgb * (1 - float(rng.uniform(0.05, 0.25)) * stain * (1 - brown))  # brownish stains
    grain = torch.randn(1, h, w, generator=g) * float(rng.uniform(0.015, 0.035))
    coarse = F.avg_pool2d(torch.randn(1, 1, h, w, generator=g), 3, 1, 1)[0] * 0.03
    return (rgb + grain + coarse).clamp(0, 1)


def make_mural(height: int, width: int | None = None, *, seed=0) -> torch.Tensor:
    """Draw a procedural mural.

    Args:
        height, width: size in pixels (``width`` defaults to ``height``); at least 16.
        seed: int or ``numpy.random.Generator``. The same seed gives the same mural.
    Returns:
        ``(3, H, W)`` float32 tensor in [0, 1].
    """
    width = height if width is None else width
    if height < 16 or width < 16:
        raise ValueError(f"a mural must be at least 16x16 pixels, got {height}x{width}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    motifs = rng.spawn(1)[0]  # the repeated motifs draw from their own stream: rng's draws stay as they were
    h, w = height * _SS, width * _SS
    img = _ground(rng, h, w)
    draw = ImageDraw.Draw(img)
    line = _colour(rng, str(rng.choice(["red_ochre", "lamp_black"])), 0.03)
    lw = max(1, int(0.005 * min(h, w)))
    if rng.random() < 0.6:
        _panel(draw, rng, h, w)
    buddhas = motifs.random() < 0.4
    if buddhas:
        _thousand_buddhas(draw, motifs, h, w, line, lw)
    for _ in range(int(rng.integers(0, 4))):
        _scroll(draw, rng, h, w, lw)
    for _ in range(int(rng.integers(0, 3))):
        _ribbon(draw, rng, h, w, lw)
    s = min(h, w) * rng.uniform(0.2, 0.45) * (0.6 if buddhas else 1)  # figure scale: smaller among the Buddhas
    for _ in range(int(rng.integers(1, 4))):
        _figure(draw, rng, rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.6) * h, s * rng.uniform(0.7, 1.2), line, lw,
                motifs)
    for _ in range(int(rng.integers(0, 2))):
        _ribbon(draw, rng, h, w, lw)
    if motifs.random() < 0.5:
        _rules(draw, motifs, h, w, line, lw)
    if rng.random() < 0.5:
        _border(draw, rng, h, w, top=True, lw=lw)
    if rng.random() < 0.5:
        _border(draw, rng, h, w, top=False, lw=lw)
    rgb = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
    rgb = F.avg_pool2d(rgb[None], _SS)[0]
    return _age(rgb, rng)


def make_murals(n: int, height: int, width: int | None = None, *, seed=0) -> torch.Tensor:
    """``n`` murals with seeds ``seed, seed + 1, …``: ``(n, 3, H, W)`` in [0, 1]."""
    return torch.stack([make_mural(height, width, seed=seed + i) for i in range(n)])
