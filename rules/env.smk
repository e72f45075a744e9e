rule check_env:
    output:
        env="results/env.json",
        raw="results/env.log",
    log:
        "logs/check_env.log",
    benchmark:
        "benchmarks/check_env.tsv"
    conda:
        CONDA_ENV
    params:
        code=library_code("check_env.py"),
    script:
        "../scripts/check_env.py"
