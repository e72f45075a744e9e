"""The summarize stage: a model's summary.json, its model card (README.md) and the card's HTML
page, from the model's JSON files only (the model's own and every target's)."""

from __future__ import annotations

import logging
from pathlib import Path

from npu_adapt.cards import model_card
from npu_adapt.config_types import RunConfig
from npu_adapt.html_report import model_page
from npu_adapt.integrity import dump_problems
from npu_adapt.io import read_json, sha256_file, write_json
from npu_adapt.reports import build_summary, target_summary, workflow_commit

log = logging.getLogger("npu_adapt")

MODEL_DOCUMENTS = ("manifest", "env", "inputs", "reference")
TARGET_DOCUMENTS = ("target", "compare", "benchmark")  # lists: one per target, in target order


def evidence_files(paths: list[Path], indexes: list[Path]) -> tuple[list[dict], list[str]]:
    """Every file the card's numbers come from (``paths``, and the tensors the ``indexes``
    list), with size and sha256; and every dump whose sha256 differs from the one its
    index.json records (the card must not vouch for it)."""
    paths, problems = list(paths), []
    for index_path in indexes:
        index = read_json(index_path)
        paths += [index_path.parent / tensor["file"] for tensor in index.get("tensors", [])]
        problems += dump_problems(index_path, index).values()
    # A dump gone since it was written is one of the problems, not a crash of the card's job.
    files = [
        {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in paths
        if path.is_file()
    ]
    return files, problems


def summarize_model(
    model: str,
    run: RunConfig,
    target_names: list[str],
    documents: dict[str, Path],
    target_documents: dict[str, list[Path]],
    evidence_paths: list[Path],
    outputs: dict[str, Path],
    repo: Path,
) -> dict:
    """Write ``outputs['summary']`` (summary.json), ``outputs['card']`` and ``outputs['page']``
    from the model's ``documents`` (MODEL_DOCUMENTS: one path each) and ``target_documents``
    (TARGET_DOCUMENTS: one path per target, in ``target_names`` order); ``evidence_paths``:
    every file the job read, listed with its sha256. A dump changed since it was written
    makes the model and every target ``error``. Returns the summary."""
    read = {name: read_json(documents[name]) for name in MODEL_DOCUMENTS}
    per_target = {name: [read_json(path) for path in target_documents[name]] for name in TARGET_DOCUMENTS}
    targets = {
        name: target_summary(
            name,
            run.targets[name],
            read["manifest"],
            read["reference"],
            *(per_target[document][i] for document in TARGET_DOCUMENTS),
        )
        for i, name in enumerate(target_names)
    }
    config = run.as_dict()
    # In the config's own order (the settings param is key-sorted JSON): the card's reproduce
    # config then gives the summarize job the same ``targets`` param, and plans nothing.
    config["targets"] = {name: config["targets"][name] for name in target_names}
    indexes = [documents["inputs"], documents["reference"], *target_documents["target"]]
    evidence, problems = evidence_files(evidence_paths, indexes)
    summary = build_summary(
        model,
        run.models[model],
        targets=targets,
        commit=workflow_commit(repo),
        config=config,
        evidence=evidence,
        params=next((dump["params"] for dump in per_target["target"] if dump.get("params")), None),
        **read,
    )
    if problems:
        log.error("%s: dumps changed after they were written: %s", model, "; ".join(problems))
        reason = "integrity: " + "; ".join(problems)
        summary.update(status="error", reason=reason)
        for part in targets.values():  # no row of this model may vouch for a changed dump
            part.update(status="error", reason=reason)
    write_json(outputs["summary"], summary)
    card_dir = str(Path(outputs["card"]).parent)
    Path(outputs["card"]).write_text(model_card(summary, card_dir))
    Path(outputs["page"]).write_text(model_page(summary, card_dir))
    for name, part in targets.items():
        log.info("%s/%s: %s %s", model, name, part["status"], part["reason"] or "")
    log.info("%s: %s %s", model, summary["status"], summary["reason"] or "")
    return summary
