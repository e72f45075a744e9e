rule check_env:
    output:
        env="results/env.json",
        raw="results/env.log",
    params:
        code=library_code("check_env.py"),
    log:
        "logs/check_env.log",
    benchmark:
        "benchmarks/check_env.tsv"
    script:
        "../scripts/check_env.py"
