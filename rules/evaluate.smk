rule compare:
    input:
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
        reference_layers=rules.dump_reference.output.layers,
        target_layers=rules.dump_target.output.layers,
        cpu_same_dtype=cpu_same_dtype_dump,
    output:
        json="results/{model}/{target}/compare.json",
        csv="results/{model}/{target}/compare.csv",
        # Written for every model (enabled: false and the reason when nothing was captured):
        # layers: auto decides from the parameter count, known only once the model is built.
        layers_json="results/{model}/{target}/layers/compare.json",
        layers_csv="results/{model}/{target}/layers/compare.csv",
    log:
        "logs/{model}/{target}/compare.log",
    benchmark:
        "benchmarks/{model}/{target}/compare.tsv"
    conda:
        CONDA_ENV
    params:
        criteria=lambda wildcards: canonical(
            {
                "config": config["accuracy"],
                "model": MODEL_ENTRIES[wildcards.model].get("accuracy", {}),
            }
        ),
        no_cpu_same_dtype=lambda wildcards: cpu_same_dtype_reason(
            wildcards.model, wildcards.target
        ),
        # Not read by the script (npu_adapt.metrics reads the schema): a changed default re-runs the comparisons.
        dtype_criteria=canonical(DTYPE_CRITERIA),
        code=library_code("compare.py"),
    script:
        "../scripts/compare.py"


rule benchmark:
    input:
        manifest=rules.fetch_weights.output.manifest,
        inputs=rules.make_inputs.output.index,
        target=rules.dump_target.output.index,
    output:
        json="results/{model}/{target}/benchmark.json",
        csv="results/{model}/{target}/benchmark.csv",
        samples="results/{model}/{target}/benchmark_samples.csv",
        plot=report(
            "results/{model}/{target}/benchmark.png",
            category="Benchmark plots",
            subcategory="{model}",
            labels={
                "model": "{model}",
                "target": "{target}",
                "file": "latency and throughput",
            },
        ),
    log:
        "logs/{model}/{target}/benchmark.log",
    benchmark:
        "benchmarks/{model}/{target}/benchmark.tsv"
    conda:
        CONDA_ENV
    threads: benchmark_threads
    resources:
        npu=device_slots("target", "npu"),
        cuda=device_slots("target", "cuda"),
    params:
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "family", "inputs", "task")
        ),
        placement=target_placement,
        settings=lambda wildcards: canonical(merged(wildcards.model, "benchmark")),
        code=library_code("benchmark.py"),
    script:
        "../scripts/benchmark.py"
