"""Reports generated from the workflow's JSON files only: summary.json, the model card
(README.md) and the leaderboard. Nothing here computes a metric; it reads and arranges.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

LEADERBOARD_COLUMNS = [
    "model",
    "task",
    "source",
    "pretrained",
    "params_m",
    "target_device",
    "target_dtype",
    "status",
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "mean_abs_diff",
    "top1_match",
    "top5_match",
    "latency_ms_bs1",
    "best_throughput",
    "best_batch",
    "peak_mem_mb",
    "reason",
]


def workflow_commit(directory: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def overall_status(manifest: dict, reference: dict, target: dict, compare: dict, benchmark: dict) -> tuple[str, str | None]:
    """pass / fail / blocked, and why: the first stage that blocked, else the comparison."""
    stages = (("weights", manifest), ("reference", reference), ("target", target), ("compare", compare), ("benchmark", benchmark))
    for stage, document in stages:
        if document.get("status") == "blocked":
            return "blocked", f"{stage}: {document.get('reason')}"
    if compare["status"] == "fail":
        return "fail", compare["reason"]
    return "pass", None


def build_summary(model: str, entry: dict, manifest: dict, env: dict, inputs: dict, reference: dict, target: dict, compare: dict, benchmark: dict, commit: str | None) -> dict:
    status, reason = overall_status(manifest, reference, target, compare, benchmark)
    params = target.get("params") or reference.get("params")
    return {
        "model": model,
        "status": status,
        "reason": reason,
        "task": entry.get("task"),
        "family": entry.get("family"),
        "license": entry.get("license"),
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
        "env": {
            "target_device": target.get("device"),
            "target_device_name": target.get("device_name"),
            "target_dtype": target.get("dtype"),
            "reference_device": reference.get("device"),
            "reference_device_name": reference.get("device_name"),
            "reference_dtype": reference.get("dtype"),
            "accelerator": env.get("accelerator"),
            "note": env.get("note"),
            "versions": env.get("versions", {}),
            "host": env.get("host", {}),
        },
        "inputs": [{k: t[k] for k in ("name", "shape", "dtype")} for t in inputs.get("tensors", [])],
        "accuracy": compare,
        "benchmark": benchmark,
        "workflow_commit": commit,
    }


def _worst(outputs: dict, key: str, worst=max):
    values = [metrics[key] for metrics in outputs.values() if metrics.get(key) is not None]
    return worst(values) if values else None


def leaderboard_row(summary: dict) -> dict:
    """One leaderboard row: worst case over the model's outputs for the error columns."""
    outputs = summary["accuracy"].get("outputs", {})
    rows = [row for row in summary["benchmark"].get("results", []) if row.get("status") == "ok"]
    best = max(rows, key=lambda row: row["throughput"], default=None)
    bs1 = next((row for row in rows if row["batch_size"] == 1), None)
    return {
        "model": summary["model"],
        "task": summary["task"],
        "source": summary["source"],
        "pretrained": summary["pretrained"],
        "params_m": round(summary["params"] / 1e6, 3) if summary["params"] else None,
        "target_device": summary["env"]["target_device"],
        "target_dtype": summary["env"]["target_dtype"],
        "status": summary["status"],
        "rel_l2": _worst(outputs, "rel_l2"),
        "cosine": _worst(outputs, "cosine", min),
        "max_abs_diff": _worst(outputs, "max_abs_diff"),
        "mean_abs_diff": _worst(outputs, "mean_abs_diff"),
        "top1_match": _worst(outputs, "top1_match", min),
        "top5_match": _worst(outputs, "top5_match", min),
        "latency_ms_bs1": bs1["mean_ms"] if bs1 else None,
        "best_throughput": best["throughput"] if best else None,
        "best_batch": best["batch_size"] if best else None,
        "peak_mem_mb": max((row["peak_mem_mb"] for row in rows), default=None),
        "reason": summary["reason"],
    }


def null_reasons(row: dict, summary: dict) -> dict:
    """Why each empty cell is empty (the CSV never has a blank cell)."""
    reasons = {}
    has_class_scores = any(m.get("top1_match") is not None for m in summary["accuracy"].get("outputs", {}).values())
    for column, value in row.items():
        if value is not None:
            continue
        if summary["status"] == "blocked":
            reasons[column] = "model blocked"
        elif column in ("top1_match", "top5_match") and not has_class_scores:
            reasons[column] = "no class-score output"
        elif column == "reason":
            reasons[column] = "passed"
        else:
            reasons[column] = "not measured"
    return reasons


def format_cell(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def markdown_cell(value) -> str:
    """A table cell: pipes escaped and newlines folded, so a reason cannot break the table."""
    return format_cell(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def model_card(summary: dict) -> str:
    """The model's README.md, from its summary.json alone."""
    env, accuracy, bench = summary["env"], summary["accuracy"], summary["benchmark"]
    weights = summary["weights"]
    provenance = "pretrained weights loaded" if weights["pretrained"] else f"NOT pretrained: {weights['reason']}"
    lines = [
        f"# {summary['model']}",
        "",
        f"**Status: {summary['status']}**" + (f" ({summary['reason']})" if summary["reason"] else ""),
        "",
        "## Model / 模型信息",
        "",
        _table(["field", "value"], [
            ["source", summary["source"]],
            ["revision", summary["revision"]],
            ["task", summary["task"]],
            ["parameters", summary["params"]],
            ["weights", provenance],
        ]),
        "",
        _table(["weight file", "bytes", "sha256"], [[Path(f["path"]).name, f["bytes"], f["sha256"]] for f in weights["files"]]),
        "",
        "## Environment / 运行环境",
        "",
        _table(["field", "value"], [
            ["target device", f"{env['target_device']} ({env['target_device_name']})"],
            ["target dtype", env["target_dtype"]],
            ["reference device", f"{env['reference_device']} ({env['reference_device_name']})"],
            ["reference dtype", env["reference_dtype"]],
            *[[name, version] for name, version in env["versions"].items()],
        ]),
        "",
        "## Accuracy / 精度对比",
        "",
        "Criteria: " + ", ".join(f"{k}={format_cell(v)}" for k, v in accuracy["criteria"].items()),
        "",
        _table(
            ["output", "pass", "rel_l2", "cosine", "max_abs_diff", "mean_abs_diff", "top1_match", "top5_match", "ascend_verdict"],
            [[name, m["pass"], m["rel_l2"], m["cosine"], m["max_abs_diff"], m["mean_abs_diff"], m["top1_match"], m["top5_match"], m["ascend_verdict"]] for name, m in accuracy.get("outputs", {}).items()],
        ),
        "",
        "## Performance / 性能",
        "",
        _table(
            ["batch", "status", "runs", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "throughput", "peak_mem_mb"],
            [[r["batch_size"], r["status"], r.get("runs"), r.get("mean_ms"), r.get("p50_ms"), r.get("p90_ms"), r.get("p99_ms"), r.get("throughput"), r.get("peak_mem_mb")] for r in bench.get("results", [])],
        ),
        "",
    ]
    return "\n".join(lines)


def leaderboard_markdown(rows: list[dict]) -> str:
    """Pass first, then fail, then blocked; faster first within each."""
    order = {"pass": 0, "fail": 1, "blocked": 2}
    ranked = sorted(rows, key=lambda row: (order.get(row["status"], 3), row["latency_ms_bs1"] if row["latency_ms_bs1"] is not None else float("inf")))
    return "# Leaderboard\n\n" + _table(LEADERBOARD_COLUMNS, [[row[c] for c in LEADERBOARD_COLUMNS] for row in ranked]) + "\n"
