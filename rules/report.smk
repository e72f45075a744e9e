rule summarize:
    input:
        manifest=rules.fetch_weights.output.manifest,
        env=rules.check_env.output.env,
        inputs=rules.make_inputs.output.index,
        reference=rules.dump_reference.output.index,
        target=rules.dump_target.output.index,
        compare=rules.compare.output.json,
        benchmark=rules.benchmark.output.json,
    output:
        summary="results/{model}/summary.json",
        card="results/{model}/README.md",
    params:
        model=lambda wildcards: canonical(
            model_entry(wildcards.model, "source", "task", "license", "family")
        ),
        code=code_version("reports.py"),
    log:
        "logs/{model}/summarize.log",
    script:
        "../scripts/summarize.py"


rule leaderboard:
    input:
        summaries=expand("results/{model}/summary.json", model=MODELS),
    output:
        csv="results/leaderboard.csv",
        md="results/leaderboard.md",
    params:
        code=code_version("reports.py"),
    log:
        "logs/leaderboard.log",
    script:
        "../scripts/leaderboard.py"


rule all:
    default_target: True
    input:
        leaderboard=rules.leaderboard.output.csv,
        leaderboard_md=rules.leaderboard.output.md,
        summaries=expand("results/{model}/summary.json", model=MODELS),
        cards=expand("results/{model}/README.md", model=MODELS),
        compare_csv=expand("results/{model}/compare.csv", model=MODELS),
        benchmark_csv=expand("results/{model}/benchmark.csv", model=MODELS),
        plots=expand("results/{model}/benchmark.png", model=MODELS),
    output:
        manifest="results/all",
    log:
        "logs/all.log",
    script:
        "../scripts/finalize.py"
