"""Accuracy metrics of a target tensor against its reference (docs/design.md "Accuracy metrics").

All arithmetic is float64 and streamed in blocks of consecutive elements (C order), so arrays
opened with ``np.load(mmap_mode="r")`` compare in bounded memory whatever their size or
memory layout.

Non-finite values: the error metrics are computed over the elements finite in both tensors;
NaN/Inf are counted on each side, and any position where the two disagree about a non-finite
value (a NaN or Inf in the target where the reference is finite, or the reverse) fails the
output with the count in the reason, so a NaN never hides behind good metrics elsewhere.

Verdicts: every output gets ``status`` pass / warn / fail and the reason of every warn and
fail. The criteria default to the target's compute dtype (:func:`dtype_criteria`, read from
the config schema, the one place they are defined); a key set in the config wins.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np

CHUNK_ELEMENTS = 1 << 22  # 4M elements: 32 MB of float64 per operand
TINY = np.finfo(np.float64).tiny

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"
CRITERIA_KEYS = (
    "rel_l2_max",
    "rel_l2_fail",
    "cosine_min",
    "cosine_floor",
    "atol",
    "rtol",
    "within_min",
    "top1",
    "top5",
    "token_prefix",
    "max_error_ratio",
)
# Output and model status, best to worst (a model's is its worst output's).
STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}

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
    result.update({"top1_match": None, "top5_match": None, "top1_near_ties": None, "top5_near_ties": None})
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


def _tie_margins(t: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether the top-k class sets agree, and where they do not, the reference's
    margin between the classes involved: the lowest reference score of the classes the
    target dropped minus the highest of those it took in (for k=1, r[ref argmax] -
    r[target argmax]). A small margin means the reference itself nearly tied."""
    if k == 1:
        top_t, top_r = t.argmax(axis=-1)[:, None], r.argmax(axis=-1)[:, None]
    else:
        top_t = np.sort(np.argpartition(-t, k - 1, axis=-1)[:, :k], axis=-1)
        top_r = np.sort(np.argpartition(-r, k - 1, axis=-1)[:, :k], axis=-1)
    same = (top_t == top_r).all(axis=-1)
    margins = np.zeros(same.shape)
    for row in np.flatnonzero(~same):
        dropped = np.setdiff1d(top_r[row], top_t[row])
        taken = np.setdiff1d(top_t[row], top_r[row])
        margins[row] = r[row, dropped].min() - r[row, taken].max()
    return same, margins


def topk_agreement(target: np.ndarray, reference: np.ndarray, k: int, band: float = 0.0) -> dict:
    """Top-k agreement of class scores, row by row (all axes but the last).

    ``match``: the fraction of rows whose top-k sets agree; ``first_mismatch_row``: the first
    row (flattened over the leading axes) where they do not. A disagreeing row whose
    reference margin (:func:`_tie_margins`) is within ``band`` times the row's RMS is a
    near-tie (``near_ties``, largest margin in ``max_tie_margin``); the others are
    ``mismatches`` (first in ``first_hard_row``)."""
    classes = target.shape[-1] if target.ndim else 1
    k = min(k, classes)
    rows = agree = ties = 0
    first = first_hard = tie_margin = tie_band = None
    for index in _blocks(target.shape[:-1], max(1, CHUNK_ELEMENTS // max(classes, 1))):
        t = np.array(target[index], dtype=np.float64).reshape(-1, classes)
        r = np.array(reference[index], dtype=np.float64).reshape(-1, classes)
        same, margins = _tie_margins(t, r, k)
        bands = band * np.sqrt(np.mean(r * r, axis=-1))
        for row in np.flatnonzero(~same):
            first = rows + int(row) if first is None else first
            if margins[row] <= bands[row]:
                ties += 1
                if tie_margin is None or margins[row] > tie_margin:
                    tie_margin, tie_band = float(margins[row]), float(bands[row])
            elif first_hard is None:
                first_hard = rows + int(row)
        rows += same.size
        agree += int(same.sum())
    return {
        "match": agree / rows if rows else 1.0,
        "first_mismatch_row": first,
        "near_ties": ties,
        "mismatches": rows - agree - ties,
        "first_hard_row": first_hard,
        "max_tie_margin": tie_margin,
        "tie_band": tie_band,
    }


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


@cache
def _dtype_table() -> dict:
    import yaml

    if not SCHEMA.is_file():
        raise FileNotFoundError(
            f"{SCHEMA}: the config schema (it defines the default accuracy criteria per dtype) is missing"
        )
    return yaml.safe_load(SCHEMA.read_text())["$defs"]["dtype_criteria"]


def criteria_classes() -> list[str]:
    """The compute-dtype classes that have default criteria (float32, float32_tf32, ...)."""
    return list(_dtype_table())


def dtype_criteria(criteria_class: str) -> dict:
    """The default criteria of a compute-dtype class (a copy), from the config schema."""
    table = _dtype_table()
    if criteria_class not in table:
        raise ValueError(f"no default accuracy criteria for {criteria_class!r}; known: {', '.join(table)}")
    return dict(table[criteria_class]["criteria"])


def dtype_rationale(criteria_class: str) -> str:
    return " ".join(_dtype_table()[criteria_class]["rationale"].split())


def criteria_class(compute_dtype: str, reduced_float32: bool = False) -> str:
    """Which default criteria apply: float16 and bfloat16 by name; float32 splits on whether
    the device may run float32 matmuls/convolutions in TF32/HF32 (10-bit mantissa)."""
    if compute_dtype == "float32" and reduced_float32:
        return "float32_tf32"
    return compute_dtype if compute_dtype in _dtype_table() else "float32"


def resolve_criteria(
    criteria_class: str, config: dict | None = None, model: str | None = None, model_overrides: dict | None = None
) -> tuple[dict, dict]:
    """The criteria that apply and where each came from: the dtype default, overridden by the
    global ``accuracy:`` block (``config``), overridden by the model's own block."""
    criteria = dtype_criteria(criteria_class)
    sources = dict.fromkeys(criteria, f"dtype default ({criteria_class})")
    for layer, where in (
        (config or {}, "config (accuracy.{key})"),
        (model_overrides or {}, f"model override (models.{model}.accuracy.{{key}})"),
    ):
        for key, value in layer.items():
            criteria[key] = value
            sources[key] = where.format(key=key)
    return criteria, sources


def worst_status(statuses) -> str:
    """The worst of output statuses (pass < warn < fail < error); pass for none."""
    return max(statuses, key=STATUS_RANK.__getitem__, default="pass")


def compare_output(
    target: np.ndarray,
    reference: np.ndarray,
    kind: str,
    criteria: dict,
    compute_dtypes: tuple[str | None, str | None] = (None, None),
) -> dict:
    """Every metric for one output, its Ascend verdict, and its status with the reason.

    ``kind`` is the adapter's declaration: ``hidden`` (error metrics), ``class_scores``
    (also top-1/top-5 agreement per row) or ``token_ids`` (exact token agreement).
    ``compute_dtypes``: what target and reference computed in (index.json ``compute_dtype``;
    the .npy stores bfloat16 widened to float32); the stored dtypes are reported beside them.
    Criteria keys not given come from the defaults of the target's compute dtype.

    ``fail``: the output is wrong (NaN/Inf where the reference is finite, shape or dtype
    mismatch, cosine under its floor, rel_l2 over its fail limit, a class disagreement that
    is no near-tie, generated tokens differing before ``token_prefix``). ``warn``: above the
    dtype's expected band but usable (rel_l2 over rel_l2_max, cosine under cosine_min, class
    disagreements that are all near-ties, tokens differing at or after ``token_prefix``).
    """
    compute_target = compute_dtypes[0] or str(target.dtype)
    criteria = {**dtype_criteria(criteria_class(compute_target)), **criteria}
    result = empty_result()
    result.update(
        kind=kind,
        shape_target=list(target.shape),
        shape_reference=list(reference.shape),
        dtype_target=compute_target if dtype_class(target.dtype) == "float" else str(target.dtype),
        dtype_reference=(compute_dtypes[1] or str(reference.dtype))
        if dtype_class(reference.dtype) == "float"
        else str(reference.dtype),
        stored_dtype_target=str(target.dtype),
        stored_dtype_reference=str(reference.dtype),
    )
    failures = _check_types(target, reference, kind)
    if failures:
        return _verdict(result, failures, [], ascend="No")
    if kind == "token_ids":
        result.update(token_agreement(target, reference))
        first, prefix = result["first_mismatch"], criteria["token_prefix"]
        warnings = []
        if first is not None:
            where = f"generated tokens differ from position {first} (row {result['first_mismatch_row']})"
            if prefix is None or first < prefix:
                failures.append(where + ("" if prefix is None else f", before token_prefix {prefix}"))
            else:
                warnings.append(where + f", at or after token_prefix {prefix}")
        return _verdict(result, failures, warnings, ascend="Yes" if first is None else "No")

    result.update(float_metrics(target, reference, criteria["atol"], criteria["rtol"]))
    warnings = []
    if kind == "class_scores":
        for k in (1, 5):
            agreement = topk_agreement(target, reference, k, band=2 * criteria["rel_l2_max"])
            result[f"top{k}_match"] = agreement["match"]
            result[f"top{k}_first_mismatch_row"] = agreement["first_mismatch_row"]
            result[f"top{k}_near_ties"] = agreement["near_ties"]
            result[f"top{k}_max_tie_margin"] = agreement["max_tie_margin"]
            if not criteria[f"top{k}"] or agreement["match"] == 1.0:
                continue
            if agreement["mismatches"]:
                failures.append(
                    f"top{k} disagrees on {agreement['mismatches']} row(s) beyond the near-tie band (first at row {agreement['first_hard_row']})"
                )
            if agreement["near_ties"]:
                warnings.append(
                    f"top{k} disagrees on {agreement['near_ties']} near-tied row(s): reference margin <= {agreement['max_tie_margin']:.3g}, "
                    f"within the band {agreement['tie_band']:.3g} (2 x rel_l2_max x the row's RMS)"
                )
    nonfinite = result["nonfinite_where_ref_finite"] + result["ref_nonfinite_mismatch"]
    ascend = "No" if nonfinite else ascend_verdict(result["cosine"], result["max_abs_diff"])

    if result["nonfinite_where_ref_finite"]:
        failures.append(f"{result['nonfinite_where_ref_finite']} NaN/Inf in target where reference is finite")
    if result["ref_nonfinite_mismatch"]:
        failures.append(f"{result['ref_nonfinite_mismatch']} NaN/Inf in reference where target differs")
    rel_l2, cosine = result["rel_l2"], result["cosine"]
    if rel_l2 is None or rel_l2 > criteria["rel_l2_fail"]:
        failures.append(f"rel_l2 {_fmt(rel_l2)} > rel_l2_fail {criteria['rel_l2_fail']}")
    elif rel_l2 > criteria["rel_l2_max"]:
        warnings.append(f"rel_l2 {_fmt(rel_l2)} > rel_l2_max {criteria['rel_l2_max']}")
    if cosine is None or cosine < criteria["cosine_floor"]:
        failures.append(f"cosine {_fmt(cosine)} < cosine_floor {criteria['cosine_floor']}")
    elif cosine < criteria["cosine_min"]:
        warnings.append(f"cosine {_fmt(cosine)} < cosine_min {criteria['cosine_min']}")
    within = result["within_rtol_frac"]
    if criteria["within_min"] is not None and within is not None and within < criteria["within_min"]:
        warnings.append(f"within_rtol_frac {within:.6g} < within_min {criteria['within_min']}")
    return _verdict(result, failures, warnings, ascend=ascend)


def _verdict(result: dict, failures: list[str], warnings: list[str], ascend: str) -> dict:
    """fail when anything failed, else warn when anything warned, else pass; every reason."""
    result["ascend_verdict"] = ascend
    result["status"] = "fail" if failures else "warn" if warnings else "pass"
    result["pass"] = result["status"] == "pass"  # the original contract's boolean, kept beside the level
    result["reason"] = "; ".join(failures + warnings) or None
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
