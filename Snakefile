# npu-adapt: validate PyTorch models on an accelerator (Ascend NPU first) against a CPU
# reference, benchmark them, and publish per-model evidence plus one leaderboard.
# Contract: docs/design.md (layout, targets, metrics, schemas, failure semantics).

from pathlib import Path

from snakemake.utils import min_version

from npu_adapt.config_check import check_yaml_syntax, validate_config

min_version("9.0")

# One sentence with line and column for a YAML syntax error, and one naming the key for a
# schema violation (Snakemake alone gives neither).
check_yaml_syntax("config.yaml")


configfile: "config.yaml"


validate_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")


include: "rules/common.smk"


# Every wildcard is constrained (MODEL_KEY and TARGET_KEY: npu_adapt/config.py): a model key or
# target name is one path component and never a name the workflow writes beside it.
wildcard_constraints:
    model=MODEL_KEY,
    target=TARGET_KEY,
    dtype="float32|float16|bfloat16",


include: "rules/weights.smk"
include: "rules/env.smk"
include: "rules/inference.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


# The default target lives here: Snakemake ignores `default_target` set in an included file.
rule all:
    default_target: True
    input:
        leaderboard=rules.leaderboard.output.csv,
        leaderboard_md=rules.leaderboard.output.md,
        leaderboard_html=rules.leaderboard.output.html,
        summaries=expand("results/{model}/summary.json", model=MODELS),
        cards=expand("results/{model}/README.md", model=MODELS),
        pages=expand("results/{model}/summary.html", model=MODELS),
        compare_csv=per_target("results/{model}/{target}/compare.csv"),
        benchmark_csv=per_target("results/{model}/{target}/benchmark.csv"),
        plots=per_target("results/{model}/{target}/benchmark.png"),
    output:
        manifest="results/all",
    log:
        "logs/all.log",
    benchmark:
        "benchmarks/all.tsv"
    conda:
        CONDA_ENV
    params:
        code=library_code("finalize.py"),
    script:
        "scripts/finalize.py"
