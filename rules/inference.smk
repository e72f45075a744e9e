rule make_inputs:
    input:
        manifest=rules.fetch_weights.output.manifest,
    output:
        index="results/{model}/inputs/index.json",
    log:
        "logs/{model}/make_inputs.log",
    benchmark:
        "benchmarks/{model}/make_inputs.tsv"
    conda:
        CONDA_ENV
    params:
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "inputs")
        ),
        seed=config["seed"],
        code=library_code("make_inputs.py"),
    script:
        "../scripts/make_inputs.py"


rule dump_reference:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
    output:
        index="results/{model}/reference/index.json",
        layers="results/{model}/layers/reference/index.json",
    log:
        "logs/{model}/dump_reference.log",
    benchmark:
        "benchmarks/{model}/dump_reference.tsv"
    conda:
        CONDA_ENV
    resources:
        npu=device_slots("reference", "npu"),
        cuda=device_slots("reference", "cuda"),
    params:
        role="reference",
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "inputs", "task", *LAYER_KEYS)
        ),
        placement=lambda wildcards: canonical(merged(wildcards.model, "reference")),
        code=library_code("dump_outputs.py"),
    script:
        "../scripts/dump_outputs.py"


rule dump_target:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
        env=rules.check_env.output.env,
    output:
        index="results/{model}/target/index.json",
        layers="results/{model}/layers/target/index.json",
    log:
        "logs/{model}/dump_target.log",
    benchmark:
        "benchmarks/{model}/dump_target.tsv"
    conda:
        CONDA_ENV
    resources:
        npu=device_slots("target", "npu"),
        cuda=device_slots("target", "cuda"),
    params:
        role="target",
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "inputs", "task", *LAYER_KEYS)
        ),
        placement=lambda wildcards: canonical(merged(wildcards.model, "target")),
        code=library_code("dump_outputs.py"),
    script:
        "../scripts/dump_outputs.py"
