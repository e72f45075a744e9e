"""Reports generated from the workflow's JSON files only: summary.json (per target and per
model), and what every report shares: the leaderboard's columns, the statuses and what they
mean, and how a value is printed. The leaderboard's rows are :mod:`npu_adapt.tables`; the
model card and leaderboard.md :mod:`npu_adapt.cards`. Nothing here computes a metric; it
reads, picks the worst case and arranges.

Numbers are printed with :func:`format_cell` (6 significant digits); a value that does not
exist is printed as ``n/a (why)``, never as a blank cell.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from npu_adapt.jobs import TRACEBACK_MARK

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry, Placement

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
    "self-check": (
        "the target ran where the reference did (same device kind, dtype, precision modes): determinism, not a port"
    ),
    "warn": "usable, but above the expected band of its dtype (see why)",
    "fail": "an output is wrong (NaN/Inf, mismatch, error beyond the fail limit, class or token disagreement)",
    "error": "the evidence itself is bad (an unreadable or altered dump): no verdict",
    "blocked": "a stage could not run",
}

# What the benchmark columns of the leaderboard mean (printed under leaderboard.md).
BENCHMARK_COLUMN_NOTES = {
    "latency_p50_ms_bs1": "median (p50) latency of one call at batch size 1, device synchronised after each call",
    "cv_pct": "largest coefficient of variation (stdev / mean of the timed runs) over the measured batch sizes",
    "stable": (
        "every measured batch size stable: cv_pct and the drift of its p50 between the first and second half "
        "of the runs within benchmark.json's stability_rule (an unstable one is measured twice)"
    ),
    "best_throughput": (
        "highest items/s over the batch sizes: on an accelerator from back-to-back calls with one synchronisation "
        "(pipelined), on the CPU the batch size divided by the p50"
    ),
    "peak_host_rss_mb": (
        "highest peak resident memory of the benchmark process (Python, libraries and the model's host copy included)"
    ),
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
# Sources whose name is a hub id, and the prefix that makes it the card's base_model.
HUB_ID_PREFIXES = {"hf": "", "modelscope": "", "timm": "timm/"}


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
    """The model's status: its worst target's, the reason naming that target. A passing
    self-check only shows determinism, so it speaks for the model only when no target made
    a real comparison (fp32 self-check beside a bf16 pass: the model passes)."""
    judged = [name for name in targets if targets[name]["status"] != "self-check"] or list(targets)
    name = max(judged, key=lambda name: STATUS_ORDER.get(targets[name]["status"], 3))
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


def base_model_of(source: str, entry: ModelEntry) -> str | None:
    """The hub id of the original model: config's base_model, else implied by the source."""
    from npu_adapt.weights.sources import Source

    if entry.base_model:
        return entry.base_model
    parsed = Source.parse(source)  # every source of a run parses: rules/common.smk checked it
    return HUB_ID_PREFIXES[parsed.scheme] + parsed.name if parsed.scheme in HUB_ID_PREFIXES else None


def _placement(role: str, index: dict) -> dict:
    """Where a dump ran; a blocked dump never chose a device (its dtype is the one asked)."""
    ran = index.get("status") != "blocked"
    return {
        f"{role}_device": index.get("device") if ran else None,
        f"{role}_device_name": index.get("device_name") if ran else None,
        f"{role}_dtype": index.get("dtype"),
    }


def target_summary(
    name: str, placement: Placement, manifest: dict, reference: dict, dump: dict, compare: dict, benchmark: dict
) -> dict:
    """One target's part of summary.json: where it ran, its status and evidence."""
    status, reason = overall_status(
        {"weights": manifest, "reference": reference, "target": dump, "compare": compare, "benchmark": benchmark}
    )
    ran = dump.get("status") != "blocked"
    self_check = compare.get("self_check")
    if self_check is None:  # the comparison did not run: judge by the placements asked for
        self_check = placement.device == reference.get("device") and placement.dtype == reference.get("dtype")
    return {
        "target": name,
        "status": status,
        "reason": reason,
        "self_check": bool(self_check),
        "placement": {
            "requested_device": dump.get("requested_device") or placement.device,
            "device": dump.get("device") if ran else None,
            "device_name": dump.get("device_name") if ran else None,
            "dtype": dump.get("dtype") or placement.dtype,
            "precision": dump.get("precision") or placement.precision,
        },
        "outputs": [{k: t[k] for k in ("name", "shape", "dtype")} for t in dump.get("tensors", [])],
        "accuracy": compare,
        "benchmark": benchmark,
        "files": name,
    }


def build_summary(
    model: str,
    entry: ModelEntry,
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
    if entry.license:
        license_id, license_source = entry.license, f"config.yaml (models.{model}.license)"
    else:
        license_id, license_source = upstream_license(manifest)
    return {
        "model": model,
        "status": status,
        "reason": reason,
        "task": entry.task,
        "family": entry.family,
        "library": LIBRARY.get(entry.family),
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


# ---------------------------------------------------------------------------- formatting


def format_cell(value) -> str:
    """A value as the reports for people print it (cards, leaderboard.md and .html): null,
    true/false, floats to 6 significant digits. The CSVs keep every digit (io.csv_value)."""
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
