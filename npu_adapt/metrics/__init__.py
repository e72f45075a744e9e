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

Modules, one per metric family: ``elementwise`` (error metrics, NaN/Inf counts, the Ascend
verdict), ``topk`` (class scores), ``tokens`` (token ids), ``stats`` (a dump's statistics),
``criteria`` (default criteria per dtype, overrides, statuses), ``chunks`` (the streaming);
this module holds :func:`compare_output`, which applies them to one output.
"""

from __future__ import annotations

import numpy as np

from npu_adapt.metrics.criteria import (
    CRITERIA_KEYS,
    SCHEMA,
    STATUS_RANK,
    criteria_class,
    criteria_classes,
    dtype_criteria,
    resolve_criteria,
    worst_status,
)
from npu_adapt.metrics.elementwise import COUNTS, FLOAT_METRICS, TINY, ascend_verdict, empty_result, float_metrics
from npu_adapt.metrics.stats import streamed_stats
from npu_adapt.metrics.tokens import token_agreement
from npu_adapt.metrics.topk import topk_agreement

__all__ = [
    "COUNTS",
    "CRITERIA_KEYS",
    "FLOAT_METRICS",
    "SCHEMA",
    "STATUS_RANK",
    "TINY",
    "ascend_verdict",
    "compare_output",
    "criteria_class",
    "criteria_classes",
    "dtype_class",
    "dtype_criteria",
    "empty_result",
    "float_metrics",
    "resolve_criteria",
    "streamed_stats",
    "token_agreement",
    "topk_agreement",
    "worst_status",
]

# numpy dtype kinds grouped by the quantity they hold: int64 against int32 token ids is the
# same quantity, float against integer is not.
DTYPE_CLASSES = {"f": "float", "i": "integer", "u": "integer", "b": "bool"}


def dtype_class(dtype: np.dtype) -> str:
    return DTYPE_CLASSES.get(np.dtype(dtype).kind, np.dtype(dtype).name)


def _fmt(value) -> str:
    return "undefined (no element finite in both)" if value is None else f"{value:.6g}"


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
                    f"top{k} disagrees on {agreement['mismatches']} row(s) beyond the near-tie band "
                    f"(first at row {agreement['first_hard_row']})"
                )
            if agreement["near_ties"]:
                warnings.append(
                    f"top{k} disagrees on {agreement['near_ties']} near-tied row(s): "
                    f"reference margin <= {agreement['max_tie_margin']:.3g}, "
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
