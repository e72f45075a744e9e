"""Accuracy metrics of a target tensor against its reference (DESIGN.md "Accuracy metrics").

All arithmetic is float64 and streamed in chunks of the flattened tensors, so arrays opened
with ``np.load(mmap_mode="r")`` compare in bounded memory whatever their size.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # 4M elements: 32 MB of float64 per operand
TINY = np.finfo(np.float64).tiny

DEFAULT_CRITERIA = {"rel_l2_max": 0.01, "cosine_min": 0.99, "atol": 1e-5, "rtol": 1e-3, "top1": True, "top5": False}

FLOAT_METRICS = (
    "max_abs_diff",
    "mean_abs_diff",
    "rmse",
    "rel_l2",
    "max_rel_diff",
    "cosine",
    "within_rtol_frac",
)


def _chunks(array: np.ndarray, size: int = CHUNK_ELEMENTS):
    flat = array.reshape(-1)
    for start in range(0, flat.size, size):
        yield flat[start : start + size].astype(np.float64)


def ascend_verdict(cosine: float | None, max_abs_diff: float | None) -> str:
    """CANN's PyTorch precision-compare rule, with the CPU/GPU output as the benchmark."""
    if cosine is None or max_abs_diff is None:
        return "No"
    if (cosine < 0.99 and max_abs_diff > 0.001) or cosine < 0.9 or max_abs_diff > 1:
        return "No"
    return "Yes"


def _empty_result() -> dict:
    result = {name: None for name in FLOAT_METRICS}
    result.update({"top1_match": None, "top5_match": None, "nan_target": 0, "inf_target": 0, "nan_reference": 0, "inf_reference": 0})
    return result


def float_metrics(target: np.ndarray, reference: np.ndarray, atol: float, rtol: float) -> dict:
    """The element-wise metrics, in two streamed passes (the first finds max|r| for eps)."""
    ref_abs_max = 0.0
    for r in _chunks(reference):
        finite = r[np.isfinite(r)]
        if finite.size:
            ref_abs_max = max(ref_abs_max, float(np.abs(finite).max()))
    eps = 1e-6 * ref_abs_max + TINY

    n = 0
    sum_abs = sum_sq = sum_rr = sum_tt = dot = 0.0
    max_abs = max_rel = 0.0
    within = 0
    counts = {"nan_target": 0, "inf_target": 0, "nan_reference": 0, "inf_reference": 0, "nonfinite_where_ref_finite": 0}
    for t, r in zip(_chunks(target), _chunks(reference)):
        t_finite, r_finite = np.isfinite(t), np.isfinite(r)
        counts["nan_target"] += int(np.isnan(t).sum())
        counts["inf_target"] += int(np.isinf(t).sum())
        counts["nan_reference"] += int(np.isnan(r).sum())
        counts["inf_reference"] += int(np.isinf(r).sum())
        counts["nonfinite_where_ref_finite"] += int((~t_finite & r_finite).sum())
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

    result = _empty_result()
    result.update({key: value for key, value in counts.items() if key != "nonfinite_where_ref_finite"})
    result["nonfinite_where_ref_finite"] = counts["nonfinite_where_ref_finite"]
    if n == 0:
        return result
    norm_r, norm_t = math.sqrt(sum_rr), math.sqrt(sum_tt)
    result.update(
        {
            "max_abs_diff": max_abs,
            "mean_abs_diff": sum_abs / n,
            "rmse": math.sqrt(sum_sq / n),
            # A zero reference has no relative error: 0 when the target is zero too.
            "rel_l2": math.sqrt(sum_sq) / norm_r if norm_r > 0 else (0.0 if sum_sq == 0 else math.inf),
            "max_rel_diff": max_rel,
            "cosine": dot / (norm_t * norm_r) if norm_t > 0 and norm_r > 0 else (1.0 if norm_t == norm_r else 0.0),
            "within_rtol_frac": within / target.size,
        }
    )
    return result


def topk_agreement(target: np.ndarray, reference: np.ndarray, k: int) -> float:
    """Fraction of rows (all axes but the last) whose top-k class sets agree."""
    rows_t = target.reshape(-1, target.shape[-1])
    rows_r = reference.reshape(-1, reference.shape[-1])
    k = min(k, rows_t.shape[-1])
    agree = 0
    step = max(1, CHUNK_ELEMENTS // rows_t.shape[-1])
    for start in range(0, rows_t.shape[0], step):
        t = np.asarray(rows_t[start : start + step], dtype=np.float64)
        r = np.asarray(rows_r[start : start + step], dtype=np.float64)
        if k == 1:
            agree += int((t.argmax(axis=-1) == r.argmax(axis=-1)).sum())
        else:
            top_t = np.sort(np.argpartition(-t, k - 1, axis=-1)[:, :k], axis=-1)
            top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[:, :k], axis=-1)
            agree += int((top_t == top_r).all(axis=-1).sum())
    return agree / rows_t.shape[0]


def token_agreement(target: np.ndarray, reference: np.ndarray) -> dict:
    """Exact agreement of token ids, and the first position (flattened) that differs."""
    t, r = np.asarray(target).reshape(-1), np.asarray(reference).reshape(-1)
    common = min(t.size, r.size)
    differs = np.flatnonzero(t[:common] != r[:common])
    first = int(differs[0]) if differs.size else (common if t.size != r.size else None)
    return {
        "exact_match": bool(t.size == r.size and differs.size == 0),
        "token_agreement": float((t[:common] == r[:common]).sum() / max(t.size, r.size, 1)),
        "first_mismatch": first,
    }


def compare_output(target: np.ndarray, reference: np.ndarray, kind: str, criteria: dict) -> dict:
    """Every metric for one output, its Ascend verdict and pass/fail with the reason."""
    result = _compare_output(target, reference, kind, {**DEFAULT_CRITERIA, **criteria})
    return {"kind": kind, **result}


def _compare_output(target: np.ndarray, reference: np.ndarray, kind: str, criteria: dict) -> dict:
    if target.shape != reference.shape and kind != "token_ids":
        result = _empty_result()
        result.update(ascend_verdict="No", **{"pass": False, "reason": f"shape mismatch: target {list(target.shape)} vs reference {list(reference.shape)}"})
        return result
    if kind == "token_ids":
        result = _empty_result()
        result.update(token_agreement(target, reference))
        ok = result["exact_match"]
        reason = None if ok else f"generated tokens differ from position {result['first_mismatch']}"
        result.update(ascend_verdict="Yes" if ok else "No", **{"pass": ok, "reason": reason})
        return result

    result = float_metrics(target, reference, criteria["atol"], criteria["rtol"])
    if kind == "class_scores":
        result["top1_match"] = topk_agreement(target, reference, 1)
        result["top5_match"] = topk_agreement(target, reference, 5)
    result["ascend_verdict"] = ascend_verdict(result["cosine"], result["max_abs_diff"])

    failures = []
    if target.dtype.kind != reference.dtype.kind:
        # float16 against float32 is the point of a low-precision target; float against
        # integer means the outputs are not the same quantity.
        failures.append(f"dtype mismatch: target {target.dtype} vs reference {reference.dtype}")
    if result["nonfinite_where_ref_finite"]:
        failures.append(f"{result['nonfinite_where_ref_finite']} NaN/Inf in target where reference is finite")
    if result["rel_l2"] is None or result["rel_l2"] >= criteria["rel_l2_max"]:
        failures.append(f"rel_l2 {result['rel_l2']} >= {criteria['rel_l2_max']}")
    if result["cosine"] is None or result["cosine"] <= criteria["cosine_min"]:
        failures.append(f"cosine {result['cosine']} <= {criteria['cosine_min']}")
    if kind == "class_scores" and criteria["top1"] and result["top1_match"] < 1.0:
        failures.append(f"top1_match {result['top1_match']} < 1")
    if kind == "class_scores" and criteria["top5"] and result["top5_match"] < 1.0:
        failures.append(f"top5_match {result['top5_match']} < 1")
    result["pass"] = not failures
    result["reason"] = "; ".join(failures) if failures else None
    return result
