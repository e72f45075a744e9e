"""Comparing a target dump with its reference dump (two index.json files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npu_adapt.io import read_json
from npu_adapt.jobs import upstream_reason
from npu_adapt.metrics import DEFAULT_CRITERIA, compare_output


def compare_dumps(model: str, reference_index: Path, target_index: Path, criteria: dict) -> dict:
    criteria = {**DEFAULT_CRITERIA, **criteria}
    reference, target = read_json(reference_index), read_json(target_index)
    result = {
        "model": model,
        "status": "pass",
        "reason": None,
        "criteria": criteria,
        "reference": {key: reference.get(key) for key in ("device", "device_name", "dtype")},
        "target": {key: target.get(key) for key in ("device", "device_name", "dtype")},
        "outputs": {},
    }
    if reason := upstream_reason(reference=reference, target=target):
        result.update(status="blocked", reason=reason)
        return result
    ref_tensors = {t["name"]: t for t in reference["tensors"]}
    tgt_tensors = {t["name"]: t for t in target["tensors"]}
    failures = []
    for name, ref in ref_tensors.items():
        if name not in tgt_tensors:
            failures.append(f"{name}: missing from target")
            continue
        r = np.load(reference_index.parent / ref["file"], mmap_mode="r")
        t = np.load(target_index.parent / tgt_tensors[name]["file"], mmap_mode="r")
        metrics = compare_output(t, r, ref.get("kind", "hidden"), criteria)
        result["outputs"][name] = metrics
        if not metrics["pass"]:
            failures.append(f"{name}: {metrics['reason']}")
    for name in tgt_tensors.keys() - ref_tensors.keys():
        failures.append(f"{name}: in target but not in reference")
    if failures:
        result.update(status="fail", reason="; ".join(failures))
    return result
