"""summarize: summary.json, the model card (README.md) and its HTML page, from the model's
JSON files only (every target's)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.cards import model_card
from npu_adapt.config_types import RunConfig
from npu_adapt.html_report import model_page
from npu_adapt.integrity import dump_problems
from npu_adapt.io import read_json, sha256_file, write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.reports import build_summary, target_summary, workflow_commit

MODEL_DOCUMENTS = ("manifest", "env", "inputs", "reference")
TARGET_DOCUMENTS = ("target", "compare", "benchmark")  # lists: one per target, in params.targets order


def evidence_files(smk) -> tuple[list[dict], list[str]]:
    """Every file of the model's run that the card's numbers come from (the job's inputs and
    the tensors their index files list), with size and sha256; and every dump whose sha256
    differs from the one its index.json records (the card must not vouch for it)."""
    paths, problems = [Path(path) for path in smk.input], []
    for index_path in map(Path, [smk.input.inputs, smk.input.reference, *smk.input.target]):
        index = read_json(index_path)
        paths += [index_path.parent / tensor["file"] for tensor in index.get("tensors", [])]
        problems += dump_problems(index_path, index).values()
    files = [{"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)} for path in paths]
    return files, problems


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)  # the dumps are checked against their sha256 before use
    model = smk.wildcards.model
    run = RunConfig.from_param(smk.params.settings)
    documents = {name: read_json(getattr(smk.input, name)) for name in MODEL_DOCUMENTS}
    per_target = {name: [read_json(path) for path in getattr(smk.input, name)] for name in TARGET_DOCUMENTS}
    targets = {
        name: target_summary(
            name,
            run.targets[name],
            documents["manifest"],
            documents["reference"],
            *(per_target[document][i] for document in TARGET_DOCUMENTS),
        )
        for i, name in enumerate(smk.params.targets)
    }
    evidence, problems = evidence_files(smk)
    summary = build_summary(
        model,
        run.models[model],
        targets=targets,
        commit=workflow_commit(Path(smk.scriptdir).parent),
        config=run.as_dict(),
        evidence=evidence,
        params=next((dump["params"] for dump in per_target["target"] if dump.get("params")), None),
        **documents,
    )
    if problems:
        log.error("%s: dumps changed after they were written: %s", model, "; ".join(problems))
        reason = "integrity: " + "; ".join(problems)
        summary.update(status="error", reason=reason)
        for part in targets.values():  # no row of this model may vouch for a changed dump
            part.update(status="error", reason=reason)
    write_json(smk.output.summary, summary)
    card_dir = str(Path(smk.output.card).parent)
    Path(smk.output.card).write_text(model_card(summary, card_dir))
    Path(smk.output.page).write_text(model_page(summary, card_dir))
    for name, part in targets.items():
        log.info("%s/%s: %s %s", model, name, part["status"], part["reason"] or "")
    log.info("%s: %s %s", model, summary["status"], summary["reason"] or "")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
