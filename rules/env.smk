rule check_env:
    output:
        env="results/env.json",
        raw="results/env.log",
    params:
        code=code_version("devices.py"),
    log:
        "logs/check_env.log",
    script:
        "../scripts/check_env.py"
