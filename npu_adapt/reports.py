"""Reports generated from the workflow's JSON files only: summary.json, the model card
(README.md), the leaderboard (CSV and Markdown). Nothing here computes a metric; it reads,
picks the worst case and arranges.

A card is built once as a list of blocks (:func:`card_blocks`) and rendered twice: as
Markdown here and as HTML in :mod:`npu_adapt.html_report`, so the two cannot disagree.
Numbers are printed with :func:`format_cell` (6 significant digits); a value that does not
exist is printed as ``n/a (why)``, never as a blank cell.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

LEADERBOARD_COLUMNS = [
    "model",
    "target",
    "task",
    "source",
    "pretrained",
    "params_m",
    "target_device",
    "target_dtype",
    "self_check",
    "status",
    "rel_l2",
    "cosine",
    "error_ratio_vs_cpu_same_dtype",
    "max_abs_diff",
    "mean_abs_diff",
    "top1_match",
    "top5_match",
    "latency_p50_ms_bs1",
    "cv_pct",
    "stable",
    "best_throughput",
    "best_batch",
    "peak_host_rss_mb",
    "peak_device_mem_mb",
    "param_bytes",
    "ttft_ms",
    "decode_tokens_per_s",
    "reason",
]

# Columns only decoder-only LLM rows fill (batch-size-1 figures of benchmark.json).
LLM_FAMILIES = {"hf_causal_lm"}
LLM_COLUMNS = ("ttft_ms", "decode_tokens_per_s")

# Model status, best first (the leaderboard's order; pass/warn/fail/self-check from the
# comparison, error when the evidence itself is bad, blocked when a stage could not run).
STATUS_ORDER = {"pass": 0, "self-check": 1, "warn": 2, "fail": 3, "error": 4, "blocked": 5}
# What each status tells the reader (cards, HTML legend).
STATUS_MEANING = {
    "pass": "every output within the expected error band of its compute dtype",
    "self-check": "the target ran where the reference did (same device kind, dtype, precision modes): determinism, not a port",
    "warn": "usable, but above the expected band of its dtype (see why)",
    "fail": "an output is wrong (NaN/Inf, mismatch, error beyond the fail limit, class or token disagreement)",
    "error": "the evidence itself is bad (an unreadable or altered dump): no verdict",
    "blocked": "a stage could not run",
}

# What the benchmark columns of the leaderboard mean (printed under leaderboard.md).
BENCHMARK_COLUMN_NOTES = {
    "latency_p50_ms_bs1": "median (p50) latency of one call at batch size 1, device synchronised after each call",
    "cv_pct": "largest coefficient of variation (stdev / mean of the timed runs) over the measured batch sizes",
    "stable": "every measured batch size stable: cv_pct and the drift of its p50 between the first and second half of the runs within benchmark.json's stability_rule (an unstable one is measured twice)",
    "best_throughput": "highest items/s over the batch sizes: on an accelerator from back-to-back calls with one synchronisation (pipelined), on the CPU the batch size divided by the p50",
    "peak_host_rss_mb": "highest peak resident memory of the benchmark process (Python, libraries and the model's host copy included)",
    "peak_device_mem_mb": "highest peak of the device allocator (tensors), n/a on a CPU target",
    "param_bytes": "bytes of the model's parameters and buffers in the target dtype",
}

# What the `hardware:` key of a model card says for the device the target really ran on.
HARDWARE = {"npu": "NPU", "cuda": "GPU", "cpu": "CPU"}
# Tags the Ascend model hubs index NPU ports by; only a card whose target ran on an NPU has them.
ASCEND_TAGS = ["NPU", "Ascend", "ascend-npu", "#+NPU"]
LIBRARY = {
    "hf_encoder": "transformers",
    "hf_seq2seq": "transformers",
    "hf_causal_lm": "transformers",
    "timm_image": "timm",
}
# Sources whose name is a hub id; the card's base_model then needs no config key.
HUB_SCHEMES = {"hf": "", "modelscope": "", "timm": "timm/"}

TRACEBACK_MARK = " | traceback tail:"


# ---------------------------------------------------------------------------- summary.json


def workflow_commit(directory: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def overall_status(documents: dict) -> tuple[str, str | None]:
    """A target's status (STATUS_ORDER) and why: the first stage that blocked or whose
    evidence is bad, else the comparison's (pass / self-check / warn / fail / error).
    ``documents``: stage name to its JSON document, in pipeline order, compare among them."""
    for stage, document in documents.items():
        if document.get("status") in ("blocked", "error"):  # error: that stage's evidence is bad
            return document["status"], f"{stage}: {document.get('reason')}"
    compare = documents["compare"]
    if compare["status"] == "pass":
        return "pass", None
    return compare["status"], compare.get("reason")


def worst_target(targets: dict) -> tuple[str, str | None]:
    """The model's status: its worst target's, the reason naming that target."""
    name = max(targets, key=lambda name: STATUS_ORDER.get(targets[name]["status"], 3))
    reason = targets[name]["reason"]
    return targets[name]["status"], f"{name}: {reason}" if reason else None


def front_matter_of(path: Path) -> dict:
    """The YAML front matter of a Markdown file ({} when it has none or it does not parse)."""
    text = path.read_text(errors="replace")
    if not text.startswith("---"):
        return {}
    head, sep, _ = text[3:].partition("\n---")
    try:
        data = yaml.safe_load(head) if sep else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def upstream_license(manifest: dict) -> tuple[str | None, str | None]:
    """The license the weights' own model card (README.md shipped with pretrained weights)
    declares, and which file said so. Only a file whose sha256 still matches the manifest
    counts."""
    from npu_adapt.io import sha256_file

    if not manifest.get("pretrained") or not manifest.get("dir"):
        return None, None
    card = Path(manifest["dir"]) / "README.md"
    listed = {str(Path(manifest["dir"]) / f["path"]): f["sha256"] for f in manifest.get("files", [])}
    if str(card) not in listed or not card.is_file() or sha256_file(card) != listed[str(card)]:
        return None, None
    license_id = front_matter_of(card).get("license")
    return (str(license_id), str(card)) if license_id else (None, None)


def base_model_of(source: str, entry: dict) -> str | None:
    """The hub id of the original model: config's base_model, else implied by the source."""
    if entry.get("base_model"):
        return entry["base_model"]
    scheme, _, name = source.partition(":")
    if scheme in HUB_SCHEMES:
        return HUB_SCHEMES[scheme] + name.partition("@")[0]
    return None


def _placement(role: str, index: dict) -> dict:
    """Where a dump ran; a blocked dump never chose a device (its dtype is the one asked)."""
    ran = index.get("status") != "blocked"
    return {
        f"{role}_device": index.get("device") if ran else None,
        f"{role}_device_name": index.get("device_name") if ran else None,
        f"{role}_dtype": index.get("dtype"),
    }


def target_summary(
    name: str, placement: dict, manifest: dict, reference: dict, dump: dict, compare: dict, benchmark: dict
) -> dict:
    """One target's part of summary.json: where it ran, its status and evidence."""
    status, reason = overall_status(
        {"weights": manifest, "reference": reference, "target": dump, "compare": compare, "benchmark": benchmark}
    )
    ran = dump.get("status") != "blocked"
    self_check = compare.get("self_check")
    if self_check is None:  # the comparison did not run: judge by the placements asked for
        self_check = placement.get("device") == reference.get("device") and placement.get("dtype") == reference.get(
            "dtype"
        )
    return {
        "target": name,
        "status": status,
        "reason": reason,
        "self_check": bool(self_check),
        "placement": {
            "requested_device": dump.get("requested_device") or placement.get("device"),
            "device": dump.get("device") if ran else None,
            "device_name": dump.get("device_name") if ran else None,
            "dtype": dump.get("dtype") or placement.get("dtype"),
            "precision": dump.get("precision") or placement.get("precision", "default"),
        },
        "outputs": [{k: t[k] for k in ("name", "shape", "dtype")} for t in dump.get("tensors", [])],
        "accuracy": compare,
        "benchmark": benchmark,
        "files": name,
    }


def build_summary(
    model: str,
    entry: dict,
    manifest: dict,
    env: dict,
    inputs: dict,
    reference: dict,
    targets: dict[str, dict],
    commit: str | None,
    config: dict | None = None,
    evidence: list[dict] | None = None,
    params: int | None = None,
) -> dict:
    """summary.json: everything the model card and the leaderboard show, in one document.

    ``params``: the parameter count when the reference dump has none (it blocked);
    ``targets``: per target name, its part (:func:`target_summary`); ``config`` the
    configuration slice that reproduces this model's run; ``evidence`` the files of the run
    with size and sha256 (both written by the summarize job)."""
    status, reason = worst_target(targets)
    params = reference.get("params") or params
    if entry.get("license"):
        license_id, license_source = entry["license"], f"config.yaml (models.{model}.license)"
    else:
        license_id, license_source = upstream_license(manifest)
    return {
        "model": model,
        "status": status,
        "reason": reason,
        "task": entry.get("task"),
        "family": entry.get("family"),
        "library": LIBRARY.get(entry.get("family")),
        "license": license_id,
        "license_source": license_source,
        "base_model": base_model_of(manifest["source"], entry),
        "source": manifest["source"],
        "revision": manifest.get("revision"),
        "pretrained": manifest["pretrained"],
        "weights": {
            "pretrained": manifest["pretrained"],
            "reason": manifest.get("reason"),
            "dir": manifest.get("dir"),
            "files": manifest.get("files", []),
        },
        "params": params,
        "params_m": round(params / 1e6, 3) if params else None,
        "env": {
            "reference_requested": reference.get("requested_device")
            or (config or {}).get("reference", {}).get("device"),
            **_placement("reference", reference),
            "auto_device": env.get("auto_device"),
            "accelerator": env.get("accelerator"),
            "note": env.get("note"),
            "versions": env.get("versions", {}),
            "host": env.get("host", {}),
            "threads": env.get("threads"),
        },
        "inputs": [{k: t[k] for k in ("name", "shape", "dtype")} for t in inputs.get("tensors", [])],
        "targets": targets,
        "config": config,
        "evidence": evidence or [],
        "workflow_commit": commit,
    }


# ---------------------------------------------------------------------------- leaderboard


def _worst(outputs: dict, key: str, worst=max):
    values = [metrics[key] for metrics in outputs.values() if metrics.get(key) is not None]
    return worst(values) if values else None


def row_key(row: dict) -> str:
    """A leaderboard row's key (model and target): what ``reasons`` are keyed by."""
    return f"{row['model']}/{row['target']}"


def leaderboard_row(summary: dict, target: str) -> dict:
    """One leaderboard row (a model on one target): worst case over the outputs in the error
    columns."""
    part = summary["targets"][target]
    outputs = part["accuracy"].get("outputs", {})
    rows = [row for row in part["benchmark"].get("results", []) if row.get("status") == "ok"]
    best = max(rows, key=lambda row: row["throughput"], default=None)
    bs1 = next((row for row in rows if row["batch_size"] == 1), None)
    device_peaks = [row["peak_device_mem_mb"] for row in rows if row.get("peak_device_mem_mb") is not None]
    cvs = [row["cv_pct"] for row in rows if row.get("cv_pct") is not None]
    return {
        "model": summary["model"],
        "target": target,
        "task": summary["task"],
        "source": summary["source"],
        "pretrained": summary["pretrained"],
        "params_m": round(summary["params"] / 1e6, 3) if summary["params"] else None,
        "target_device": part["placement"]["device"],
        "target_dtype": part["placement"]["dtype"],
        "self_check": part["self_check"],
        "status": part["status"],
        "rel_l2": _worst(outputs, "rel_l2"),
        "cosine": _worst(outputs, "cosine", min),
        "error_ratio_vs_cpu_same_dtype": _worst(outputs, "error_ratio_vs_cpu_same_dtype"),
        "max_abs_diff": _worst(outputs, "max_abs_diff"),
        "mean_abs_diff": _worst(outputs, "mean_abs_diff"),
        "top1_match": _worst(outputs, "top1_match", min),
        "top5_match": _worst(outputs, "top5_match", min),
        "latency_p50_ms_bs1": bs1["p50_ms"] if bs1 else None,
        "cv_pct": max(cvs, default=None),
        "stable": all(row.get("stable") for row in rows) if rows else None,
        "best_throughput": best["throughput"] if best else None,
        "best_batch": best["batch_size"] if best else None,
        "peak_host_rss_mb": max(
            (row["peak_host_rss_mb"] for row in rows if row.get("peak_host_rss_mb") is not None), default=None
        ),
        "peak_device_mem_mb": max(device_peaks, default=None),
        "param_bytes": part["benchmark"].get("param_bytes"),
        **{column: bs1.get(column) if bs1 else None for column in LLM_COLUMNS},
        "reason": part["reason"],
    }


def leaderboard_rows(summaries: list[dict]) -> list[dict]:
    """Every model on every one of its targets: one row each."""
    return [leaderboard_row(summary, target) for summary in summaries for target in summary["targets"]]


def null_reasons(row: dict, summary: dict) -> dict:
    """Why each empty cell of a row is empty (the CSV never has a blank cell)."""
    reasons = {}
    part = summary["targets"][row["target"]]
    outputs = part["accuracy"].get("outputs", {})
    has_class_scores = any(m.get("top1_match") is not None for m in outputs.values())
    results = part["benchmark"].get("results", [])
    sizes = [r["batch_size"] for r in results]
    unmeasured = next(
        (f"{r['status']}: {short_reason(r.get('reason'))}" for r in results if r.get("status") != "ok"), None
    )
    ratio_reason = next((m["error_ratio_reason"] for m in outputs.values() if m.get("error_ratio_reason")), None)
    for column, value in row.items():
        if value is not None:
            continue
        if part["status"] in ("blocked", "error"):
            reasons[column] = f"{row['target']} {part['status']}"
        elif column in ("top1_match", "top5_match") and not has_class_scores:
            reasons[column] = "no class-score output"
        elif column == "error_ratio_vs_cpu_same_dtype":
            reasons[column] = short_reason(part["accuracy"].get("error_budget", {}).get("reason") or ratio_reason) or (
                "not measured"
            )
        elif column in LLM_COLUMNS and summary.get("family") not in LLM_FAMILIES:
            reasons[column] = f"not a causal LM: family {summary.get('family')}"
        elif column in ("latency_p50_ms_bs1", *LLM_COLUMNS) and 1 not in sizes:
            reasons[column] = "batch size 1 not benchmarked"
        elif column == "peak_device_mem_mb" and any(r.get("peak_device_mem_reason") for r in results):
            reasons[column] = next(r["peak_device_mem_reason"] for r in results if r.get("peak_device_mem_reason"))
        elif column in BENCHMARK_COLUMN_NOTES and unmeasured:
            reasons[column] = f"batch size {unmeasured}"
        elif column == "reason":
            reasons[column] = "passed"  # every other status states its reason
        else:
            reasons[column] = "not measured"
    return reasons


def ranked(rows: list[dict]) -> list[dict]:
    """By status (STATUS_ORDER: pass, self-check, warn, fail, error, blocked); faster
    (batch-1 latency) first within each."""
    return sorted(
        rows,
        key=lambda row: (
            STATUS_ORDER.get(row["status"], 3),
            row["latency_p50_ms_bs1"] if row["latency_p50_ms_bs1"] is not None else float("inf"),
            row["model"],
            row["target"],
        ),
    )


# ---------------------------------------------------------------------------- formatting


def format_cell(value) -> str:
    """The CSV spelling of a value: null, true/false, 6 significant digits for floats."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def shown(value, why: str) -> str:
    """A report cell: the value, or ``n/a (why)`` when it does not exist."""
    return f"n/a ({why})" if value is None else format_cell(value)


def short_reason(reason: str | None) -> str | None:
    """A reason without its traceback tail (the JSON files keep the whole of it)."""
    return reason.split(TRACEBACK_MARK)[0] if reason else reason


def markdown_cell(value) -> str:
    """A table cell: pipes escaped and newlines folded, so a reason cannot break the table."""
    text = value if isinstance(value, str) else format_cell(value)
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------- card blocks


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    """One paragraph; `code` spans are marked with backticks, ``label`` is printed bold."""

    text: str
    label: str | None = None


@dataclass
class Link:
    text: str
    href: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str | Link]]


@dataclass
class Code:
    text: str
    language: str = ""


@dataclass
class Image:
    alt: str
    path: str  # relative to the card's directory


def hardware_of(summary: dict) -> str:
    """What the target really ran on: NPU only when it was an NPU. A model blocked before
    its target device was chosen names the device ``auto`` picks on this machine."""
    env = summary["env"]
    device = env["target_device"]
    if device in (None, "auto"):
        device = env.get("auto_device") if env.get("target_requested") in (None, "auto") else env["target_requested"]
    return HARDWARE.get((device or "").split(":")[0], "unknown")


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


def _device(env: dict, role: str) -> str:
    device, name = env[f"{role}_device"], env[f"{role}_device_name"]
    if device is None:
        return f"n/a ({role} did not run)"
    return f"{device} ({name})" if name else device


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
        tensors += [["output", t["name"], format_cell(t["shape"]), t["dtype"]] for t in summary["outputs"]]
        blocks.append(Table(["role", "tensor", "shape (batch 1)", "dtype"], tensors))
    return blocks


def _environment_blocks(summary: dict) -> list:
    env = summary["env"]
    rows = [
        ["target device requested", shown(env.get("target_requested"), "not recorded")],
        ["target device (ran on)", _device(env, "target")],
        ["target dtype", shown(env["target_dtype"], "target did not run")],
        ["reference device", _device(env, "reference")],
        ["reference dtype", shown(env["reference_dtype"], "reference did not run")],
        ["accelerator found", format_cell(env["accelerator"]) + (f" ({env['note']})" if env.get("note") else "")],
    ]
    rows += [[name, shown(version, "not installed")] for name, version in env["versions"].items()]
    rows += [[f"host {key}", shown(value, "unknown")] for key, value in env["host"].items()]
    bench_threads = summary["benchmark"].get("threads")
    rows.append(["torch threads (benchmark job)", shown(bench_threads, "the benchmark did not start torch")])
    rows.append(["npu-adapt commit", shown(summary["workflow_commit"], "the workflow is not a git checkout")])
    return [Heading("Environment / 运行环境"), Table(["field / 字段", "value / 值"], rows)]


def config_yaml(summary: dict) -> str:
    return yaml.safe_dump(summary["config"], sort_keys=False, allow_unicode=True, default_flow_style=False)


def _reproduce_blocks(summary: dict) -> list:
    model = summary["model"]
    config_file = f"{model}.yaml"  # beside the checkout's own config.yaml, whose settings it overrides
    blocks = [Heading("How to reproduce / 复现方法")]
    if summary["workflow_commit"]:
        blocks.append(
            Text(
                f"Check out npu-adapt at commit `{summary['workflow_commit']}`, save the configuration below as `{config_file}` and run the command (on an Ascend machine, in the `envs/npu.yaml` environment). 在 Ascend 机器上检出上述提交，保存下列配置并运行命令。"
            )
        )
    else:
        blocks.append(
            Text(
                f"Save the configuration below as `{config_file}` in an npu-adapt checkout and run the command (the commit is unknown: the workflow was not a git checkout). 保存下列配置并运行命令。"
            )
        )
    if summary["config"]:
        blocks.append(Code(config_yaml(summary), "yaml"))
    else:
        blocks.append(Text("n/a (the configuration slice was not recorded in summary.json)"))
    # --configfile takes several values: it goes after the target, or it would swallow it.
    blocks.append(Code(f"snakemake --cores 1 results/{model}/README.md --configfile {config_file}", "bash"))
    return blocks


def _accuracy_blocks(summary: dict) -> list:
    accuracy, env = summary["accuracy"], summary["env"]
    criteria, outputs = accuracy.get("criteria", {}), accuracy.get("outputs", {})
    blocks = [Heading("Accuracy / 精度对比")]
    blocks.append(
        Text(
            f"Target {_device(env, 'target')} {shown(env['target_dtype'], 'n/a')} against the reference {_device(env, 'reference')} {shown(env['reference_dtype'], 'n/a')}; metrics computed in float64 over the flattened outputs. 目标设备输出与参考（CPU）输出逐张量对比。"
        )
    )
    status = accuracy["status"]
    if status == "blocked":
        verdict = f"n/a: the comparison did not run ({short_reason(accuracy['reason'])})"
    elif status == "pass":
        verdict = f"pass: {STATUS_MEANING['pass']} ({accuracy.get('criteria_class', 'n/a')} criteria below)"
    else:
        verdict = f"{status}: {accuracy.get('reason')}"
    blocks.append(Text(verdict, label="Verdict / 结论:"))
    basis = (
        "each output is pass, warn or fail; the model takes its worst output's status. "
        "fail: NaN/Inf where the reference is finite, a shape or dtype mismatch, rel_l2 = ‖t − r‖₂ / ‖r‖₂ above `rel_l2_fail`, "
        "cosine below `cosine_floor`, a class-score disagreement (top-1/top-5 when enabled) that is no near-tie, or generated tokens "
        "differing before `token_prefix` (null: anywhere). warn: rel_l2 above `rel_l2_max` or cosine below `cosine_min` (above the "
        "expected band of the compute dtype, still usable), class disagreements that are all near-ties (the reference's own margin "
        "between the classes is within twice rel_l2_max times the row's RMS; the margin is stated), tokens differing at or after "
        "`token_prefix`, or within_rtol_frac below `within_min` when set. "
        "A comparison whose target ran where the reference did is a `self-check` (determinism, not a port). "
        "Element-wise relative error (max_rel_diff) is reported but never a criterion: it explodes near zero. "
        "The Ascend verdict column applies the rule of CANN's PyTorch precision compare (CPU as the benchmark). "
        "判定依据：按计算精度（dtype）取默认阈值，配置可覆盖，见下表。"
    )
    blocks.append(Text(basis, label="Basis / 依据:"))
    sources = accuracy.get("criteria_source") or {}
    unset = {"within_min": "not judged, reported only", "token_prefix": "tokens must agree at every position"}
    rows = [
        [name, shown(value, unset.get(name, "not set")), sources.get(name, "n/a (not recorded)")]
        for name, value in criteria.items()
    ]
    blocks.append(Table(["criterion / 判据", "threshold / 阈值", "from / 来源"], rows))
    blocks.append(Text(precision_text(accuracy.get("target") or {}), label="Target precision modes / 精度模式:"))
    if not outputs:
        return blocks
    error = [name for name, m in outputs.items() if m.get("kind") != "token_ids"]
    na = "not finite or undefined"
    rows = []
    for name in error:
        m = outputs[name]
        topk_na = "not a class-score output" if m.get("kind") != "class_scores" else na
        rows.append(
            [
                name,
                format_cell(m.get("shape_target")) if m.get("shape_target") else "n/a (not recorded)",
                shown(m["max_abs_diff"], na),
                shown(m["mean_abs_diff"], na),
                shown(m["rel_l2"], na),
                shown(m["cosine"], na),
                shown(m["top1_match"], topk_na),
                shown(m["top5_match"], topk_na),
                m["ascend_verdict"],
                output_verdict(m),
            ]
        )
    if rows:
        blocks.append(
            Table(
                [
                    "output",
                    "shape",
                    "max_abs_diff",
                    "mean_abs_diff",
                    "rel_l2",
                    "cosine",
                    "top1_match",
                    "top5_match",
                    "ascend_verdict",
                    "status",
                ],
                rows,
            )
        )
        more = [
            [
                name,
                shown(outputs[name]["rmse"], na),
                shown(outputs[name]["max_rel_diff"], na),
                shown(outputs[name]["within_rtol_frac"], na),
                format_cell(outputs[name]["nan_target"]),
                format_cell(outputs[name]["inf_target"]),
            ]
            for name in error
        ]
        blocks.append(
            Text(
                f"More metrics per output (within_rtol_frac: |t − r| ≤ atol + rtol·|r| with atol = {format_cell(criteria.get('atol'))}, rtol = {format_cell(criteria.get('rtol'))}):"
            )
        )
        blocks.append(Table(["output", "rmse", "max_rel_diff", "within_rtol_frac", "nan_target", "inf_target"], more))
    blocks += _layer_blocks(accuracy.get("layers"))
    tokens = [name for name in outputs if name not in error]
    if tokens:
        token_rows = [
            [
                name,
                format_cell(outputs[name].get("exact_match")),
                shown(outputs[name].get("token_agreement"), "not compared"),
                shown(outputs[name].get("first_mismatch"), "none: identical"),
                output_verdict(outputs[name]),
            ]
            for name in tokens
        ]
        blocks.append(Text("Generated token ids (compared by exact match):"))
        blocks.append(Table(["output", "exact_match", "token_agreement", "first_mismatch", "status"], token_rows))
    return blocks


def precision_text(target: dict) -> str:
    """The float32 precision modes the target dump recorded (index.json precision_modes)."""
    modes = target.get("precision_modes")
    if not modes:
        return "n/a (not recorded by the target dump)"
    npu = modes.get("npu")
    npu_text = (
        ", ".join(f"npu {key} {format_cell(value)}" for key, value in npu.items())
        if npu
        else f"npu n/a ({modes.get('npu_reason')})"
    )
    reduced = (
        "float32 may run in TF32/HF32 (a ten-bit mantissa)"
        if modes.get("reduced_float32")
        else "float32 runs in float32"
    )
    return (
        f"`target.precision: {target.get('precision') or 'default'}`; {reduced}: float32 matmul precision {modes.get('float32_matmul_precision')}, "
        f"cuda matmul allow_tf32 {format_cell(modes.get('cuda_matmul_allow_tf32'))}, cudnn allow_tf32 {format_cell(modes.get('cudnn_allow_tf32'))}, {npu_text}."
    )


def output_verdict(metrics: dict) -> str:
    """One output's status cell: ``pass``, or ``warn: why`` / ``fail: why`` / ``error: why``."""
    status = metrics.get("status") or "n/a"
    return status if status == "pass" else f"{status}: {metrics.get('reason')}"


def _layer_blocks(layers: dict | None) -> list:
    """Where a divergence starts (``layers: true``): the first module over the threshold."""
    if not layers:
        return []
    if not layers.get("enabled"):
        return [Text(f"Per-layer comparison: n/a ({layers.get('reason')}).")]
    blocks = [Heading("Layer localisation / 逐层定位", 3)]
    first = layers.get("first_divergence")
    rows = [
        ["capture", shown(layers.get("mode"), "tensors")],
        ["localisation", shown(layers.get("localisation"), "tensor-level")],
        [
            "modules compared",
            shown(layers.get("modules"), f"{layers.get('status')}: {short_reason(layers.get('reason'))}"),
        ],
        ["torch API calls compared", shown(layers.get("apis"), "not captured")],
        ["rows over the threshold", shown(layers.get("diverged"), f"{layers.get('status')}")],
    ]
    if first:
        rows += [
            [
                "first divergent row",
                f"{first['name']} ({first.get('type')}, {first.get('kind') or 'module'} in {first.get('module') or 'the model'})",
            ],
            ["its rel_l2", shown(first.get("rel_l2"), "not measured (statistics only)")],
            ["its rel_l2 lower bound (statistics)", shown(first.get("rel_l2_lower_bound"), "not a statistics capture")],
            ["its cosine", shown(first.get("cosine"), "not measured (statistics only)")],
            ["its max_abs_diff", shown(first.get("max_abs_diff"), "not measured (statistics only)")],
            ["why", shown(first.get("reason"), "not recorded")],
        ]
    else:
        rows.append(["first divergent row", f"n/a ({short_reason(layers.get('reason'))})"])
    blocks.append(Table(["field / 字段", "value / 值"], rows))
    if layers.get("table"):
        blocks.append(Table(["per-module table / 逐层表"], [[Link(layers["table"], layers["table"])]]))
    return blocks


BENCHMARK_TABLE = [
    "batch",
    "status",
    "stable",
    "warm-up",
    "runs",
    "first_call_ms",
    "p50_ms",
    "cv_pct",
    "iqr_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "throughput (items/s)",
    "throughput from",
    "peak_host_rss_mb",
    "peak_device_mem_mb",
    "speedup_vs_cpu",
    "elapsed_s",
]


def _stable_cell(row: dict) -> str:
    if row.get("stable") is None:
        return f"n/a ({row['status']})"
    if row["stable"]:
        return "yes" + (" (measured twice)" if row.get("remeasured") else "")
    return f"NO (cv {format_cell(row.get('cv_pct'))}%, drift {format_cell(row.get('drift_pct'))}%" + (
        ", measured twice)" if row.get("remeasured") else ")"
    )


def benchmark_table(bench: dict) -> tuple[list[str], list[list[str]]]:
    """The card's benchmark table (also printed by ``npu-adapt bench``): one row per batch
    size of benchmark.json, ``n/a (why)`` where a value does not exist."""
    baseline = bench.get("baseline") or {}
    no_speedup = (
        short_reason(baseline.get("reason")) if baseline.get("status") not in (None, "ok") else "no CPU baseline"
    )
    rows = []
    for row in bench.get("results", []):
        why = row["status"]
        status = row["status"] if not row.get("reason") else f"{row['status']}: {short_reason(row['reason'])}"
        few = f"{why}: fewer runs than this percentile needs" if why == "ok" else why
        elapsed = shown(row.get("elapsed_s"), why)
        if row.get("budget_overrun_s"):
            elapsed += f" ({format_cell(row['budget_overrun_s'])} s over budget)"
        rows.append(
            [
                format_cell(row["batch_size"]),
                status,
                _stable_cell(row),
                shown(row.get("warmup_runs"), why),
                shown(row.get("runs"), why),
                shown(row.get("first_call_ms"), why),
                shown(row.get("p50_ms"), why),
                shown(row.get("cv_pct"), why),
                shown(row.get("iqr_ms"), few),
                shown(row.get("p90_ms"), few),
                shown(row.get("p99_ms"), few),
                shown(row.get("mean_ms"), why),
                shown(row.get("throughput"), why),
                shown(row.get("throughput_method"), why),
                shown(row.get("peak_host_rss_mb"), why),
                shown(row.get("peak_device_mem_mb"), row.get("peak_device_mem_reason") or why),
                shown(row.get("speedup_vs_cpu"), why if row["status"] != "ok" else no_speedup),
                elapsed,
            ]
        )
    return BENCHMARK_TABLE, rows


def _benchmark_blocks(summary: dict) -> list:
    bench = summary["benchmark"]
    blocks = [Heading("Performance / 性能")]
    if bench.get("status") == "blocked":
        blocks.append(Text(f"n/a: the benchmark did not run ({short_reason(bench['reason'])})"))
        return blocks
    blocks.append(Text(benchmark_method(bench)))
    header, rows = benchmark_table(bench)
    if rows:
        blocks.append(Table(header, rows))
        blocks += _llm_blocks(bench)
    else:
        blocks.append(Text("n/a (no batch size was benchmarked)"))
    blocks.append(Image(f"{summary['model']} benchmark", "benchmark.png"))
    return blocks


def benchmark_method(bench: dict) -> str:
    """How the numbers of benchmark.json were measured, in one paragraph."""
    settings = bench.get("settings") or {}
    load = bench.get("load_average") or {}
    host = bench.get("host") or {}
    rule = bench.get("stability_rule") or {}

    def loads(values):
        return "/".join(format_cell(value) for value in values) if values else "n/a (not readable)"

    return (
        f"Device {shown(bench.get('device'), 'n/a')} ({shown(bench.get('device_name'), 'n/a')}), dtype {shown(bench.get('dtype'), 'n/a')}, "
        f"{shown(bench.get('threads'), 'not recorded')} torch threads; host CPU {shown(host.get('cpu'), 'not recorded')}, "
        f"governor {shown(host.get('governor'), 'not readable here')}, load average (one, five, fifteen minutes) {loads(load.get('start'))} at the start and {loads(load.get('end'))} at the end. "
        f"Per batch size: a first call (not in the statistics), {shown(bench.get('warmup'), 'not recorded')} warm-up calls, then timed calls until "
        f"{shown(settings.get('min_runs'), 'n/a')} runs and {shown(settings.get('min_seconds'), 'n/a')} s are both reached (at most {shown(settings.get('max_runs'), 'n/a')} runs), "
        f"all within a budget of {shown(settings.get('max_seconds'), 'n/a')} s per batch size. Latency is the p50 with the device synchronised after each call; "
        f"a row is stable when cv_pct <= {shown(rule.get('cv_pct_max'), 'n/a')}% and its p50 drifts by at most {shown(rule.get('drift_pct_max'), 'n/a')}% "
        "between the first and second half of the runs (an unstable row is measured twice). "
        "Throughput: pipelined = back-to-back calls with one synchronisation (accelerators), p50 = the batch size divided by the p50. "
        "Raw per-call times: `benchmark_samples.csv`. 延迟为中位数（毫秒），吞吐单位为样本/秒。"
    )


def _llm_blocks(bench: dict) -> list:
    """Prefill and decode figures of a decoder-only LLM (rows carrying ttft_ms)."""
    results = [row for row in bench.get("results", []) if "ttft_ms" in row]
    if not results:
        return []
    rows = []
    for row in results:
        why = row["status"]
        rows.append(
            [format_cell(row["batch_size"])]
            + [
                shown(row.get(key), why)
                for key in ("prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s")
            ]
        )
    return [
        Text(
            "Generation (KV cache on): time to first token = p50 of the prompt's prefill with its first token; decode = p50 over the new tokens, one step each. 首字延迟与逐字解码速度。"
        ),
        Table(["batch", "prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s"], rows),
    ]


def _evidence_blocks(summary: dict, card_dir: str) -> list:
    blocks = [
        Heading("Evidence files / 证据文件"),
        Text(
            "Every number above is read from these files (paths relative to this card); logs of each job are under `logs/`. 以上所有数字均来自下列文件。"
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
    """The model card's content, from summary.json alone (``card_dir``: where the card and
    its benchmark.png live, relative to the working directory, for the evidence links)."""
    card_dir = card_dir or f"results/{summary['model']}"
    status = summary["status"] + (f": {short_reason(summary['reason'])}" if summary["reason"] else "")
    if summary["pretrained"]:
        weights = "pretrained weights"
    elif summary["weights"]["files"]:
        weights = "random-init weights, NOT pretrained"
    else:
        weights = "no weights"
    return [
        Heading(f"{summary['model']} on {hardware_of(summary)}", 1),
        Text(
            "Generated by npu-adapt from the JSON files of this run; do not edit by hand. 本文件由 npu-adapt 根据本次运行的 JSON 文件自动生成，请勿手工修改。"
        ),
        Text(f"{status}; {weights}", label="Status / 状态:"),
        *_model_blocks(summary),
        *_environment_blocks(summary),
        *_reproduce_blocks(summary),
        *_accuracy_blocks(summary),
        *_benchmark_blocks(summary),
        *_evidence_blocks(summary, card_dir),
    ]


# ---------------------------------------------------------------------------- Markdown


def _markdown_cell(cell) -> str:
    if isinstance(cell, Link):
        return f"[{markdown_cell(cell.text)}]({cell.href})"
    return markdown_cell(cell)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(blocks: list) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Text):
            parts.append((f"**{block.label}** " if block.label else "") + block.text)
        elif isinstance(block, Table):
            parts.append(markdown_table(block.header, block.rows))
        elif isinstance(block, Code):
            parts.append(f"```{block.language}\n{block.text.rstrip()}\n```")
        elif isinstance(block, Image):
            parts.append(f"![{block.alt}]({block.path})")
        else:
            raise TypeError(f"unknown block {block!r}")
    return "\n\n".join(parts) + "\n"


def model_card(summary: dict, card_dir: str | None = None) -> str:
    """The model's README.md: YAML front matter, then the card, from summary.json alone."""
    meta = yaml.safe_dump(front_matter(summary), sort_keys=False, allow_unicode=True)
    return f"---\n{meta}---\n\n" + to_markdown(card_blocks(summary, card_dir))


def leaderboard_cells(row: dict, reasons: dict) -> list[str]:
    """The row's cells as shown in reports: ``n/a (why)`` for missing values, the reason
    without its traceback."""
    cells = []
    for column in LEADERBOARD_COLUMNS:
        value = short_reason(row[column]) if column == "reason" else row[column]
        cells.append(shown(value, reasons.get(column, "not measured")))
    return cells


def leaderboard_markdown(rows: list[dict], reasons: dict[str, dict] | None = None) -> str:
    """The leaderboard CSV as a Markdown table: pass first, then fail, then blocked; faster
    first within each. ``reasons``: per model, why each missing cell is missing."""
    reasons = reasons or {}
    body = []
    for row in ranked(rows):
        cells = leaderboard_cells(row, reasons.get(row["model"], {}))
        body.append([Link(cells[0], f"{row['model']}/README.md"), *cells[1:]])
    intro = "Generated by npu-adapt from each model's summary.json; worst case over a model's outputs in the error columns. 由 npu-adapt 自动生成。"
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
