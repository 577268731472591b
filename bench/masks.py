#!/usr/bin/env python
"""Random-walk mask throughput: the vectorised generator against a per-step Python loop.

    python bench/masks.py [--size 256] [--seconds 3]

Both run on one core (torch and NumPy single-threaded) in the same process, so the ratio holds on any
machine. The baseline is the loop you would write first, written fairly: per stroke, per step, update
heading and position, stamp a disc into the canvas through a slice, and count newly covered pixels
incrementally until the target coverage is reached. The goal is at least 2,000 masks/s at 256x256.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

from murallab.data import random_walk_masks
from murallab.data.masks import _STROKES, disc_offsets


def loop_mask(size: int, hole_ratio, rng: np.random.Generator) -> np.ndarray:
    """One mask, one stamp at a time: (H, W) bool, True = hole."""
    target = rng.uniform(*hole_ratio) * size * size
    hole = np.zeros((size, size), dtype=bool)
    covered = 0
    kinds = list(_STROKES.values())
    probs = [k[0] for k in kinds]
    discs = {}
    while covered < target:
        p, (r_lo, r_hi), sigma, (n_lo, n_hi), step = kinds[rng.choice(len(kinds), p=probs)]
        r0 = rng.uniform(r_lo, r_hi) * size / 256
        y, x, theta, drift = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, 2 * np.pi), 0.0
        for _ in range(rng.integers(n_lo, n_hi + 1)):
            drift += rng.normal(0, 0.2)
            r = int(round(min(max(r0 * np.exp(0.35 * np.tanh(drift)), 1), 24)))
            if r not in discs:
                dy, dx = disc_offsets(r)
                d = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
                d[dy + r, dx + r] = True
                discs[r] = d
            cy, cx = int(y) % size, int(x) % size
            y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, size), max(cx - r, 0), min(cx + r + 1, size)
            region = hole[y0:y1, x0:x1]
            stamp = discs[r][y0 - cy + r:y1 - cy + r, x0 - cx + r:x1 - cx + r]
            covered += int(np.count_nonzero(stamp & ~region))
            region |= stamp
            if covered >= target:
                break
            theta += rng.normal(0, sigma)
            y += max(step * r, 1) * np.sin(theta)
            x += max(step * r, 1) * np.cos(theta)
    return hole


def rate(fn, seconds: float) -> float:
    """Masks per second of ``fn(k) -> number of masks made`` over about ``seconds``."""
    fn(0)  # warm-up
    made, k, t0 = 0, 1, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        made += fn(k)
        k += 1
    return made / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    hr = (0.1, 0.4)
    loop = rate(lambda k: (loop_mask(args.size, hr, np.random.default_rng(k)), 1)[1], args.seconds)
    rows = [("per-step Python loop (baseline)", 1, loop)]
    for batch in (1, 16, 64):
        r = rate(lambda k, n=batch: len(random_walk_masks(n, args.size, hole_ratio=hr, seed=k)), args.seconds)
        rows.append((f"random_walk_masks, batch {batch}", batch, r))
    print(f"random-walk masks at {args.size}x{args.size}, hole ratio {hr}, 1 thread")
    print(f"{'method':<36} {'masks/s':>9} {'vs loop':>8}")
    for name, _, r in rows:
        print(f"{name:<36} {r:>9.0f} {r / loop:>7.1f}x")
    best = max(r for _, _, r in rows[1:])
    print(f"goal >= 2000 masks/s: {'met' if best >= 2000 else 'NOT met'} ({best:.0f})")


if __name__ == "__main__":
    main()
