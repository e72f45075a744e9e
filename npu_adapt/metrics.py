"""Accuracy metrics of a target tensor against its reference (docs/design.md "Accuracy metrics").

All arithmetic is float64 and streamed in blocks of consecutive elements (C order), so arrays
opened with ``np.load(mmap_mode="r")`` compare in bounded memory whatever their size or
memory layout.

Non-finite values: the error metrics are computed over the elements finite in both tensors;
NaN/Inf are counted on each side, and any position where the two disagree about a non-finite
value (a NaN or Inf in the target where the reference is finite, or the reverse) fails the
output with the count in the reason, so a NaN never hides behind good metrics elsewhere.
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
COUNTS = ("nan_target", "inf_target", "nan_reference", "inf_reference", "nonfinite_where_ref_finite", "ref_nonfinite_mismatch")

# numpy dtype kinds grouped by the quantity they hold: int64 against int32 token ids is the
# same quantity, float against integer is not.
DTYPE_CLASSES = {"f": "float", "i": "integer", "u": "integer", "b": "bool"}


def _blocks(shape: tuple, size: int):
    """Index tuples cutting an array of ``shape`` into consecutive C-order blocks of at most
    ``size`` elements (whole leading-axis slices where they fit). They depend on the shape
    alone, so two arrays of one shape are cut identically whatever their memory layout."""
    if not shape:
        yield ()
        return
    row = math.prod(shape[1:])
    if row <= size:
        step = max(1, size // max(row, 1))
        for start in range(0, shape[0], step):
            yield (slice(start, start + step),)
    else:
        for i in range(shape[0]):
            for rest in _blocks(shape[1:], size):
                yield (i, *rest)


def _chunks(array: np.ndarray):
    """The array's elements in C order, as float64 blocks (one block in memory at a time)."""
    for index in _blocks(array.shape, CHUNK_ELEMENTS):
        yield np.array(array[index], dtype=np.float64, order="C").reshape(-1)


def streamed_stats(array: np.ndarray) -> dict:
    """min/max/mean/std over the finite values and NaN/Inf counts (the keys of index.json
    entries), in one streamed float64 pass (Chan's parallel update keeps std accurate)."""
    low, high, count, mean, m2 = math.inf, -math.inf, 0, 0.0, 0.0
    nan = inf = 0
    for chunk in _chunks(array):
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


def dtype_class(dtype: np.dtype) -> str:
    return DTYPE_CLASSES.get(np.dtype(dtype).kind, np.dtype(dtype).name)


def ascend_verdict(cosine: float | None, max_abs_diff: float | None) -> str:
    """CANN's PyTorch precision-compare rule, with the CPU/GPU output as the benchmark."""
    if cosine is None or max_abs_diff is None or math.isnan(cosine) or math.isnan(max_abs_diff):
        return "No"
    if (cosine < 0.99 and max_abs_diff > 0.001) or cosine < 0.9 or max_abs_diff > 1:
        return "No"
    return "Yes"


def empty_result() -> dict:
    result = {name: None for name in FLOAT_METRICS}
    result.update({"top1_match": None, "top5_match": None})
    result.update({name: 0 for name in COUNTS})
    return result


def float_metrics(target: np.ndarray, reference: np.ndarray, atol: float, rtol: float) -> dict:
    """The element-wise metrics of two same-shape arrays, in two streamed passes (the first
    finds max|r| for max_rel_diff's eps)."""
    ref_abs_max = 0.0
    for r in _chunks(reference):
        finite = np.abs(r[np.isfinite(r)])
        if finite.size:
            ref_abs_max = max(ref_abs_max, float(finite.max()))
    eps = 1e-6 * ref_abs_max + TINY

    n = within = 0
    sum_abs = sum_sq = sum_rr = sum_tt = dot = 0.0
    max_abs = max_rel = 0.0
    counts = dict.fromkeys(COUNTS, 0)
    for t, r in zip(_chunks(target), _chunks(reference)):
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
        cosine = min(1.0, max(-1.0, dot / (norm_t * norm_r)))  # rounding can step past +-1
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


def topk_agreement(target: np.ndarray, reference: np.ndarray, k: int) -> tuple[float, int | None]:
    """Fraction of rows (all axes but the last) whose top-k class sets agree, and the first
    row (flattened index over the leading axes) where they do not (None when all agree)."""
    classes = target.shape[-1] if target.ndim else 1
    k = min(k, classes)
    rows = agree = 0
    first = None
    for index in _blocks(target.shape[:-1], max(1, CHUNK_ELEMENTS // max(classes, 1))):
        t = np.array(target[index], dtype=np.float64).reshape(-1, classes)
        r = np.array(reference[index], dtype=np.float64).reshape(-1, classes)
        if k == 1:
            same = t.argmax(axis=-1) == r.argmax(axis=-1)
        else:
            top_t = np.sort(np.argpartition(-t, k - 1, axis=-1)[:, :k], axis=-1)
            top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[:, :k], axis=-1)
            same = (top_t == top_r).all(axis=-1)
        if first is None and not same.all():
            first = rows + int(np.flatnonzero(~same)[0])
        rows += same.size
        agree += int(same.sum())
    return (agree / rows if rows else 1.0), first


def token_agreement(target: np.ndarray, reference: np.ndarray) -> dict:
    """Exact agreement of generated token ids, row by row (sequences may differ in length).

    ``first_mismatch`` is the position (index along the last axis) of the first differing
    token, in row ``first_mismatch_row``; a sequence that is a strict prefix of the other
    differs at its end. None when every row agrees exactly.
    """
    t = np.asarray(target).reshape(-1, target.shape[-1] if target.ndim else 1)
    r = np.asarray(reference).reshape(-1, reference.shape[-1] if reference.ndim else 1)
    matches = total = 0
    first_row = first = None
    for row, (t_row, r_row) in enumerate(zip(t, r)):
        common = min(t_row.size, r_row.size)
        differs = np.flatnonzero(t_row[:common] != r_row[:common])
        matches += common - differs.size
        total += max(t_row.size, r_row.size)
        position = int(differs[0]) if differs.size else (common if t_row.size != r_row.size else None)
        if first is None and position is not None:
            first_row, first = row, position
    return {
        "exact_match": first is None,
        "token_agreement": matches / total if total else 1.0,
        "first_mismatch": first,
        "first_mismatch_row": first_row,
        "length_target": int(t.shape[-1]),
        "length_reference": int(r.shape[-1]),
    }


def _fmt(value) -> str:
    return "undefined (no element finite in both)" if value is None else f"{value:.6g}"


def compare_output(target: np.ndarray, reference: np.ndarray, kind: str, criteria: dict) -> dict:
    """Every metric for one output, its Ascend verdict and pass/fail with the reason.

    ``kind`` is the adapter's declaration: ``hidden`` (error metrics), ``class_scores``
    (also top-1/top-5 agreement per row) or ``token_ids`` (exact token agreement).
    """
    criteria = {**DEFAULT_CRITERIA, **criteria}
    result = empty_result()
    result.update(
        kind=kind,
        shape_target=list(target.shape),
        shape_reference=list(reference.shape),
        dtype_target=str(target.dtype),
        dtype_reference=str(reference.dtype),
    )
    failures = _check_types(target, reference, kind)
    if failures:
        result.update(ascend_verdict="No", **{"pass": False, "reason": "; ".join(failures)})
        return result
    if kind == "token_ids":
        result.update(token_agreement(target, reference))
        ok = result["exact_match"]
        reason = None if ok else f"generated tokens differ from position {result['first_mismatch']} (row {result['first_mismatch_row']})"
        result.update(ascend_verdict="Yes" if ok else "No", **{"pass": ok, "reason": reason})
        return result

    result.update(float_metrics(target, reference, criteria["atol"], criteria["rtol"]))
    if kind == "class_scores":
        result["top1_match"], result["top1_first_mismatch_row"] = topk_agreement(target, reference, 1)
        result["top5_match"], result["top5_first_mismatch_row"] = topk_agreement(target, reference, 5)
    nonfinite = result["nonfinite_where_ref_finite"] + result["ref_nonfinite_mismatch"]
    result["ascend_verdict"] = "No" if nonfinite else ascend_verdict(result["cosine"], result["max_abs_diff"])

    if result["nonfinite_where_ref_finite"]:
        failures.append(f"{result['nonfinite_where_ref_finite']} NaN/Inf in target where reference is finite")
    if result["ref_nonfinite_mismatch"]:
        failures.append(f"{result['ref_nonfinite_mismatch']} NaN/Inf in reference where target differs")
    rel_l2, cosine = result["rel_l2"], result["cosine"]
    if rel_l2 is None or not rel_l2 < criteria["rel_l2_max"]:
        failures.append(f"rel_l2 {_fmt(rel_l2)} >= {criteria['rel_l2_max']}")
    if cosine is None or not cosine > criteria["cosine_min"]:
        failures.append(f"cosine {_fmt(cosine)} <= {criteria['cosine_min']}")
    for k in (1, 5):
        if kind == "class_scores" and criteria[f"top{k}"] and result[f"top{k}_match"] < 1.0:
            failures.append(f"top{k}_match {result[f'top{k}_match']:.6g} < 1 (first at row {result[f'top{k}_first_mismatch_row']})")
    result["pass"] = not failures
    result["reason"] = "; ".join(failures) if failures else None
    return result


def _check_types(target: np.ndarray, reference: np.ndarray, kind: str) -> list[str]:
    """Why two arrays cannot be compared element by element (empty when they can).

    A float16 target against a float32 reference is the point of a low-precision target and
    compares; float against integer means the outputs are not the same quantity.
    """
    failures = []
    t_class, r_class = dtype_class(target.dtype), dtype_class(reference.dtype)
    if t_class != r_class:
        failures.append(f"dtype mismatch: target {target.dtype} vs reference {reference.dtype}")
    elif t_class not in ("float", "integer", "bool"):
        failures.append(f"unsupported dtype {target.dtype}")
    if kind == "token_ids":
        # Generated sequences may differ in length; the batch (leading axes) may not.
        if target.shape[:-1] != reference.shape[:-1]:
            failures.append(f"shape mismatch: target {list(target.shape)} vs reference {list(reference.shape)}")
    elif target.shape != reference.shape:
        failures.append(f"shape mismatch: target {list(target.shape)} vs reference {list(reference.shape)}")
    return failures
