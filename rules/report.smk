from npu_adapt.reports import run_config


rule summarize:
    input:
        manifest=rules.fetch_weights.output.manifest,
        env=rules.check_env.output.env,
        env_log=rules.check_env.output.raw,
        inputs=rules.make_inputs.output.index,
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
        compare=rules.compare.output.json,
        compare_csv=rules.compare.output.csv,
        benchmark=rules.benchmark.output.json,
        benchmark_csv=rules.benchmark.output.csv,
        plot=rules.benchmark.output.plot,
        layers=rules.compare.output.layers_json,
        layers_csv=rules.compare.output.layers_csv,
    output:
        summary="results/{model}/summary.json",
        card=report(
            "results/{model}/README.md",
            category="Model summaries",
            subcategory="{model}",
            labels={"model": "{model}", "file": "model card (Markdown)"},
        ),
        page=report(
            "results/{model}/summary.html",
            category="Model summaries",
            subcategory="{model}",
            labels={"model": "{model}", "file": "model card (HTML)"},
        ),
    log:
        "logs/{model}/summarize.log",
    benchmark:
        "benchmarks/{model}/summarize.tsv"
    conda:
        CONDA_ENV
    params:
        settings=lambda wildcards: canonical(run_config(config, wildcards.model)),
        code=library_code("summarize.py"),
    script:
        "../scripts/summarize.py"


rule leaderboard:
    input:
        summaries=expand("results/{model}/summary.json", model=MODELS),
        plots=expand("results/{model}/benchmark.png", model=MODELS),
    output:
        csv=report(
            "results/leaderboard.csv",
            category="Leaderboard",
            labels={"file": "leaderboard (CSV)"},
        ),
        md="results/leaderboard.md",
        html=report(
            "results/leaderboard.html",
            category="Leaderboard",
            labels={"file": "leaderboard (HTML, sortable)"},
        ),
    log:
        "logs/leaderboard.log",
    benchmark:
        "benchmarks/leaderboard.tsv"
    conda:
        CONDA_ENV
    params:
        code=library_code("leaderboard.py"),
    script:
        "../scripts/leaderboard.py"
