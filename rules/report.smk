rule summarize:
    input:
        manifest=rules.fetch_weights.output.manifest,
        env=rules.check_env.output.env,
        env_log=rules.check_env.output.raw,
        inputs=rules.make_inputs.output.index,
        reference=rules.dump_reference.output.index,
        target=model_target_files("results/{model}/{target}/dump/index.json"),
        compare=model_target_files("results/{model}/{target}/compare.json"),
        compare_csv=model_target_files("results/{model}/{target}/compare.csv"),
        benchmark=model_target_files("results/{model}/{target}/benchmark.json"),
        benchmark_csv=model_target_files("results/{model}/{target}/benchmark.csv"),
        plot=model_target_files("results/{model}/{target}/benchmark.png"),
        layers=model_target_files("results/{model}/{target}/layers/compare.json"),
        layers_csv=model_target_files("results/{model}/{target}/layers/compare.csv"),
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
        targets=lambda wildcards: list(TARGETS[wildcards.model]),
        settings=lambda wildcards: canonical(run_config(config, wildcards.model)),
        code=library_code("summarize.py"),
    script:
        "../scripts/summarize.py"


rule leaderboard:
    input:
        summaries=expand("results/{model}/summary.json", model=MODELS),
        plots=per_target("results/{model}/{target}/benchmark.png"),
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
