rule compare:
    input:
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
        reference_layers=rules.dump_reference.output.layers,
        target_layers=rules.dump_target.output.layers,
    output:
        json="results/{model}/compare.json",
        csv="results/{model}/compare.csv",
        # Written for every model (enabled: false and the reason when nothing was captured):
        # layers: auto decides from the parameter count, known only once the model is built.
        layers_json="results/{model}/layers/compare.json",
        layers_csv="results/{model}/layers/compare.csv",
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
