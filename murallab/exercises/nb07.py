"""Notebook 07, evaluation: scores per hole-ratio bin, and how sure a lead is."""

from __future__ import annotations

import numpy as np

from ._common import NotYet, call, check, number


def check_bin_means(fn) -> bool:
    """``fn(values, ratios, edges) -> list``: the mean of ``values`` over the images whose hole ratio lies in each bin
    ``[edges[k], edges[k + 1])`` (the last bin includes its upper edge); NaN for an empty bin. Compared with the
    same means computed with ``numpy.digitize``."""
    what = "means per hole-ratio bin"

    def body():
        rng = np.random.default_rng(9)
        edges = [0.01, 0.1, 0.2, 0.3, 0.4, 0.6]
        ratios = np.concatenate([rng.uniform(0.01, 0.6, 40), edges])  # every edge itself too
        values = rng.normal(25, 3, len(ratios))
        cases = [(values, ratios), (values[ratios < 0.3], ratios[ratios < 0.3])]  # the last bins empty
        for v, r in cases:
            k = np.minimum(np.digitize(r, edges) - 1, len(edges) - 2)  # the upper edge joins the last bin
            want = [v[k == b].mean() if (k == b).any() else np.nan for b in range(len(edges) - 1)]
            out = call(fn, v.copy(), r.copy(), list(edges))
            try:
                got = [number(x, "a mean", nan=True) for x in out]
            except TypeError:
                raise NotYet("return one mean per bin: a list of len(edges) - 1 numbers") from None
            if len(got) != len(want):
                raise NotYet(f"{len(edges)} edges make {len(want)} bins; got {len(got)} means")
            if not np.allclose(got, want, equal_nan=True):
                wrong = next(b for b in range(len(want)) if not np.allclose(got[b], want[b], equal_nan=True))
                if np.isnan(want[wrong]):
                    raise NotYet(f"bin {wrong} holds no image: its mean is NaN (np.nan), not a number")
                raise NotYet(f"bin {wrong} ({edges[wrong]:.0%}-{edges[wrong + 1]:.0%}): expected {want[wrong]:.3f}, "
                             f"got {got[wrong]:.3f}. A ratio on an edge belongs to the bin it opens (lo <= r < hi), "
                             "except the last edge, which closes the last bin")
        return "per-bin means match numpy.digitize"

    return check(what, body)


def check_bootstrap_ci(fn) -> bool:
    """``fn(diffs, n_boot, seed) -> (low, high)``: a 95 % percentile bootstrap interval for the mean of the per-image
    differences ``diffs`` (resample the images with replacement ``n_boot`` times, take each resample's mean, return
    the 2.5th and 97.5th percentiles). Checked against the normal approximation ``mean ± 1.96 · sd / sqrt(n)``,
    which the bootstrap matches for a few hundred roughly normal values."""
    what = "a bootstrap interval for the mean gain"

    def body():
        rng = np.random.default_rng(10)
        for n, mu, sd in ((400, 0.6, 1.5), (900, -0.2, 0.8)):
            diffs = rng.normal(mu, sd, n)
            out = call(fn, diffs.copy(), 2000, 0)
            try:
                low, high = (number(x, "an interval end") for x in out)
            except (TypeError, ValueError):
                raise NotYet("return two numbers: (low, high)") from None
            half = 1.96 * diffs.std(ddof=1) / np.sqrt(n)
            mean = diffs.mean()
            if not low < mean < high:
                raise NotYet(f"the interval ({low:.3f}, {high:.3f}) should contain the mean of diffs, {mean:.3f}")
            width = high - low
            if abs(width - 2 * 1.96 * diffs.std()) < 0.15 * width:
                raise NotYet("that is the spread of single images: take the mean of each resample, then the "
                             "percentiles of those means")
            if abs(width - 2 * half) > 0.15 * 2 * half or abs((low + high) / 2 - mean) > 0.3 * half:
                raise NotYet(f"expected about ({mean - half:.3f}, {mean + half:.3f}) (mean ± 1.96 sd / sqrt(n)), "
                             f"got ({low:.3f}, {high:.3f}); resample len(diffs) values with replacement each time")
        return "bootstrap interval agrees with mean ± 1.96 · sd / sqrt(n)"

    return check(what, body)
