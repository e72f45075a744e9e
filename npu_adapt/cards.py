"""The model card (README.md, and summary.html through :mod:`npu_adapt.html_report`) and
leaderboard.md, from summary.json alone. Nothing here computes a metric; it reads, picks the
worst case and arranges.

A model has several targets (summary.json ``targets``, in config order): the card states each
one's status at the top, describes the model and the environment once, then gives each target
its sections (:mod:`npu_adapt.card_accuracy`, :mod:`npu_adapt.card_benchmark`). Numbers are
printed with ``format_cell`` (6 significant digits); a missing value as ``n/a (why)``.
"""

from __future__ import annotations

import os

import yaml

from npu_adapt.blocks import Code, Heading, Link, Table, Text, markdown_table, to_markdown
from npu_adapt.card_accuracy import accuracy_blocks, placement_text, reference_placement
from npu_adapt.card_benchmark import benchmark_blocks
from npu_adapt.reports import (
    ASCEND_TAGS,
    BENCHMARK_COLUMN_NOTES,
    HARDWARE,
    LEADERBOARD_COLUMNS,
    format_cell,
    short_reason,
    shown,
)
from npu_adapt.tables import ranked, row_key

# Hardware named by a card whose targets ran on several kinds: the port's, first.
HARDWARE_PRIORITY = ("NPU", "GPU", "CPU")


def targets_of(summary: dict) -> dict[str, dict]:
    """The summary's targets by name, in config order."""
    return summary["targets"]


def row_reasons(reasons: dict, row: dict) -> dict:
    """Why each empty cell of the row is empty (``reasons`` keyed by tables.row_key)."""
    return reasons.get(row_key(row), {})


def target_hardware(summary: dict, target: dict) -> str:
    """What the target really ran on. A target blocked before its device was chosen names the
    device ``auto`` picks on this machine (or the device it asked for)."""
    placement = target["placement"]
    device = placement.get("device")
    if device in (None, "auto"):
        requested = placement.get("requested_device")
        device = summary["env"].get("auto_device") if requested in (None, "auto") else requested
    return HARDWARE.get((device or "").split(":")[0], "unknown")


def hardware_of(summary: dict) -> str:
    """The card's hardware: NPU when some target ran on an NPU, else GPU when one ran on a
    GPU, else CPU."""
    found = {target_hardware(summary, target) for target in targets_of(summary).values()}
    return next((hardware for hardware in HARDWARE_PRIORITY if hardware in found), "unknown")


def front_matter(summary: dict) -> dict:
    """The card's YAML metadata (model hubs read it): license and base_model only when known."""
    hardware = hardware_of(summary)
    tags = (
        (ASCEND_TAGS if hardware == "NPU" else [hardware])
        + [t for t in (summary["task"], summary["library"]) if t]
        + ["npu-adapt"]
    )
    data = {"hardware": hardware, "tags": tags}
    if summary["license"]:
        data["license"] = summary["license"]
    if summary["base_model"]:
        data["base_model"] = summary["base_model"]
    data["pretrained"] = summary["pretrained"]
    if summary["library"]:
        data["library_name"] = summary["library"]
    if summary["task"]:
        data["pipeline_tag"] = summary["task"]
    return data


def status_text(status: str, reason: str | None) -> str:
    return status + (f": {short_reason(reason)}" if reason else "")


def self_check_text(target: dict) -> str:
    if target.get("self_check") is None:
        return "n/a (not recorded)"
    return "yes: determinism, not a port" if target["self_check"] else "no"


def worst_rel_l2(target: dict) -> str:
    """The largest rel_l2 over the target's outputs, or why there is none."""
    accuracy = target["accuracy"]
    values = [m["rel_l2"] for m in accuracy.get("outputs", {}).values() if m.get("rel_l2") is not None]
    if values:
        return format_cell(max(values))
    if accuracy.get("status") in ("blocked", "error"):
        return f"n/a (comparison {accuracy['status']})"
    return "n/a (no output has a finite rel_l2)"


def latency_bs1(target: dict) -> str:
    """The batch-1 p50 latency of the target's benchmark, or why there is none."""
    bench = target["benchmark"]
    if bench.get("status") == "blocked":
        return "n/a (benchmark blocked)"
    row = next((r for r in bench.get("results", []) if r["batch_size"] == 1), None)
    if row is None:
        return "n/a (batch size 1 not benchmarked)"
    return shown(row.get("p50_ms"), f"batch size 1 {row['status']}")


def _targets_blocks(summary: dict) -> list:
    rows = [
        [
            name,
            placement_text(target["placement"], "the target did not run"),
            shown(target["placement"].get("dtype"), "not recorded"),
            status_text(target["status"], target.get("reason")),
            self_check_text(target),
            worst_rel_l2(target),
            latency_bs1(target),
        ]
        for name, target in targets_of(summary).items()
    ]
    header = ["target / 目标", "device", "dtype", "status / 状态", "self-check", "worst rel_l2", "latency_p50_ms_bs1"]
    return [
        Heading("Targets / 目标"),
        Text(
            "The model's status is its worst target's, "
            "a self-check counting only when no target made a real comparison. "
            "A self-check target ran where the reference did: it shows determinism, not a port. "
            "模型状态取各目标中最差者（自检目标仅在没有真实对比时计入）。"
        ),
        Table(header, rows),
    ]


def _model_blocks(summary: dict) -> list:
    weights = summary["weights"]
    if weights["pretrained"]:
        provenance = "pretrained weights loaded from the source"
    else:
        provenance = f"NOT pretrained: {short_reason(weights['reason'])}"
    if summary["license"]:
        license_cell = f"{summary['license']} (declared by {summary['license_source']})"
    else:
        license_cell = f"n/a (unknown: set models.{summary['model']}.license in config.yaml)"
    rows = [
        ["model key", summary["model"]],
        ["source", summary["source"]],
        ["base model", shown(summary["base_model"], f"not a hub source: set models.{summary['model']}.base_model")],
        ["revision", shown(summary["revision"], "none pinned in the source")],
        ["task", shown(summary["task"], "not set")],
        ["family / library", f"{summary['family']} / {summary['library'] or 'n/a (unknown family)'}"],
        ["parameters", shown(summary["params"], "the model did not load")],
        ["parameters (millions)", shown(summary["params_m"], "the model did not load")],
        ["license", license_cell],
        ["pretrained", format_cell(weights["pretrained"])],
        ["weights", provenance],
    ]
    blocks = [Heading("Model information / 模型信息"), Table(["field / 字段", "value / 值"], rows)]
    blocks.append(Heading("Weights provenance / 权重来源", 3))
    if weights["files"]:
        if weights.get("dir"):
            blocks.append(
                Text(f"Directory: `{weights['dir']}`. Full provenance in the weights manifest (see Evidence files).")
            )
        # Manifest paths are relative to the weights directory (absolute in older manifests).
        base = weights.get("dir")
        files = [
            [
                os.path.relpath(f["path"], base) if base and os.path.isabs(f["path"]) else f["path"],
                format_cell(f["bytes"]),
                f["sha256"],
            ]
            for f in weights["files"]
        ]
        blocks.append(Table(["file / 文件", "bytes / 字节", "sha256"], files))
    else:
        blocks.append(Text(f"n/a (no weight files: {short_reason(weights['reason'])})"))
    if summary["inputs"]:
        blocks.append(Heading("Inputs and outputs / 输入与输出", 3))
        tensors = [["input", t["name"], format_cell(t["shape"]), t["dtype"]] for t in summary["inputs"]]
        tensors += _output_rows(summary)
        blocks.append(Table(["role", "tensor", "shape (batch 1)", "dtype"], tensors))
    return blocks


def _output_rows(summary: dict) -> list[list[str]]:
    """The outputs once when every target has the same; else each target's, named."""
    targets = {name: target.get("outputs") or [] for name, target in targets_of(summary).items()}
    lists = [outputs for outputs in targets.values() if outputs]
    if lists and all(outputs == lists[0] for outputs in lists):
        targets = {None: lists[0]}
    return [
        ["output" if name is None else f"output of {name}", t["name"], format_cell(t["shape"]), t["dtype"]]
        for name, outputs in targets.items()
        for t in outputs
    ]


def _environment_blocks(summary: dict) -> list:
    env = summary["env"]
    rows = [
        ["accelerator found", format_cell(env["accelerator"]) + (f" ({env['note']})" if env.get("note") else "")],
        ["device `auto` picks here", shown(env.get("auto_device"), "not recorded")],
    ]
    rows += [[name, shown(version, "not installed")] for name, version in env["versions"].items()]
    rows += [[f"host {key}", shown(value, "unknown")] for key, value in env["host"].items()]
    rows.append(["npu-adapt commit", shown(summary["workflow_commit"], "the workflow is not a git checkout")])
    reference = reference_placement(env)
    placements = [
        [
            "reference",
            shown(reference["requested_device"], "not recorded"),
            placement_text(reference, "the reference did not run"),
            shown(reference["dtype"], "not recorded"),
            "n/a (the reference runs as configured, float32 by default)",
            "n/a (the reference is not benchmarked)",
        ]
    ]
    for name, target in targets_of(summary).items():
        placement = target["placement"]
        placements.append(
            [
                f"target {name}",
                shown(placement.get("requested_device"), "not recorded"),
                placement_text(placement, "the target did not run"),
                shown(placement.get("dtype"), "not recorded"),
                shown(placement.get("precision"), "not recorded"),
                shown(target["benchmark"].get("threads"), "the benchmark did not start torch"),
            ]
        )
    header = [
        "placement / 运行位置",
        "device requested",
        "device (ran on)",
        "dtype",
        "precision",
        "torch threads (benchmark job)",
    ]
    return [
        Heading("Environment / 运行环境"),
        Table(header, placements),
        Table(["field / 字段", "value / 值"], rows),
    ]


def config_yaml(summary: dict) -> str:
    return yaml.safe_dump(summary["config"], sort_keys=False, allow_unicode=True, default_flow_style=False)


def _reproduce_blocks(summary: dict) -> list:
    model = summary["model"]
    config_file = f"{model}.yaml"  # beside the checkout's own config.yaml, whose settings it overrides
    blocks = [Heading("How to reproduce / 复现方法")]
    if summary["workflow_commit"]:
        blocks.append(
            Text(
                f"Check out npu-adapt at commit `{summary['workflow_commit']}`, "
                f"save the configuration below as `{config_file}` and run the command "
                "(on an Ascend machine, in the `envs/npu.yaml` environment). "
                "在 Ascend 机器上检出上述提交，保存下列配置并运行命令。"
            )
        )
    else:
        blocks.append(
            Text(
                f"Save the configuration below as `{config_file}` in an npu-adapt checkout and run the command "
                "(the commit is unknown: the workflow was not a git checkout). 保存下列配置并运行命令。"
            )
        )
    if summary["config"]:
        blocks.append(Code(config_yaml(summary), "yaml"))
    else:
        blocks.append(Text("n/a (the configuration slice was not recorded in summary.json)"))
    # --configfile takes several values: it goes after the target, or it would swallow it. The
    # saved config is complete: it replaces config.yaml instead of merging into it (a merge would
    # bring back the keys and targets this run did not have).
    command = f"snakemake --cores 1 results/{model}/README.md --configfile {config_file} --replace-workflow-config"
    blocks.append(Code(command, "bash"))
    return blocks


def _evidence_blocks(summary: dict, card_dir: str) -> list:
    blocks = [
        Heading("Evidence files / 证据文件"),
        Text(
            "Every number above is read from these files (paths relative to this card); "
            "logs of each job are under `logs/`. 以上所有数字均来自下列文件。"
        ),
    ]
    if not summary["evidence"]:
        blocks.append(Text("n/a (no evidence list recorded in summary.json)"))
        return blocks
    rows = []
    for item in summary["evidence"]:
        href = os.path.relpath(item["path"], card_dir)
        rows.append([Link(href, href), format_cell(item["bytes"]), item["sha256"]])
    blocks.append(Table(["evidence file / 证据文件", "bytes / 字节", "sha256"], rows))
    return blocks


def card_blocks(summary: dict, card_dir: str | None = None) -> list:
    """The model card's content, from summary.json alone (``card_dir``: where the card lives,
    relative to the working directory, for the evidence links; each target's plot is in its
    own directory below it)."""
    card_dir = card_dir or f"results/{summary['model']}"
    if summary["pretrained"]:
        weights = "pretrained weights"
    elif summary["weights"]["files"]:
        weights = "random-init weights, NOT pretrained"
    else:
        weights = "no weights"
    per_target = []
    for name, target in targets_of(summary).items():
        per_target += accuracy_blocks(summary, name, target) + benchmark_blocks(summary, name, target)
    return [
        Heading(f"{summary['model']} on {hardware_of(summary)}", 1),
        Text(
            "Generated by npu-adapt from the JSON files of this run; do not edit by hand. "
            "本文件由 npu-adapt 根据本次运行的 JSON 文件自动生成，请勿手工修改。"
        ),
        Text(f"{status_text(summary['status'], summary['reason'])}; {weights}", label="Status / 状态:"),
        *_targets_blocks(summary),
        *_model_blocks(summary),
        *_environment_blocks(summary),
        *per_target,
        *_reproduce_blocks(summary),
        *_evidence_blocks(summary, card_dir),
    ]


def model_card(summary: dict, card_dir: str | None = None) -> str:
    """The model's README.md: YAML front matter, then the card, from summary.json alone."""
    meta = yaml.safe_dump(front_matter(summary), sort_keys=False, allow_unicode=True)
    return f"---\n{meta}---\n\n" + to_markdown(card_blocks(summary, card_dir))


def leaderboard_cells(row: dict, reasons: dict, columns: list[str] | None = None) -> list[str]:
    """The row's cells as shown in reports: ``n/a (why)`` for missing values, the reason
    without its traceback. ``reasons``: why each of this row's missing cells is missing."""
    cells = []
    for column in columns or LEADERBOARD_COLUMNS:
        value = short_reason(row[column]) if column == "reason" else row[column]
        cells.append(shown(value, reasons.get(column, "not measured")))
    return cells


def leaderboard_markdown(rows: list[dict], reasons: dict[str, dict] | None = None) -> str:
    """The leaderboard CSV as a Markdown table, one row per model x target, ranked by status
    (tables.ranked), faster first within each; the model links to its card. ``reasons``: per
    row (``row_key``: model/target), why each missing cell is missing."""
    reasons = reasons or {}
    body = []
    for row in ranked(rows):
        cells = leaderboard_cells(row, row_reasons(reasons, row))
        body.append([Link(cells[0], f"{row['model']}/README.md"), *cells[1:]])
    intro = (
        "Generated by npu-adapt from each model's summary.json: one row per model and target, "
        "worst case over the target's outputs in the error columns. 由 npu-adapt 自动生成，每个模型的每个目标一行。"
    )
    notes = "\n".join(f"- `{column}`: {note}" for column, note in BENCHMARK_COLUMN_NOTES.items())
    return (
        "# Leaderboard / 排行榜\n\n"
        + intro
        + "\n\n"
        + markdown_table(LEADERBOARD_COLUMNS, body)
        + "\n\nBenchmark columns:\n\n"
        + notes
        + "\n"
    )
