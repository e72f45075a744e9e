"""compare: every accuracy metric of each target output against its reference, and the
layer localisation (npu_adapt.compare_stage)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.compare_stage import compare_target
from npu_adapt.config_types import AccuracyOverrides
from npu_adapt.jobs import start_job

INDEXES = ("reference", "target", "reference_layers", "target_layers")
OUTPUTS = ("json", "csv", "layers_json", "layers_csv")


def main(smk):
    start_job(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    yardstick = [Path(path) for path in smk.input.cpu_same_dtype]  # none: params.no_cpu_same_dtype says why
    compare_target(
        smk.wildcards.model,
        smk.wildcards.target,
        {name: Path(getattr(smk.input, name)) for name in INDEXES},
        AccuracyOverrides.from_param(smk.params.criteria),  # the global and the model's accuracy: blocks
        yardstick[0] if yardstick else None,
        smk.params.no_cpu_same_dtype,
        {name: Path(getattr(smk.output, name)) for name in OUTPUTS},
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
