"""dump_reference / dump_target / dump_cpu_same_dtype: run the model once on the inputs and
dump every output (npu_adapt.dump; ``params.role`` says which of the three)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.config_types import ModelEntry, Placement
from npu_adapt.dump import dump_model
from npu_adapt.jobs import start_job


def main(smk):
    start_job(smk.log[0])
    integrity.configure(smk.config)
    dump_model(
        smk.wildcards.model,
        smk.params.role,
        ModelEntry.from_param(smk.params.model),
        Placement.from_param(smk.params.placement),
        smk.input.manifest,
        smk.input.inputs,
        smk.output.index,
        getattr(smk.output, "layers", None),  # none for the yardstick
        Path(smk.scriptdir).parent,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
