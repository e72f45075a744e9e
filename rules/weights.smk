rule fetch_weights:
    output:
        manifest=f"{WEIGHTS_DIR}/{{model}}/manifest.json",
    params:
        model=lambda wildcards: canonical(
            model_entry(
                wildcards.model,
                "source",
                "family",
                "arch_config",
                "fallback",
                "allow_patterns",
                "trust_remote_code",
            )
        ),
        download=canonical(config["download"]),
        seed=config["seed"],
        weights_dir=WEIGHTS_DIR,
        code=code_version("weights.py", *ADAPTER_CODE),
    log:
        "logs/{model}/fetch_weights.log",
    script:
        "../scripts/fetch_weights.py"
