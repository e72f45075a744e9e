"""compare: every accuracy metric of each target output against its reference."""

import csv
import json
from pathlib import Path

from npu_adapt.compare import compare_dumps
from npu_adapt.io import write_json
from npu_adapt.jobs import setup_logging

CSV_COLUMNS = ["output", "kind", "pass", "rel_l2", "cosine", "max_abs_diff", "mean_abs_diff", "rmse", "max_rel_diff", "within_rtol_frac", "top1_match", "top5_match", "nan_target", "inf_target", "ascend_verdict", "reason"]


def main(smk):
    log = setup_logging(smk.log[0])
    result = compare_dumps(smk.wildcards.model, Path(smk.input.reference), Path(smk.input.target), json.loads(smk.params.criteria))
    write_json(smk.output.json, result)
    with open(smk.output.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for name, metrics in result["outputs"].items():
            writer.writerow({"output": name, **{k: ("null" if v is None else v) for k, v in metrics.items()}})
    log.info("%s: %s %s", smk.wildcards.model, result["status"], result["reason"] or "")
    for name, metrics in result["outputs"].items():
        log.info("  %s: pass=%s rel_l2=%s cosine=%s max_abs_diff=%s", name, metrics["pass"], metrics["rel_l2"], metrics["cosine"], metrics["max_abs_diff"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
