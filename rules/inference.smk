rule make_inputs:
    input:
        manifest=rules.fetch_weights.output.manifest,
    output:
        index="results/{model}/inputs/index.json",
    params:
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "source", "arch_config", "inputs")
        ),
        seed=config["seed"],
        code=code_version(*ADAPTER_CODE),
    log:
        "logs/{model}/make_inputs.log",
    script:
        "../scripts/make_inputs.py"


rule dump_reference:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
    output:
        index="results/{model}/reference/index.json",
    params:
        role="reference",
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "source", "arch_config", "inputs", "task")
        ),
        placement=lambda wildcards: canonical(merged(wildcards.model, "reference")),
        code=code_version(*ADAPTER_CODE),
    log:
        "logs/{model}/dump_reference.log",
    script:
        "../scripts/dump_outputs.py"


rule dump_target:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
        env=rules.check_env.output.env,
    output:
        index="results/{model}/target/index.json",
    params:
        role="target",
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "source", "arch_config", "inputs", "task")
        ),
        placement=lambda wildcards: canonical(merged(wildcards.model, "target")),
        code=code_version(*ADAPTER_CODE),
    resources:
        npu=1,
    log:
        "logs/{model}/dump_target.log",
    script:
        "../scripts/dump_outputs.py"
