"""The leaderboard's rows (one per model and target, from the summaries), why their null
cells are null, and their ranking.

Every CSV is written by :func:`npu_adapt.io.write_csv` under one convention (``null``,
``true``/``false``, floats in full; see there) and reads back with :func:`npu_adapt.io.read_csv`.
The leaderboard's numbers are the summaries' numbers, unrounded: a cell read back with
pandas equals the value in summary.json.
"""

from __future__ import annotations

from npu_adapt.reports import (
    BENCHMARK_COLUMN_NOTES,
    LLM_COLUMNS,
    LLM_FAMILIES,
    STATUS_ORDER,
    short_reason,
)


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
        "params_m": summary["params_m"],
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
