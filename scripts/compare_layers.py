"""compare_layers (models with layers: true): every captured module's output, target
against reference, in execution order, and the first module crossing the threshold."""

import json
from pathlib import Path

from npu_adapt import integrity
from npu_adapt.io import write_csv
from npu_adapt.io import write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.layers import LAYER_COLUMNS, compare_layers


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    result = compare_layers(Path(smk.input.reference).parent.parent, json.loads(smk.params.criteria))
    write_json(smk.output.json, {"model": smk.wildcards.model, **result})
    write_csv(smk.output.csv, result["rows"], LAYER_COLUMNS)
    log.info("%s: %d modules, %d over the threshold; first divergence: %s", smk.wildcards.model, result["modules"], result["diverged"], result["first_divergence"] or result["reason"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
