"""Notebook 07: reference answers."""

import numpy as np


def my_bin_means(values, ratios, edges):
    """One mean per bin ``[lo, hi)``, the last bin closed; NaN where a bin is empty."""
    values, ratios = np.asarray(values), np.asarray(ratios)
    out = []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        inside = (ratios >= lo) & ((ratios <= hi) if last else (ratios < hi))
        out.append(values[inside].mean() if inside.any() else float("nan"))
    return out


def my_bootstrap_ci(diffs, n_boot, seed):
    """Resample the images with replacement, average each resample, take the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    diffs = np.asarray(diffs)
    means = diffs[rng.integers(0, len(diffs), (n_boot, len(diffs)))].mean(1)
    return tuple(np.percentile(means, [2.5, 97.5]))
