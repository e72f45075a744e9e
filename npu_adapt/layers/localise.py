"""Comparing the two layer dumps row by row, in execution order, and naming the first row
that crosses the threshold: where a divergence starts.

- ``tensors`` dumps compare element by element (npu_adapt.compare / metrics: rel_l2,
  cosine...; a row passes as a model output would).
- ``stats`` dumps compare their statistics. The L2 norm and the mean bound the error from
  below: ``|‖t‖ − ‖r‖| ≤ ‖t − r‖`` and ``|mean(t) − mean(r)|·√n ≤ ‖t − r‖``, so
  ``rel_l2 ≥ max(norm_rel_change, mean_shift)`` with ``mean_shift = |Δmean|·√n / ‖r‖``. A row
  whose bound reaches ``rel_l2_max`` certainly fails the criterion (no false alarm); a row
  under it may still differ element by element, which only a ``tensors`` capture shows.
  The localisation is statistics-level, and says so.
"""

from __future__ import annotations

import math
from pathlib import Path

from npu_adapt.compare import compare_indexes, target_criteria_class
from npu_adapt.io import read_json, write_json
from npu_adapt.jobs import upstream_status
from npu_adapt.metrics import dtype_criteria

ROW_KEYS = ["order", "kind", "name", "module", "type", "io", "shape", "dtype_reference", "dtype_target"]
TENSOR_COLUMNS = [
    *ROW_KEYS,
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "mean_abs_diff",
    "max_rel_diff",
    "nan_target",
    "inf_target",
    "status",
    "reason",
]
STATS_COLUMNS = [
    *ROW_KEYS,
    "rel_l2_lower_bound",
    "norm_rel_change",
    "mean_shift",
    "min_rel_change",
    "max_rel_change",
    "norm_reference",
    "norm_target",
    "mean_reference",
    "mean_target",
    "nan_target",
    "inf_target",
    "bit_identical",
    "status",
    "reason",
]
LOCALISATION = {
    "tensors": "tensor-level: every captured tensor compared element by element (rel_l2, cosine)",
    "stats": "statistics-level: a row is flagged when its L2 norm or mean moved enough to prove rel_l2 >= rel_l2_max; "
    "a row not flagged may still differ element by element (set layers: tensors on a narrowed layer_pattern to see)",
}
FIRST_KEYS = (
    "order",
    "kind",
    "name",
    "module",
    "type",
    "io",
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "rel_l2_lower_bound",
    "norm_rel_change",
    "mean_shift",
    "reason",
)


def columns(mode: str | None) -> list[str]:
    return STATS_COLUMNS if mode == "stats" else TENSOR_COLUMNS


def write_layer_index(directory: Path, header: dict, entries: list[dict]) -> None:
    """A side's layer index.json: the dump's header (model, role, device, status, mode...) and
    one entry per captured tensor."""
    write_json(Path(directory) / "index.json", {**header, "tensors": entries})


def _relative(target: float | None, reference: float | None, scale: float | None) -> float | None:
    if target is None or reference is None or scale is None:
        return None
    if scale == 0:
        return 0.0 if target == reference else math.inf
    return abs(target - reference) / scale


def stats_changes(reference: dict, target: dict) -> dict:
    """How each statistic moved, target against reference (relative changes), and the lower
    bound of rel_l2 they prove."""
    norm = reference.get("norm")
    finite = (reference.get("numel") or 0) - reference.get("nan", 0) - reference.get("inf", 0)
    span = max(abs(reference["min"]), abs(reference["max"])) if reference.get("min") is not None else None
    changes = {
        "norm_rel_change": _relative(target.get("norm"), norm, norm),
        "mean_shift": _relative(
            target.get("mean"), reference.get("mean"), norm / math.sqrt(finite) if norm is not None and finite else None
        ),
        "min_rel_change": _relative(target.get("min"), reference.get("min"), span),
        "max_rel_change": _relative(target.get("max"), reference.get("max"), span),
    }
    bounds = [value for value in (changes["norm_rel_change"], changes["mean_shift"]) if value is not None]
    changes["rel_l2_lower_bound"] = max(bounds) if bounds else None
    return changes


def stats_verdict(reference: dict, target: dict, changes: dict, criteria: dict) -> tuple[list[str], list[str]]:
    """Why a stats row fails, and why it warns (both empty when it passes). The proven bound
    warns from ``rel_l2_max`` (above the dtype's expected band) and fails from ``rel_l2_fail``."""
    failures, warnings = [], []
    if reference.get("shape") != target.get("shape"):
        return [f"shape mismatch: target {target.get('shape')} vs reference {reference.get('shape')}"], []
    if (target.get("nan"), target.get("inf")) != (reference.get("nan"), reference.get("inf")):
        failures.append(
            f"NaN/Inf: target {target.get('nan')} NaN {target.get('inf')} Inf, "
            f"reference {reference.get('nan')} NaN {reference.get('inf')} Inf"
        )
    bound = changes["rel_l2_lower_bound"]
    if bound is None and (reference.get("norm") is not None or target.get("norm") is not None):
        failures.append("statistics undefined on one side (no finite value)")
    elif bound is not None and not bound < criteria["rel_l2_max"]:
        limit = criteria.get("rel_l2_fail", criteria["rel_l2_max"])
        level, key = (failures, "rel_l2_fail") if not bound < limit else (warnings, "rel_l2_max")
        level.append(
            f"statistics prove rel_l2 >= {bound:.6g} >= {key} {criteria.get(key, criteria['rel_l2_max'])} "
            f"(norm changed {changes['norm_rel_change']:.6g}, "
            f"mean shifted {changes['mean_shift']:.6g} of the reference RMS)"
        )
    return failures, warnings


def _describe(entry: dict) -> dict:
    return {key: entry.get(key) for key in ("module", "type", "io", "shape")} | {
        "kind": entry.get("layer_kind", "module")
    }


def _stats_rows(reference: dict, target: dict, criteria: dict) -> list[dict]:
    targets = {entry["name"]: entry for entry in target["tensors"]}
    rows = []
    for ref in reference["tensors"]:
        tgt = targets.pop(ref["name"], None)
        row = {"name": ref["name"], **_describe(ref), "dtype_reference": ref.get("compute_dtype")}
        if tgt is None:
            row.update({"status": "fail", "pass": False, "reason": "missing from target"})
        else:
            changes = stats_changes(ref, tgt)
            failures, warnings = stats_verdict(ref, tgt, changes, criteria)
            row.update(
                changes,
                dtype_target=tgt.get("compute_dtype"),
                norm_reference=ref.get("norm"),
                norm_target=tgt.get("norm"),
                mean_reference=ref.get("mean"),
                mean_target=tgt.get("mean"),
            )
            row.update(nan_target=tgt.get("nan"), inf_target=tgt.get("inf"), bit_identical=_bit_identical(ref, tgt))
            status = "fail" if failures else "warn" if warnings else "pass"
            row.update({"status": status, "pass": status == "pass", "reason": "; ".join(failures + warnings) or None})
        rows.append(row)
    rows += [
        {
            "name": name,
            **_describe(entry),
            "dtype_target": entry.get("compute_dtype"),
            "status": "fail",
            "pass": False,
            "reason": "in target but not in reference",
        }
        for name, entry in targets.items()
    ]
    return rows


def _bit_identical(reference: dict, target: dict) -> bool | None:
    """Equal checksums of one dtype: bit-identical (up to a checksum collision); None when
    the dtypes differ or a side has no checksum."""
    if reference.get("compute_dtype") != target.get("compute_dtype") or None in (
        reference.get("checksum"),
        target.get("checksum"),
    ):
        return None
    return reference["checksum"] == target["checksum"]


def _tensor_rows(
    reference_index: Path, target_index: Path, reference: dict, target: dict, criteria: dict
) -> list[dict]:
    outputs, _ = compare_indexes(reference_index, target_index, criteria)
    described = {t["name"]: t for t in target["tensors"]} | {t["name"]: t for t in reference["tensors"]}
    compute = {
        role: {t["name"]: t.get("compute_dtype", t.get("dtype")) for t in side["tensors"]}
        for role, side in (("reference", reference), ("target", target))
    }
    rows = []
    for name, metrics in outputs.items():
        row = {"name": name, **metrics, **_describe(described[name])}  # kind: module/api, not the metrics' hidden
        # The stored .npy of a bfloat16 tensor is float32; the row names what was computed.
        row.update(dtype_reference=compute["reference"].get(name), dtype_target=compute["target"].get(name))
        rows.append(row)
    return rows


def compare_layers(reference_index: str | Path, target_index: str | Path, criteria: dict) -> dict:
    """Every captured row's comparison, in execution order, and the first divergence."""
    reference_index, target_index = Path(reference_index), Path(target_index)
    result = {"enabled": True, "status": "ok", "mode": None, "localisation": None, "reason": None, "criteria": criteria}
    result.update(modules=0, apis=0, diverged=0, first_divergence=None, rows=[])
    missing = [str(path) for path in (reference_index, target_index) if not path.is_file()]
    if missing:
        return {**result, "status": "blocked", "reason": f"no layer dump: {', '.join(missing)} missing"}
    reference, target = read_json(reference_index), read_json(target_index)
    if upstream := upstream_status(reference=reference, target=target):
        status, reason = upstream
        return {**result, "status": status, "reason": reason}
    modes = (reference.get("mode", "tensors"), target.get("mode", "tensors"))
    if None in modes:
        return {
            **result,
            "enabled": False,
            "status": None,
            "reason": target.get("mode_reason") or reference.get("mode_reason"),
        }
    if modes[0] != modes[1]:
        return {
            **result,
            "status": "blocked",
            "reason": f"the reference captured layers: {modes[0]}, the target layers: {modes[1]}",
        }
    mode = modes[0]
    # The target dump's compute dtype and precision modes pick the defaults, as in compare.json.
    criteria = {**dtype_criteria(target_criteria_class(target)), **criteria}
    rows = (
        _stats_rows(reference, target, criteria)
        if mode == "stats"
        else _tensor_rows(reference_index, target_index, reference, target, criteria)
    )
    for order, row in enumerate(rows):
        row["order"] = order
        if row["status"] in ("fail", "error"):  # a warn is within what the dtype allows: no divergence
            result["diverged"] += 1
            if result["first_divergence"] is None:
                result["first_divergence"] = {key: row.get(key) for key in FIRST_KEYS}
    result.update(mode=mode, localisation=LOCALISATION[mode], rows=rows, criteria=criteria)
    result.update(modules=sum(row["kind"] == "module" for row in rows), apis=sum(row["kind"] == "api" for row in rows))
    result["placement"] = {
        role: {key: side.get(key) for key in ("device", "dtype")}
        for role, side in (("reference", reference), ("target", target))
    }
    if result["first_divergence"] is None:
        result["reason"] = (
            "no captured row crosses the threshold"
            if rows
            else "nothing captured (check layer_pattern and layer_kinds)"
        )
    return result


def layer_summary(layers: dict | None) -> dict:
    """What compare.json says about the layers (the full table is in layers/compare.csv)."""
    if layers is None:
        return {"enabled": False, "first_divergence": None, "reason": "layers: false for this model"}
    if not layers.get("enabled", True):
        return {"enabled": False, "first_divergence": None, "reason": layers.get("reason")}
    keys = ("status", "mode", "localisation", "modules", "apis", "diverged", "first_divergence", "reason")
    return {"enabled": True, **{key: layers.get(key) for key in keys}, "table": "layers/compare.csv"}
