rule compare_layers:
    input:
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
    output:
        json="results/{model}/layers/compare.json",
        csv="results/{model}/layers/compare.csv",
    log:
        "logs/{model}/compare_layers.log",
    benchmark:
        "benchmarks/{model}/compare_layers.tsv"
    conda:
        CONDA_ENV
    params:
        criteria=lambda wildcards: canonical(merged(wildcards.model, "accuracy")),
        code=library_code("compare_layers.py"),
    script:
        "../scripts/compare_layers.py"


rule compare:
    input:
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
        layers=lambda wildcards: (
            rules.compare_layers.output.json.format(model=wildcards.model)
            if config["models"][wildcards.model].get("layers")
            else []
        ),
    output:
        json="results/{model}/compare.json",
        csv="results/{model}/compare.csv",
    log:
        "logs/{model}/compare.log",
    benchmark:
        "benchmarks/{model}/compare.tsv"
    conda:
        CONDA_ENV
    params:
        criteria=lambda wildcards: canonical(
            {
                "config": config["accuracy"],
                "model": config["models"][wildcards.model].get("accuracy", {}),
            }
        ),
        code=library_code("compare.py"),
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
        samples="results/{model}/benchmark_samples.csv",
        plot=report(
            "results/{model}/benchmark.png",
            category="Benchmark plots",
            subcategory="{model}",
            labels={"model": "{model}", "file": "latency and throughput"},
        ),
    log:
        "logs/{model}/benchmark.log",
    benchmark:
        "benchmarks/{model}/benchmark.tsv"
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
        placement=lambda wildcards: canonical(merged(wildcards.model, "target")),
        settings=lambda wildcards: canonical(merged(wildcards.model, "benchmark")),
        code=library_code("benchmark.py"),
    script:
        "../scripts/benchmark.py"
