rule compare:
    input:
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
    output:
        json="results/{model}/compare.json",
        csv="results/{model}/compare.csv",
    params:
        criteria=lambda wildcards: canonical(merged(wildcards.model, "accuracy")),
        code=code_version("metrics.py", "io.py"),
    log:
        "logs/{model}/compare.log",
    script:
        "../scripts/compare.py"


rule benchmark:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
        target=rules.dump_target.output.index,
    output:
        json="results/{model}/benchmark.json",
        csv="results/{model}/benchmark.csv",
        plot="results/{model}/benchmark.png",
    params:
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "source", "arch_config", "inputs", "task")
        ),
        placement=lambda wildcards: canonical(merged(wildcards.model, "target")),
        settings=lambda wildcards: canonical(merged(wildcards.model, "benchmark")),
        code=code_version("timing.py", "plots.py", *ADAPTER_CODE),
    resources:
        npu=1,
    log:
        "logs/{model}/benchmark.log",
    script:
        "../scripts/benchmark.py"
