"""compare: every accuracy metric of each target output against its reference, and the
layer localisation (npu_adapt.layers: layers/compare.json and .csv, for every model)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.compare import OUTPUT_COLUMNS, compare_dumps
from npu_adapt.config_types import AccuracyOverrides
from npu_adapt.io import write_csv, write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.layers import columns, compare_layers, layer_summary


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    overrides = AccuracyOverrides.from_param(smk.params.criteria)  # the global and the model's accuracy: blocks
    yardstick = [Path(path) for path in smk.input.cpu_same_dtype]  # none: params.no_cpu_same_dtype says why
    result = compare_dumps(
        smk.wildcards.model,
        Path(smk.input.reference),
        Path(smk.input.target),
        overrides.config,
        overrides.model,
        cpu_same_dtype_index=yardstick[0] if yardstick else None,
        no_cpu_same_dtype_reason=smk.params.no_cpu_same_dtype,
    )
    result["target_name"] = smk.wildcards.target
    layers = compare_layers(smk.input.reference_layers, smk.input.target_layers, result["criteria"])
    write_json(smk.output.layers_json, {"model": smk.wildcards.model, "target_name": smk.wildcards.target, **layers})
    write_csv(smk.output.layers_csv, layers["rows"], columns(layers["mode"]))
    result["layers"] = layer_summary(layers)
    write_json(smk.output.json, result)
    write_csv(
        smk.output.csv, [{"output": name, **metrics} for name, metrics in result["outputs"].items()], OUTPUT_COLUMNS
    )
    log.info("%s/%s: %s %s", smk.wildcards.model, smk.wildcards.target, result["status"], result["reason"] or "")
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


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
