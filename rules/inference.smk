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
        index="results/{model}/{target}/dump/index.json",
        layers="results/{model}/{target}/layers/dump/index.json",
    log:
        "logs/{model}/{target}/dump_target.log",
    benchmark:
        "benchmarks/{model}/{target}/dump_target.tsv"
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
        placement=target_placement,
        code=library_code("dump_outputs.py"),
    script:
        "../scripts/dump_outputs.py"


# The error budget's yardstick: the model on the CPU in a target's dtype, once per model and
# dtype, for the targets on an accelerator (cpu_same_dtype_dump in rules/common.smk).
rule dump_cpu_same_dtype:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
    output:
        index="results/{model}/cpu-same-dtype/{dtype}/index.json",
    log:
        "logs/{model}/cpu-same-dtype/{dtype}.log",
    benchmark:
        "benchmarks/{model}/cpu-same-dtype/{dtype}.tsv"
    conda:
        CONDA_ENV
    params:
        role="cpu-same-dtype",
        model=lambda wildcards: canonical(
            {
                **model_entry(wildcards.model, "family", "inputs", "task"),
                "layers": False,
            }
        ),
        placement=lambda wildcards: canonical(
            {"device": "cpu", "dtype": wildcards.dtype, "precision": "default"}
        ),
        code=library_code("dump_outputs.py"),
    script:
        "../scripts/dump_outputs.py"
