"""compare: every accuracy metric of each target output against its reference."""

import json
from pathlib import Path

from npu_adapt import integrity
from npu_adapt.compare import OUTPUT_COLUMNS, compare_dumps
from npu_adapt.io import read_json, write_csv, write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.layers import layer_summary


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    result = compare_dumps(smk.wildcards.model, Path(smk.input.reference), Path(smk.input.target), json.loads(smk.params.criteria))
    layers = read_json(smk.input.layers) if smk.input.get("layers") else None
    result["layers"] = layer_summary(layers)
    write_json(smk.output.json, result)
    write_csv(smk.output.csv, [{"output": name, **metrics} for name, metrics in result["outputs"].items()], OUTPUT_COLUMNS)
    log.info("%s: %s %s", smk.wildcards.model, result["status"], result["reason"] or "")
    for name, metrics in result["outputs"].items():
        log.info("  %s: pass=%s rel_l2=%s cosine=%s max_abs_diff=%s", name, metrics["pass"], metrics["rel_l2"], metrics["cosine"], metrics["max_abs_diff"])
    if layers is not None:
        log.info("layers: first divergence %s", result["layers"]["first_divergence"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
