"""Element-wise error metrics of a float target against its reference, NaN/Inf counted on
each side, and CANN's precision-compare verdict."""

from __future__ import annotations

import math

import numpy as np

from npu_adapt.metrics.chunks import chunks

TINY = np.finfo(np.float64).tiny

FLOAT_METRICS = (
    "max_abs_diff",
    "mean_abs_diff",
    "rmse",
    "rel_l2",
    "max_rel_diff",
    "cosine",
    "within_rtol_frac",
)
COUNTS = (
    "nan_target",
    "inf_target",
    "nan_reference",
    "inf_reference",
    "nonfinite_where_ref_finite",
    "ref_nonfinite_mismatch",
)


def ascend_verdict(cosine: float | None, max_abs_diff: float | None) -> str:
    """CANN's PyTorch precision-compare rule, with the CPU/GPU output as the benchmark."""
    if cosine is None or max_abs_diff is None or math.isnan(cosine) or math.isnan(max_abs_diff):
        return "No"
    if (cosine < 0.99 and max_abs_diff > 0.001) or cosine < 0.9 or max_abs_diff > 1:
        return "No"
    return "Yes"


def empty_result() -> dict:
    result = {name: None for name in FLOAT_METRICS}
    result.update({"top1_match": None, "top5_match": None, "top1_near_ties": None, "top5_near_ties": None})
    result.update({name: 0 for name in COUNTS})
    return result


def float_metrics(target: np.ndarray, reference: np.ndarray, atol: float, rtol: float) -> dict:
    """The element-wise metrics of two same-shape arrays, in two streamed passes (the first
    finds max|r| for max_rel_diff's eps)."""
    ref_abs_max = 0.0
    for r in chunks(reference):
        finite = np.abs(r[np.isfinite(r)])
        if finite.size:
            ref_abs_max = max(ref_abs_max, float(finite.max()))
    eps = 1e-6 * ref_abs_max + TINY

    n = within = 0
    sum_abs = sum_sq = sum_rr = sum_tt = dot = 0.0
    max_abs = max_rel = 0.0
    counts = dict.fromkeys(COUNTS, 0)
    for t, r in zip(chunks(target), chunks(reference)):
        t_finite, r_finite = np.isfinite(t), np.isfinite(r)
        counts["nan_target"] += int(np.isnan(t).sum())
        counts["inf_target"] += int(np.isinf(t).sum())
        counts["nan_reference"] += int(np.isnan(r).sum())
        counts["inf_reference"] += int(np.isinf(r).sum())
        counts["nonfinite_where_ref_finite"] += int((~t_finite & r_finite).sum())
        # Where the reference is NaN/Inf the target agrees only with the same NaN/Inf.
        same_nonfinite = ~r_finite & ((t == r) | (np.isnan(t) & np.isnan(r)))
        counts["ref_nonfinite_mismatch"] += int((~r_finite & ~same_nonfinite).sum())
        within += int(same_nonfinite.sum())
        both = t_finite & r_finite
        t, r = t[both], r[both]
        diff = np.abs(t - r)
        n += t.size
        if t.size:
            max_abs = max(max_abs, float(diff.max()))
            max_rel = max(max_rel, float((diff / (np.abs(r) + eps)).max()))
        sum_abs += float(diff.sum())
        sum_sq += float(np.dot(diff, diff))
        sum_rr += float(np.dot(r, r))
        sum_tt += float(np.dot(t, t))
        dot += float(np.dot(t, r))
        within += int((diff <= atol + rtol * np.abs(r)).sum())

    result = empty_result()
    result.update(counts)
    if n == 0:
        return result
    norm_r, norm_t = math.sqrt(sum_rr), math.sqrt(sum_tt)
    if norm_r > 0:
        rel_l2 = math.sqrt(sum_sq) / norm_r
    else:  # an all-zero reference has no relative error: 0 when the target is zero too
        rel_l2 = 0.0 if sum_sq == 0 else math.inf
    if norm_t > 0 and norm_r > 0:
        # One square root of the product: identical outputs (dot == sum_tt == sum_rr) give exactly 1,
        # where norm_t * norm_r can round to just above dot. Rounding can still step past +-1.
        cosine = min(1.0, max(-1.0, dot / math.sqrt(sum_tt * sum_rr)))
    else:  # undefined for a zero vector: 1 when both are zero, 0 when only one is
        cosine = 1.0 if norm_t == norm_r else 0.0
    result.update(
        {
            "max_abs_diff": max_abs,
            "mean_abs_diff": sum_abs / n,
            "rmse": math.sqrt(sum_sq / n),
            "rel_l2": rel_l2,
            "max_rel_diff": max_rel,
            "cosine": cosine,
            "within_rtol_frac": within / target.size,
        }
    )
    return result
