"""The performance section of a model card, one per target, from the target's benchmark.json
(``benchmark`` in summary.json); also :func:`benchmark_table`, which ``npu-adapt bench`` prints."""

from __future__ import annotations

import posixpath

from npu_adapt.blocks import Heading, Image, Table, Text
from npu_adapt.reports import format_cell, short_reason, shown

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


def benchmark_blocks(summary: dict, name: str, target: dict) -> list:
    """One target's performance section, its plot ``{files}/benchmark.png`` beside the card."""
    bench = target["benchmark"]
    blocks = [Heading(f"Performance / 性能 — target `{name}`")]
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
    blocks.append(
        Image(f"{summary['model']} {name} benchmark", posixpath.join(target.get("files") or "", "benchmark.png"))
    )
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
        f"Device {shown(bench.get('device'), 'n/a')} ({shown(bench.get('device_name'), 'n/a')}), "
        f"dtype {shown(bench.get('dtype'), 'n/a')}, "
        f"{shown(bench.get('threads'), 'not recorded')} torch threads; "
        f"host CPU {shown(host.get('cpu'), 'not recorded')}, "
        f"governor {shown(host.get('governor'), 'not readable here')}, "
        f"load average (one, five, fifteen minutes) {loads(load.get('start'))} at the start "
        f"and {loads(load.get('end'))} at the end. "
        f"One call: {shown(bench.get('timed_call'), 'not recorded')}. "
        "Per batch size: a first call (not in the statistics), "
        f"{shown(bench.get('warmup'), 'not recorded')} warm-up calls, then timed calls until "
        f"{shown(settings.get('min_runs'), 'n/a')} runs and {shown(settings.get('min_seconds'), 'n/a')} s "
        f"are both reached (at most {shown(settings.get('max_runs'), 'n/a')} runs), "
        f"all within a budget of {shown(settings.get('max_seconds'), 'n/a')} s per batch size. "
        "Latency is the p50 with the device synchronised after each call; "
        f"a row is stable when cv_pct <= {shown(rule.get('cv_pct_max'), 'n/a')}% "
        f"and its p50 drifts by at most {shown(rule.get('drift_pct_max'), 'n/a')}% "
        "between the first and second half of the runs (an unstable row is measured twice). "
        "Throughput: pipelined = back-to-back calls with one synchronisation (accelerators), "
        "p50 = the batch size divided by the p50. "
        "Raw per-call times: `benchmark_samples.csv`. 延迟为中位数（毫秒），吞吐单位为样本/秒。"
    )


def _llm_blocks(bench: dict) -> list:
    """Prefill and decode figures of a decoder-only LLM (rows carrying ttft_ms)."""
    results = [row for row in bench.get("results", []) if "ttft_ms" in row]
    if not results:
        return []
    rows = []
    for row in results:
        why = row["status"] if row["status"] != "ok" else f"ok; {row['reason']}"  # ok: a prefill over budget
        rows.append(
            [format_cell(row["batch_size"])]
            + [
                shown(row.get(key), why)
                for key in ("prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s")
            ]
        )
    return [
        Text(
            "Generation (KV cache on): time to first token = p50 of the prompt's prefill with its first token; "
            "decode = p50 over the new tokens, one step each. 首字延迟与逐字解码速度。"
        ),
        Table(["batch", "prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s"], rows),
    ]
