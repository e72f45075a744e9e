"""Comparing a target dump with its reference dump (two index.json files).

Everything that can go wrong with the dumps themselves becomes an output with its status
and reason, never a crash and never a silent pass: an output missing on one side, or shapes
or dtypes that differ, ``fail``; a listed file that cannot be read is ``error`` (the evidence
itself is bad).

A model's status is its worst output's (pass < warn < fail < error). When the target ran
where the reference did (same device kind, compute dtype and precision modes) the
comparison is a determinism check, not a port: a passing one is ``self-check``.

A dump file that differs from the size or sha256 its index.json records
(npu_adapt.integrity) is an ``error`` output: the evidence itself is bad, whatever its
numbers say.

The error budget: for a target on an accelerator, a CPU run of the same model in the same
dtype (results/{model}/cpu-same-dtype/{dtype}/) is the yardstick of a healthy
implementation. Each float output reports ``error_ratio_vs_cpu_same_dtype``, the target's
rel_l2 over the CPU run's (both against the reference), and the opt-in criterion
``max_error_ratio`` fails an output above it (as Ascend's API standards judge NPU error by
its ratio to a GPU's).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu_adapt.integrity import file_problem
from npu_adapt.io import read_json
from npu_adapt.jobs import upstream_reason, upstream_status
from npu_adapt.metrics import compare_output, criteria_class, empty_result, resolve_criteria, worst_status

PLACEMENT_KEYS = ("device", "device_name", "dtype", "compute_dtype", "precision", "precision_modes")
INTEGRITY = "integrity: "

# compare.csv: one row per output tensor.
OUTPUT_COLUMNS = [
    "output",
    "kind",
    "status",
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "mean_abs_diff",
    "rmse",
    "max_rel_diff",
    "within_rtol_frac",
    "top1_match",
    "top5_match",
    "exact_match",
    "first_mismatch",
    "nan_target",
    "inf_target",
    "nan_reference",
    "inf_reference",
    "shape_target",
    "shape_reference",
    "dtype_target",
    "dtype_reference",
    "stored_dtype_target",
    "stored_dtype_reference",
    "cpu_same_dtype_rel_l2",
    "error_ratio_vs_cpu_same_dtype",
    "error_ratio_reason",
    "ascend_verdict",
    "reason",
]


def failed_output(kind: str, reason: str, status: str = "fail") -> dict:
    """An output that could not be compared: every metric null, the status and reason stated."""
    return {**empty_result(), "kind": kind, "ascend_verdict": "No", "status": status, "pass": False, "reason": reason}


def load_listed(index_path: Path, entry: dict) -> np.ndarray:
    """One tensor of an index.json, memory-mapped (compare streams it)."""
    return np.load(Path(index_path).parent / entry["file"], mmap_mode="r", allow_pickle=False)


def compute_dtype(index: dict, entry: dict | None = None) -> str | None:
    """What a dumped tensor (``entry``) was computed in: its own entry's, else the dump's
    (index.json ``compute_dtype``; older dumps say ``dtype``). Without ``entry``: the dump's."""
    return (entry or {}).get("compute_dtype") or index.get("compute_dtype") or index.get("dtype")


def integrity_problem(*listed: tuple[Path, dict | None]) -> str | None:
    """``integrity: ...`` naming every listed dump file that differs from its index entry."""
    problems = [file_problem(Path(index).parent / entry["file"], entry) for index, entry in listed if entry]
    problems = [problem for problem in problems if problem]
    return INTEGRITY + "; ".join(problems) if problems else None


def compare_indexes(
    reference_index: Path, target_index: Path, criteria: dict, default_kind: str = "hidden"
) -> tuple[dict, list[str]]:
    """Compare every tensor listed in two index.json files, matched by name, in the
    reference's order (targets-only tensors last). Returns ``(outputs, problems)``: each
    output's metrics and status, and ``name: reason`` for every output that did not pass."""
    reference, target = read_json(reference_index), read_json(target_index)
    ref_tensors = {t["name"]: t for t in reference["tensors"]}
    tgt_tensors = {t["name"]: t for t in target["tensors"]}
    outputs = {}
    for name, ref in ref_tensors.items():
        kind = ref.get("kind", default_kind)
        if problem := integrity_problem((reference_index, ref), (target_index, tgt_tensors.get(name))):
            outputs[name] = failed_output(kind, problem, status="error")  # the evidence itself is bad
            continue
        if name not in tgt_tensors:
            outputs[name] = failed_output(kind, "missing from target")
            continue
        try:
            r = load_listed(reference_index, ref)
            t = load_listed(target_index, tgt_tensors[name])
        except (OSError, ValueError) as exc:
            outputs[name] = failed_output(kind, f"cannot read dump: {type(exc).__name__}: {exc}", status="error")
        else:
            dtypes = (compute_dtype(target, tgt_tensors[name]), compute_dtype(reference, ref))
            outputs[name] = compare_output(t, r, kind, criteria, dtypes)
    for name in tgt_tensors.keys() - ref_tensors.keys():
        kind = tgt_tensors[name].get("kind", default_kind)
        reason = integrity_problem((target_index, tgt_tensors[name])) or "in target but not in reference"
        outputs[name] = failed_output(kind, reason, status="error" if reason.startswith(INTEGRITY) else "fail")
    problems = [f"{name}: {m['reason']}" for name, m in outputs.items() if m["status"] != "pass"]
    return outputs, problems


def placement_of(index: dict) -> dict:
    """What decides whether two dumps ran alike: device kind, compute dtype, precision modes."""
    return {
        "device_kind": (index.get("device") or "").split(":")[0] or None,
        "compute_dtype": compute_dtype(index),
        "precision_modes": index.get("precision_modes"),
    }


def target_criteria_class(target: dict) -> str:
    """The default criteria's class for a target dump: its compute dtype, and for float32
    whether its precision modes allowed TF32/HF32."""
    modes = target.get("precision_modes") or {}
    return criteria_class(compute_dtype(target) or "float32", bool(modes.get("reduced_float32")))


def error_ratio(target_rel_l2: float | None, yardstick_rel_l2: float | None) -> tuple[float | None, str | None]:
    """The target's rel_l2 over the CPU same-dtype run's, or None and why there is none."""
    if target_rel_l2 is None or yardstick_rel_l2 is None:
        return None, "rel_l2 undefined on one side (no element finite in both)"
    if yardstick_rel_l2 == 0:
        if target_rel_l2 == 0:
            return 1.0, None
        return None, "the CPU run in the same dtype matches the reference exactly: a ratio to 0 is undefined"
    return target_rel_l2 / yardstick_rel_l2, None


def apply_error_budget(
    outputs: dict, reference_index: Path, yardstick_index: Path | None, why_none: str | None, criteria: dict
) -> str | None:
    """Add each output's error ratio to the CPU same-dtype run (``why_none``: why there is no
    such run for this target), and judge it when ``max_error_ratio`` is set. Returns why
    there is no yardstick (None when there is one): none planned, or the planned run blocked."""
    yardstick, limit = {}, criteria.get("max_error_ratio")
    if yardstick_index is not None:
        document = read_json(yardstick_index)
        if reason := upstream_reason(cpu_same_dtype=document):
            why_none = reason
        else:
            yardstick, _ = compare_indexes(Path(reference_index), Path(yardstick_index), criteria)
    for name, metrics in outputs.items():
        ours = yardstick.get(name, {})
        metrics["cpu_same_dtype_rel_l2"] = ours.get("rel_l2")
        if metrics.get("kind") == "token_ids":
            ratio, reason = None, "token ids are compared by exact match, not by an error ratio"
        elif not yardstick:
            ratio, reason = None, why_none
        elif ours.get("status") == "error" or name not in yardstick:
            ratio, reason = None, f"the CPU same-dtype run has no usable {name}: {ours.get('reason', 'missing')}"
        else:
            ratio, reason = error_ratio(metrics.get("rel_l2"), ours.get("rel_l2"))
        metrics.update(error_ratio_vs_cpu_same_dtype=ratio, error_ratio_reason=reason)
        # Judged wherever a yardstick was planned: one that did not come (blocked) is a warn, never a pass.
        if limit is None or metrics["status"] in ("fail", "error") or yardstick_index is None:
            continue
        if ratio is not None and ratio > limit:
            problem, status = f"error_ratio_vs_cpu_same_dtype {ratio:.3g} > max_error_ratio {limit:g}", "fail"
        elif ratio is None and reason and metrics.get("kind") != "token_ids":
            problem, status = f"max_error_ratio not judged: {reason}", "warn"
        else:
            continue
        metrics["reason"] = "; ".join(filter(None, [metrics.get("reason"), problem]))
        metrics.update(status=worst_status([metrics["status"], status]), **{"pass": False})
    return None if yardstick else why_none


def compare_dumps(
    model: str,
    reference_index: Path,
    target_index: Path,
    config_criteria: dict | None = None,
    model_criteria: dict | None = None,
    cpu_same_dtype_index: Path | None = None,
    no_cpu_same_dtype_reason: str | None = None,
) -> dict:
    """compare.json for one model and target (docs/design.md "JSON shapes"). ``config_criteria``:
    the global ``accuracy:`` block; ``model_criteria``: the model's own; both over the dtype
    defaults. ``cpu_same_dtype_index``: the CPU run in the target's dtype, the error budget's
    yardstick (None with ``no_cpu_same_dtype_reason`` saying why there is none)."""
    reference, target = read_json(reference_index), read_json(target_index)
    klass = target_criteria_class(target)
    criteria, sources = resolve_criteria(klass, config_criteria, model, model_criteria)
    self_check = placement_of(reference) == placement_of(target)
    result = {
        "model": model,
        "status": "pass",
        "reason": None,
        "criteria": criteria,
        "criteria_class": klass,
        "criteria_source": sources,
        "self_check": self_check,
        "reference": {key: reference.get(key) for key in PLACEMENT_KEYS},
        "target": {key: target.get(key) for key in PLACEMENT_KEYS},
        "error_budget": {
            "cpu_same_dtype": str(cpu_same_dtype_index) if cpu_same_dtype_index else None,
            "reason": None if cpu_same_dtype_index else no_cpu_same_dtype_reason,
        },
        "outputs": {},
    }
    if target.get("test_perturbation"):
        result["target"]["test_perturbation"] = target["test_perturbation"]
    if upstream := upstream_status(reference=reference, target=target):
        status, reason = upstream
        result.update(status=status, reason=reason)
        return result
    result["outputs"], _ = compare_indexes(Path(reference_index), Path(target_index), criteria)
    if not result["outputs"]:
        result.update(status="fail", reason="no output to compare: the reference dump lists no tensor")
        return result
    result["error_budget"]["reason"] = apply_error_budget(
        result["outputs"], reference_index, cpu_same_dtype_index, no_cpu_same_dtype_reason, criteria
    )
    problems = [f"{name}: {m['reason']}" for name, m in result["outputs"].items() if m["status"] != "pass"]
    status = worst_status(m["status"] for m in result["outputs"].values())
    reason = "; ".join(problems) or None
    if self_check and status == "pass":
        place = placement_of(target)
        status = "self-check"
        reason = (
            "the target ran where the reference did "
            f"({place['device_kind']}, {place['compute_dtype']}, the same precision modes): "
            "this checks determinism, not a port"
        )
    result.update(status=status, reason=reason)
    return result
