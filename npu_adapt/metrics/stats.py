"""Tensor statistics of a dump (the index.json entries), streamed."""

from __future__ import annotations

import math

import numpy as np

from npu_adapt.metrics.chunks import chunks


def streamed_stats(array: np.ndarray) -> dict:
    """min/max/mean/std over the finite values and NaN/Inf counts (the keys of index.json
    entries), in one streamed float64 pass (Chan's parallel update keeps std accurate)."""
    low, high, count, mean, m2 = math.inf, -math.inf, 0, 0.0, 0.0
    nan = inf = 0
    for chunk in chunks(array):
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
        finite = chunk[np.isfinite(chunk)]
        if not finite.size:
            continue
        low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        chunk_mean = float(finite.mean())
        chunk_m2 = float(((finite - chunk_mean) ** 2).sum())
        total = count + finite.size
        delta = chunk_mean - mean
        mean += delta * finite.size / total
        m2 += chunk_m2 + delta * delta * count * finite.size / total
        count = total
    if not count:
        return {"min": None, "max": None, "mean": None, "std": None, "nan": nan, "inf": inf}
    return {"min": low, "max": high, "mean": mean, "std": math.sqrt(m2 / count), "nan": nan, "inf": inf}
