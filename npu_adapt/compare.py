"""Comparing a target dump with its reference dump (two index.json files).

Everything that can go wrong with the dumps themselves (an output missing on one side, a
listed file that cannot be read, shapes or dtypes that differ) becomes a failed output with
its reason, never a crash and never a silent pass. A dump file that differs from the size or
sha256 its index.json records (npu_adapt.integrity) makes the comparison ``error``: the
evidence itself is bad, whatever its numbers say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu_adapt.integrity import file_problem
from npu_adapt.io import read_json
from npu_adapt.jobs import upstream_reason
from npu_adapt.metrics import DEFAULT_CRITERIA, empty_result, compare_output

PLACEMENT_KEYS = ("device", "device_name", "dtype")
INTEGRITY = "integrity: "

# compare.csv: one row per output tensor.
OUTPUT_COLUMNS = [
    "output",
    "kind",
    "pass",
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
    "ascend_verdict",
    "reason",
]


def failed_output(kind: str, reason: str) -> dict:
    """An output that could not be compared: every metric null, the reason stated."""
    return {**empty_result(), "kind": kind, "ascend_verdict": "No", "pass": False, "reason": reason}


def load_listed(index_path: Path, entry: dict) -> np.ndarray:
    """One tensor of an index.json, memory-mapped (compare streams it)."""
    return np.load(Path(index_path).parent / entry["file"], mmap_mode="r", allow_pickle=False)


def integrity_problem(*listed: tuple[Path, dict | None]) -> str | None:
    """``integrity: ...`` naming every listed dump file that differs from its index entry."""
    problems = [file_problem(Path(index).parent / entry["file"], entry) for index, entry in listed if entry]
    problems = [problem for problem in problems if problem]
    return INTEGRITY + "; ".join(problems) if problems else None


def compare_indexes(reference_index: Path, target_index: Path, criteria: dict, default_kind: str = "hidden") -> tuple[dict, list[str]]:
    """Compare every tensor listed in two index.json files, matched by name, in the
    reference's order (targets-only tensors last). Returns ``(outputs, failures)``."""
    reference, target = read_json(reference_index), read_json(target_index)
    ref_tensors = {t["name"]: t for t in reference["tensors"]}
    tgt_tensors = {t["name"]: t for t in target["tensors"]}
    outputs, failures = {}, []
    for name, ref in ref_tensors.items():
        kind = ref.get("kind", default_kind)
        if problem := integrity_problem((reference_index, ref), (target_index, tgt_tensors.get(name))):
            outputs[name] = failed_output(kind, problem)
        elif name not in tgt_tensors:
            outputs[name] = failed_output(kind, "missing from target")
        else:
            try:
                r = load_listed(reference_index, ref)
                t = load_listed(target_index, tgt_tensors[name])
            except (OSError, ValueError) as exc:
                outputs[name] = failed_output(kind, f"cannot read dump: {type(exc).__name__}: {exc}")
            else:
                outputs[name] = compare_output(t, r, kind, criteria)
        if not outputs[name]["pass"]:
            failures.append(f"{name}: {outputs[name]['reason']}")
    for name in tgt_tensors.keys() - ref_tensors.keys():
        reason = integrity_problem((target_index, tgt_tensors[name])) or "in target but not in reference"
        outputs[name] = failed_output(tgt_tensors[name].get("kind", default_kind), reason)
        failures.append(f"{name}: {reason}")
    return outputs, failures


def compare_dumps(model: str, reference_index: Path, target_index: Path, criteria: dict) -> dict:
    """compare.json for one model (DESIGN.md "JSON shapes")."""
    criteria = {**DEFAULT_CRITERIA, **criteria}
    reference, target = read_json(reference_index), read_json(target_index)
    result = {
        "model": model,
        "status": "pass",
        "reason": None,
        "criteria": criteria,
        "reference": {key: reference.get(key) for key in PLACEMENT_KEYS},
        "target": {key: target.get(key) for key in PLACEMENT_KEYS},
        "outputs": {},
    }
    if target.get("test_perturbation"):
        result["target"]["test_perturbation"] = target["test_perturbation"]
    if reason := upstream_reason(reference=reference, target=target):
        upstream_error = "error" in (reference.get("status"), target.get("status"))
        result.update(status="error" if upstream_error else "blocked", reason=reason)
        return result
    result["outputs"], failures = compare_indexes(Path(reference_index), Path(target_index), criteria)
    if not result["outputs"]:
        failures.append("no output to compare: the reference dump lists no tensor")
    if bad_evidence := [failure for failure in failures if INTEGRITY in failure]:
        result.update(status="error", reason="; ".join(bad_evidence))
    elif failures:
        result.update(status="fail", reason="; ".join(failures))
    return result
