"""Damage masks made of random-walk brush strokes.

Convention (library-wide): **1 = known pixel, 0 = hole**, float tensors of shape ``(1, H, W)`` or
``(B, 1, H, W)``. OpenCV, scikit-image and LaMa use the opposite (1 = hole): convert with ``1 - mask``.

How a random walk becomes damage
--------------------------------
Each stroke is a walk ``p_{k+1} = p_k + s_k (cos θ_k, sin θ_k)`` whose heading drifts,
``θ_{k+1} = θ_k + N(0, σ²)``, and whose brush radius drifts within bounds,
``r_k = r_0 · exp(0.35 · tanh(Σ_j N(0, 0.2²)))``. Steps are ``s_k = c · r_k`` long. Three kinds of stroke
imitate the damage seen on cave walls (sizes scale with the image; these are for 256 px):

==========  ===========  =========  ====  ===========================================
kind        radius       heading σ  c     looks like
==========  ===========  =========  ====  ===========================================
crack       1-2 px       0.25       2.0   thin, long, nearly straight fissures
flake       3-7 px       0.9        1.3   flaking pigment: medium bands, jagged edges
blotch      6-12 px      2.5        0.9   lingering walks: water stains, lost plaster
==========  ===========  =========  ====  ===========================================

Every mask draws a target hole ratio ``ρ ~ U(lo, hi)`` and walks until the damage covers ρ, within 5 %
of it, so the hole ratios are spread uniformly over the range. The hole is the union of the brush stamps up
to a stopping stamp, so the mask is binary by construction, and the stopping stamp is chosen so the hole
ratio lands within 5 % of ρ (or, where one stamp jumps over that, anywhere inside ``hole_ratio``).

Vectorised rendering
--------------------
The per-step loop (stamp a disc, count the new pixels, stop when there are enough) is how you would
write it first; ``bench/masks.py`` times it. Here a batch is done in three array passes instead:

1. all strokes of all masks are unrolled into stamps with cumulative sums (no loop over steps);
2. each walk's stop is predicted from the Poisson coverage law ``A (1 - exp(-added / A))``, where a
   stamp adds about ``2 r · s`` new pixels;
3. the stamps up to the stop are drawn with one broadcast ``centre + disc offsets`` per brush radius,
   and the hole pixels are counted. The masks that miss their target's window (about 6 in 10 on the first
   draw at (0.1, 0.4)) move their stop and are drawn again: first by a secant step (the prediction
   rescaled by the coverage actually reached), which lands about 5 times in 6, then by bisection. Masks
   whose strokes run out below the window get new strokes (5 times at most; then any count in range does).

Aiming at each mask's own target costs about 1.8 renders per mask at 256 px, where landing anywhere in the
range cost 1.05; it is what makes the hole ratios uniform (accepting any count in range piled them up low:
mean 0.224 for (0.1, 0.4)).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["random_walk_mask", "random_walk_masks", "hole_ratio", "check_mask", "composite"]

# kind: (probability, radius range at 256 px, heading sigma, steps range, step length / radius)
_STROKES = {
    "crack": (0.40, (1.0, 2.0), 0.25, (20, 60), 2.0),
    "flake": (0.42, (3.0, 7.0), 0.90, (10, 30), 1.3),
    "blotch": (0.18, (6.0, 12.0), 2.50, (8, 24), 0.9),
}
_KIND = {k: np.array(v) for k, v in zip(
    ("p", "r_lo", "r_hi", "sigma", "n_lo", "n_hi", "step"),
    zip(*[(p, r[0], r[1], s, n[0], n[1], c) for p, r, s, n, c in _STROKES.values()]))}
_MAX_RADIUS = 24  # pixels, after scaling to the image size
_CHUNK = 32  # masks rendered together
_MIN_RANGE = 0.01  # narrowest hole_ratio range
_MAX_TRIES = 50  # redraws of a mask before giving up
_TARGET_TOLERANCE = 0.05  # a mask's hole count may miss its drawn target by 5 % of it
_SAFETY = 1.25  # strokes drawn per mask: this many times the expected need


def _as_rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _hw(height: int, width: int | None) -> tuple[int, int]:
    width = height if width is None else width
    if height < 8 or width < 8:
        raise ValueError(f"mask size must be at least 8x8, got {height}x{width}")
    return int(height), int(width)


def _check_ratio(hole_ratio) -> tuple[float, float]:
    lo, hi = map(float, hole_ratio)
    if not (0.0 < lo < 1.0 and 0.0 < hi < 1.0 and hi - lo >= _MIN_RANGE - 1e-9):
        raise ValueError(f"hole_ratio must be a range (lo, hi) with 0 < lo, hi < 1 and hi - lo >= {_MIN_RANGE} "
                         f"(damage grows a whole brush stamp at a time), got {hole_ratio}")
    return lo, hi


def _segment_cumsum(v: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``v`` restarting at every segment of the given lengths."""
    c = np.cumsum(v)
    first = np.cumsum(lengths) - lengths
    return c - np.repeat(c[first] - v[first], lengths)


def _random_walk_steps(targets: np.ndarray, height: int, width: int, rng: np.random.Generator):
    """Draw strokes for each mask and unroll them into brush stamps.

    Args:
        targets: ``(B,)`` hole pixels each mask must reach. Strokes are drawn until their nominal area
            (length x width) reaches ``-ln(1 - ρ)·A`` times a safety factor: overlapping strokes cover a
            fraction ``1 - exp(-nominal / A)`` of the image, like raindrops on a pavement.
    Returns:
        ``b, y, x, r, c``: one entry per stamp, grouped by mask (``b`` non-decreasing) and in walk order
        inside each mask. ``y, x`` are pixel coordinates inside the image, ``r`` integer radii, ``c`` the
        stroke's step length in radii.
    """
    area = height * width
    scale = np.sqrt(area) / 256.0
    budget = -np.log1p(-targets / area) * area * _SAFETY
    # A pool of strokes, generously sized from the mean stroke area, truncated per mask below.
    p, r_mid, n_mid, c = _KIND["p"], (_KIND["r_lo"] + _KIND["r_hi"]) / 2, (_KIND["n_lo"] + _KIND["n_hi"]) / 2, _KIND["step"]
    mean_area = float(np.sum(p * n_mid * 2 * c * r_mid**2)) * scale**2 * max(scale, 1.0)
    pool = np.ceil(2 * budget / mean_area).astype(np.int64) + 4
    stroke_b = np.repeat(np.arange(len(targets)), pool)
    kind = rng.choice(len(p), size=len(stroke_b), p=p)
    radius0 = rng.uniform(_KIND["r_lo"][kind], _KIND["r_hi"][kind]) * scale
    n_steps = rng.integers(_KIND["n_lo"][kind], _KIND["n_hi"][kind] + 1)
    if scale > 1:  # longer walks on bigger images keep the shapes' proportions
        n_steps = np.ceil(n_steps * scale).astype(np.int64)
    nominal = n_steps * 2 * c[kind] * radius0**2
    before = _segment_cumsum(nominal, pool) - nominal  # nominal area of the mask's earlier strokes
    keep = before < np.repeat(budget, pool)
    stroke_b, kind, radius0, n_steps = stroke_b[keep], kind[keep], radius0[keep], n_steps[keep]
    S = len(stroke_b)

    # Unroll into one row per stamp; per-stroke quantities are repeated along their steps.
    sid = np.repeat(np.arange(S), n_steps)
    turn = rng.standard_normal(len(sid)) * _KIND["sigma"][kind][sid]
    theta = rng.uniform(0, 2 * np.pi, S)[sid] + _segment_cumsum(turn, n_steps)
    drift = np.tanh(_segment_cumsum(rng.standard_normal(len(sid)) * 0.2, n_steps))  # bounded width drift
    radius = np.clip(radius0[sid] * np.exp(0.35 * drift), 1.0, _MAX_RADIUS)
    length = np.maximum(c[kind][sid] * radius, 1.0)
    theta = theta.astype(np.float32)  # NumPy's float32 sin and cos are SIMD, about 20x faster than float64
    y = rng.uniform(0, height, S)[sid] + _segment_cumsum(length * np.sin(theta), n_steps)
    x = rng.uniform(0, width, S)[sid] + _segment_cumsum(length * np.cos(theta), n_steps)
    return stroke_b[sid], _reflect(y, height), _reflect(x, width), np.rint(radius).astype(np.int64), c[kind][sid]


def _reflect(t: np.ndarray, n: int) -> np.ndarray:
    """Pixel index of coordinate ``t`` on an axis of ``n`` pixels whose ends are mirrors.

    A walk that leaves the image comes back in: the mirrored coordinate is a triangle wave of period
    ``2n``, the distance from ``t`` to the nearest multiple of ``2n``.
    """
    folded = np.abs(t - 2 * n * np.round(t / (2 * n)))  # in [0, n]
    return np.minimum(folded.astype(np.int64), n - 1)


_DISCS: dict[tuple[int, int], np.ndarray] = {}  # (radius, row) -> flat offsets


def disc_offsets(r: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel offsets ``(dy, dx)`` of the digital disc of radius ``r``: ``dy² + dx² <= r² + r``."""
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    inside = dy**2 + dx**2 <= r * r + r
    return dy[inside], dx[inside]


def _flat_disc(r: int, row: int) -> np.ndarray:
    """Disc offsets flattened for an array whose rows are ``row`` pixels long (cached)."""
    if (r, row) not in _DISCS:
        dy, dx = disc_offsets(r)
        _DISCS[r, row] = (dy * row + dx).astype(np.intp)
    return _DISCS[r, row]


def _render(b, y, x, r, keep, n: int, height: int, width: int, canvas: np.ndarray | None = None) -> np.ndarray:
    """Known pixels left by the kept stamps: ``(n, H, W)`` bool, True = known, False = hole.

    Canvases start all known and each stamp clears its disc. They are padded by the largest radius, so
    no bounds checks are needed. Stamps are sorted by radius, and all stamps of one radius are drawn at
    once: ``canvas[centres + offsets] = False`` with the ``(stamps, disc pixels)`` index array built by
    broadcasting. ``canvas``: padded canvases ``(n, H + 2R, W + 2R)`` already holding earlier stamps, drawn
    into in place (holes only grow, so a walk's later stamps can be added to its earlier ones).
    """
    R = _MAX_RADIUS
    hp, wp = height + 2 * R, width + 2 * R
    if canvas is None:
        canvas = np.ones((n, hp, wp), dtype=bool)
    flat = canvas.reshape(-1)
    centre = (b * (hp * wp) + (y + R) * wp + (x + R))[keep]
    r = r[keep]
    order = np.argsort(r.astype(np.uint8), kind="stable")  # by radius, in walk order within a radius
    count = np.bincount(r)
    end = np.cumsum(count)
    for k in np.flatnonzero(count).tolist():
        same = order[end[k] - count[k]:end[k]]
        flat[(centre[same, None] + _flat_disc(k, wp)).ravel()] = False
    return canvas[:, R:R + height, R:R + width]


def _expected_coverage(b, r, c, area: int) -> np.ndarray:
    """Expected hole pixels of each mask after each stamp (one value per stamp).

    A stamp adds about ``2 r · step`` new pixels along its stroke; strokes fall at random, so the covered
    area follows the Poisson law ``A (1 - exp(-added / A))``. Measured, that law overpredicts by about 10 %
    (turning strokes overlap themselves), so ``added`` is scaled by 0.9: more first stops then land.
    """
    added = 0.9 * _segment_cumsum(2.0 * r * np.maximum(c * r, 1.0), np.bincount(b))
    return area * -np.expm1(-added / area)


def random_walk_masks(n: int, height: int, width: int | None = None, *, hole_ratio=(0.1, 0.4),
                      seed=None) -> torch.Tensor:
    """A batch of random-walk damage masks.

    Args:
        n: number of masks.
        height, width: mask size in pixels (``width`` defaults to ``height``).
        hole_ratio: ``(lo, hi)`` range of the hole fraction, at least 0.01 wide.
        seed: int, ``numpy.random.Generator`` or None (fresh entropy).
    Returns:
        ``(n, 1, H, W)`` float32 tensor, **1 = known, 0 = hole**; each mask's hole fraction is in
        ``[lo, hi]``.
    """
    height, width = _hw(height, width)
    lo, hi = _check_ratio(hole_ratio)
    rng = _as_rng(seed)
    known = np.empty((n, 1, height, width), dtype=np.float32)
    for i in range(0, n, _CHUNK):  # chunks bound the memory: a chunk's canvases take _CHUNK * 92 kB at 256 px
        _fill_masks(known[i:i + _CHUNK, 0], lo, hi, rng)
    return torch.from_numpy(known)


def _fill_masks(known: np.ndarray, lo: float, hi: float, rng) -> None:
    """Fill ``known``, ``(n, H, W)`` float32, with masks (1 = known) whose hole fractions are in ``[lo, hi]``."""
    n, height, width = known.shape
    area = height * width
    low, high = np.ceil(lo * area), np.floor(hi * area)  # allowed numbers of hole pixels
    targets = np.ceil(rng.uniform(lo, hi, n) * area)
    slack = np.maximum(_TARGET_TOLERANCE * targets, 1)  # each mask aims at its own target, within a slack
    want_lo, want_hi = np.maximum(targets - slack, low), np.minimum(targets + slack, high)
    todo = np.arange(n)
    for attempt in range(_MAX_TRIES):  # masks whose strokes fall short get new strokes
        if not len(todo):
            return
        b, y, x, r, c = _random_walk_steps(targets[todo], height, width, rng)
        m = np.arange(len(todo))
        first, last = np.searchsorted(b, m), np.searchsorted(b, m, side="right") - 1
        expected = _expected_coverage(b, r, c, area)
        # Stop each walk where its expected coverage reaches the target: one searchsorted for all masks
        # finds it, in a key that increases by mask and then along the walk...
        key = b * (2.0 * area) + expected
        stop = np.minimum(np.searchsorted(key, m * (2.0 * area) + targets[todo]), last)
        lo_k, hi_k = first - 1, last + 1  # the right stop lies strictly between these
        below = np.ones((len(m), height + 2 * _MAX_RADIUS, width + 2 * _MAX_RADIUS), dtype=bool)  # at lo_k
        step = np.arange(len(b))
        active, failed, first_try = m, [], True
        while len(active):
            # ...render the masks still open and count their holes: the stamps after lo_k, drawn onto the
            # canvas rendered at lo_k (every stop tried lies above it).
            slot = np.full(len(m), -1)  # canvas of each open mask
            slot[active] = np.arange(len(active))
            keep = (slot[b] >= 0) & (step > lo_k[b]) & (step <= stop[b])
            padded = below[active]
            drawn = _render(slot[b], y, x, r, keep, len(active), height, width, canvas=padded)
            count = area - np.array([np.count_nonzero(d) for d in drawn])  # hole pixels
            under, over = count < want_lo[todo[active]], count > want_hi[todo[active]]
            lo_k[active[under]], hi_k[active[over]] = stop[active[under]], stop[active[over]]
            below[active[under]] = padded[under]
            closed = hi_k[active] - lo_k[active] <= 1  # no stop left between the brackets
            short = under & (stop[active] == last[active]) & (attempt < 5)  # strokes ran out: draw new ones
            # a hit: within the target's slack, or, when one stamp jumps over the slack, anywhere in [lo, hi]
            ok = ~(under | over) | (closed & ~short & (count >= low) & (count <= high))
            for j in np.flatnonzero(ok):
                known[todo[active[j]]] = drawn[j]
            stuck = ~ok & closed
            failed += list(active[stuck])
            count, active = count[~ok & ~stuck], active[~ok & ~stuck]
            # Move the stop of the masks that missed: bisection, except on their first miss, where a secant
            # step rescales the target by (coverage expected at the stop) / (coverage reached) and usually lands.
            new_stop = (lo_k[active] + hi_k[active]) // 2
            if first_try:
                aim = targets[todo[active]] * expected[stop[active]] / np.maximum(count, 1)
                guess = np.minimum(np.searchsorted(key, active * (2.0 * area) + aim), last[active])
                new_stop = np.where((lo_k[active] < guess) & (guess < hi_k[active]), guess, new_stop)
            stop[active], first_try = new_stop, False
        todo = todo[np.array(failed, dtype=np.int64)]
    raise RuntimeError(f"could not draw a {height}x{width} mask with hole ratio in [{lo}, {hi}] in {_MAX_TRIES} "
                       f"tries; widen hole_ratio")


def random_walk_mask(height: int, width: int | None = None, *, hole_ratio=(0.1, 0.4),
                     seed=None) -> torch.Tensor:
    """One random-walk damage mask, ``(1, H, W)`` float32, 1 = known, 0 = hole.

    See :func:`random_walk_masks` for the arguments; this is its ``n = 1`` case.
    """
    return random_walk_masks(1, height, width, hole_ratio=hole_ratio, seed=seed)[0]


def hole_ratio(mask: torch.Tensor) -> torch.Tensor:
    """Fraction of hole pixels (``mask == 0``) per mask: ``(..., 1, H, W) -> (...)``."""
    return 1.0 - mask.float().mean(dim=(-3, -2, -1))


def composite(known: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """The restored image ``mask·known + (1 - mask)·fill``: known pixels exactly as given, holes from ``fill``.

    ``known`` and ``fill`` ``(B, C, H, W)`` (or ``(C, H, W)``), ``mask`` ``(B, 1, H, W)`` (or ``(1, H, W)``), 1 = known,
    0 = hole. Written as a selection, not a blend, so known pixels come back bit for bit even where ``fill`` is NaN
    or inf (the blend would give 0·NaN = NaN); gradients reach ``fill`` only through the holes.
    """
    return torch.where(mask.bool(), known, fill)


#: hole fraction above which a mask is taken to be in the other convention (1 = hole)
MAX_HOLE_RATIO = 0.6


def check_mask(mask: torch.Tensor, image: torch.Tensor | None = None, *, max_hole_ratio: float = MAX_HOLE_RATIO,
               name: str = "mask") -> torch.Tensor:
    """Validate a mask against the library convention and return it unchanged.

    Expects a float or bool tensor ``(1, H, W)`` or ``(B, 1, H, W)`` with values in {0, 1}, where
    **1 = known and 0 = hole**, whose spatial size matches ``image`` when given.

    A mask whose hole fraction exceeds ``max_hole_ratio`` most likely uses the opposite convention
    (1 = hole, as OpenCV, scikit-image and LaMa do) and is rejected; pass ``max_hole_ratio=1.0`` when the
    damage really is that extensive.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() not in (3, 4) or mask.shape[-3] != 1:
        raise ValueError(f"{name} must have shape (1, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    if image is not None and tuple(image.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(f"{name} is {tuple(mask.shape[-2:])} (H, W) but the image is "
                         f"{tuple(image.shape[-2:])}: a mask must have exactly its image's size")
    if torch.compiler.is_compiling():  # the checks below read values: not traceable (graph break)
        return mask
    values = torch.unique(mask)
    if not bool(((values == 0) | (values == 1)).all()):
        raise ValueError(f"{name} must be binary (1 = known, 0 = hole), found values such as "
                         f"{values[:6].tolist()}; threshold it first (load_mask does)")
    ratio = float(hole_ratio(mask).max())
    if ratio > max_hole_ratio:
        raise ValueError(
            f"{name} marks {ratio:.0%} of pixels as holes. murallab masks use 1 = known, 0 = hole; a mask "
            f"saved with 1 (white) = hole, as OpenCV, scikit-image and LaMa do, must be inverted "
            f"(1 - mask, or load_mask(..., hole_value=255)). If the damage really is this large, "
            f"pass max_hole_ratio=1.0.")
    return mask
