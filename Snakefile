# npu-adapt: validate PyTorch models on an accelerator (Ascend NPU first) against a CPU
# reference, benchmark them, and publish per-model evidence plus one leaderboard.
# Contract: DESIGN.md (layout, targets, metrics, schemas, failure semantics).

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/env.smk"
include: "rules/inference.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
