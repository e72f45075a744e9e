"""make_inputs: the batch-1 input tensors of a model, as .npy files with an index (npu_adapt.inputs)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.config_types import ModelEntry
from npu_adapt.inputs import dump_inputs
from npu_adapt.jobs import start_job


def main(smk):
    start_job(smk.log[0])
    integrity.configure(smk.config)
    dump_inputs(
        smk.wildcards.model,
        ModelEntry.from_param(smk.params.model),
        smk.input.manifest,
        smk.output.index,
        smk.params.seed,
        Path(smk.scriptdir).parent,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
