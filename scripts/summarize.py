"""summarize: summary.json and the model card, from the model's JSON files only."""

import json
from pathlib import Path

from npu_adapt.io import read_json, write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.reports import build_summary, model_card, workflow_commit


def main(smk):
    log = setup_logging(smk.log[0])
    documents = {name: read_json(getattr(smk.input, name)) for name in ("manifest", "env", "inputs", "reference", "target", "compare", "benchmark")}
    summary = build_summary(
        smk.wildcards.model,
        json.loads(smk.params.model),
        commit=workflow_commit(Path(smk.scriptdir).parent),
        **documents,
    )
    write_json(smk.output.summary, summary)
    Path(smk.output.card).write_text(model_card(summary))
    log.info("%s: %s %s", summary["model"], summary["status"], summary["reason"] or "")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
