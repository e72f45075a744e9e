"""summarize: summary.json, the model card (README.md) and its HTML page, from the model's
JSON files only (npu_adapt.summarize)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.config_types import RunConfig
from npu_adapt.jobs import start_job
from npu_adapt.summarize import MODEL_DOCUMENTS, TARGET_DOCUMENTS, summarize_model


def main(smk):
    start_job(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    summarize_model(
        smk.wildcards.model,
        RunConfig.from_param(smk.params.settings),
        smk.params.targets,
        {name: Path(getattr(smk.input, name)) for name in MODEL_DOCUMENTS},
        {name: [Path(path) for path in getattr(smk.input, name)] for name in TARGET_DOCUMENTS},
        [Path(path) for path in smk.input],  # every file the job read: the card's evidence
        {name: Path(getattr(smk.output, name)) for name in ("summary", "card", "page")},
        Path(smk.scriptdir).parent,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
