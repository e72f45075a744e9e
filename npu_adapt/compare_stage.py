"""The compare stage: every accuracy metric of one target's outputs against the reference's
(npu_adapt.compare), and the layer localisation (npu_adapt.layers), written as compare.json
and .csv, and layers/compare.json and .csv (for every model: ``enabled: false`` and the
reason when no layer was captured).

Apart from npu_adapt.compare because npu_adapt.layers itself compares dumps with it."""

from __future__ import annotations

import logging
from pathlib import Path

from npu_adapt.compare import OUTPUT_COLUMNS, compare_dumps
from npu_adapt.config_types import AccuracyOverrides
from npu_adapt.io import write_csv, write_json
from npu_adapt.layers import columns, compare_layers, layer_summary

log = logging.getLogger("npu_adapt")


def compare_target(
    model: str,
    target_name: str,
    indexes: dict[str, Path],
    overrides: AccuracyOverrides,
    cpu_same_dtype_index: Path | None,
    no_cpu_same_dtype_reason: str | None,
    outputs: dict[str, Path],
) -> dict:
    """Compare the dumps of ``indexes`` (``reference``, ``target``, ``reference_layers``,
    ``target_layers``: index.json paths) under the global and the model's accuracy blocks
    (``overrides``); ``cpu_same_dtype_index``: the error budget's yardstick (None, with
    ``no_cpu_same_dtype_reason`` saying why). Writes ``outputs`` (``json``, ``csv``,
    ``layers_json``, ``layers_csv``) and logs the verdict. Returns compare.json's content."""
    result = compare_dumps(
        model,
        Path(indexes["reference"]),
        Path(indexes["target"]),
        overrides.config,
        overrides.model,
        cpu_same_dtype_index=cpu_same_dtype_index,
        no_cpu_same_dtype_reason=no_cpu_same_dtype_reason,
    )
    result["target_name"] = target_name
    layers = compare_layers(indexes["reference_layers"], indexes["target_layers"], result["criteria"])
    write_json(outputs["layers_json"], {"model": model, "target_name": target_name, **layers})
    write_csv(outputs["layers_csv"], layers["rows"], columns(layers["mode"]))
    result["layers"] = layer_summary(layers)
    write_json(outputs["json"], result)
    rows = [{"output": name, **metrics} for name, metrics in result["outputs"].items()]
    write_csv(outputs["csv"], rows, OUTPUT_COLUMNS)
    log_verdict(model, target_name, result, layers)
    return result


def log_verdict(model: str, target_name: str, result: dict, layers: dict) -> None:
    """The job log's account of a comparison: the status, the criteria, each output's main
    metrics and the layers' first divergence."""
    log.info("%s/%s: %s %s", model, target_name, result["status"], result["reason"] or "")
    log.info("error budget: %s", result["error_budget"])
    log.info("criteria (%s): %s", result["criteria_class"], result["criteria"])
    for name, metrics in result["outputs"].items():
        log.info(
            "  %s: %s rel_l2=%s cosine=%s max_abs_diff=%s error_ratio_vs_cpu_same_dtype=%s",
            name,
            metrics["status"],
            metrics["rel_l2"],
            metrics["cosine"],
            metrics["max_abs_diff"],
            metrics.get("error_ratio_vs_cpu_same_dtype"),
        )
    if layers["enabled"]:
        counts = (layers["mode"], layers["modules"], layers["apis"], layers["diverged"])
        log.info("layers (%s): %s module and %s API rows, %d failing", *counts)
        log.info("layers: first divergence %s", layers["first_divergence"] or layers["reason"])
    else:
        log.info("layers: not captured (%s)", layers["reason"])
