# fetch_weights: the manifest is the declared output; the weight files live beside it, in
# {weights_dir}/{model}/download/ (kept across runs, verified whenever reused) or random-init/.
# Snakemake deletes the manifest before re-running the rule, so each fetch also leaves a copy
# in download/.cache/npu-adapt/ for the next one to verify the cache against (npu_adapt/weights/verify.py).


rule fetch_weights:
    output:
        manifest=f"{WEIGHTS_DIR}/{{model}}/manifest.json",
    log:
        "logs/{model}/fetch_weights.log",
    benchmark:
        "benchmarks/{model}/fetch_weights.tsv"
    conda:
        CONDA_ENV
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
        weights_dir=lambda wildcards, output: str(Path(output.manifest).parents[1]),
        arch_config_sha256=lambda wildcards: file_digest(
            MODEL_ENTRIES[wildcards.model].get("arch_config")
        ),
        code=library_code("fetch_weights.py"),
    script:
        "../scripts/fetch_weights.py"
