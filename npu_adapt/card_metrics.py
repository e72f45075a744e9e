"""The accuracy and performance sections of a model card, one of each per target, from the
target's compare.json (``accuracy``) and benchmark.json (``benchmark``) as summary.json holds
them. Also :func:`benchmark_table`, which ``npu-adapt bench`` prints."""

from __future__ import annotations

import posixpath

from npu_adapt.blocks import Heading, Image, Link, Table, Text
from npu_adapt.reports import STATUS_MEANING, format_cell, short_reason, shown


def placement_text(placement: dict, did_not_run: str) -> str:
    """Where a dump ran: ``device (device name)``, or ``n/a (why)`` when it never chose one."""
    device, name = placement.get("device"), placement.get("device_name")
    if device is None:
        return f"n/a ({did_not_run})"
    return f"{device} ({name})" if name else device


def reference_placement(env: dict) -> dict:
    return {
        "requested_device": env.get("reference_requested"),
        "device": env.get("reference_device"),
        "device_name": env.get("reference_device_name"),
        "dtype": env.get("reference_dtype"),
    }


def accuracy_blocks(summary: dict, name: str, target: dict) -> list:
    """One target's accuracy section: verdict, criteria, error budget, the table per output."""
    accuracy, placement = target["accuracy"], target["placement"]
    criteria, outputs = accuracy.get("criteria", {}), accuracy.get("outputs", {})
    blocks = [Heading(f"Accuracy / 精度对比 — target `{name}`")]
    reference = reference_placement(summary["env"])
    blocks.append(
        Text(
            f"Target `{name}`: {placement_text(placement, 'the target did not run')} {shown(placement.get('dtype'), 'n/a')} against the reference {placement_text(reference, 'the reference did not run')} {shown(reference['dtype'], 'n/a')}; metrics computed in float64 over the flattened outputs. 目标设备输出与参考（CPU）输出逐张量对比。"
        )
    )
    if target.get("self_check"):
        blocks.append(
            Text(
                "this target ran where the reference did (same device kind, dtype and precision modes): its numbers show the run's determinism, not a port. 本目标与参考在同一设备、同一精度上运行，仅验证确定性，不是移植验证。",
                label="Self-check / 自检:",
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
    unset = {
        "within_min": "not judged, reported only",
        "token_prefix": "tokens must agree at every position",
        "max_error_ratio": "not set, opt-in",
    }
    rows = [
        [name, shown(value, unset.get(name, "not set")), sources.get(name, "n/a (not recorded)")]
        for name, value in criteria.items()
    ]
    blocks.append(Table(["criterion / 判据", "threshold / 阈值", "from / 来源"], rows))
    blocks.append(Text(precision_text(accuracy.get("target") or {}, name), label="Target precision modes / 精度模式:"))
    budget = error_budget_text(accuracy)
    if budget:
        blocks.append(Text(budget, label="Error budget / 误差预算:"))
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
                error_ratio_cell(m),
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
                    "error_ratio_vs_cpu_same_dtype",
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
                shown(outputs[name].get("cpu_same_dtype_rel_l2"), error_ratio_reason(outputs[name])),
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
        blocks.append(
            Table(
                [
                    "output",
                    "rmse",
                    "cpu_same_dtype_rel_l2",
                    "max_rel_diff",
                    "within_rtol_frac",
                    "nan_target",
                    "inf_target",
                ],
                more,
            )
        )
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


def error_ratio_reason(metrics: dict) -> str:
    return short_reason(metrics.get("error_ratio_reason")) or "not recorded in compare.json"


def error_ratio_cell(metrics: dict) -> str:
    """error_ratio_vs_cpu_same_dtype, or ``n/a (why)`` from error_ratio_reason."""
    return shown(metrics.get("error_ratio_vs_cpu_same_dtype"), error_ratio_reason(metrics))


def error_budget_text(accuracy: dict) -> str | None:
    """What the error ratio is measured against (compare.json error_budget), or why nothing."""
    budget = accuracy.get("error_budget")
    if budget is None:
        return None
    if not budget.get("cpu_same_dtype"):
        return f"n/a ({short_reason(budget.get('reason')) or 'no CPU run in the same dtype'})"
    return (
        f"a CPU run of the model in the target's dtype (`{budget['cpu_same_dtype']}`) is the yardstick of a healthy "
        "implementation: error_ratio_vs_cpu_same_dtype = the target's rel_l2 ÷ that run's rel_l2 (cpu_same_dtype_rel_l2), "
        "both against the float32 reference; 1 means as close as the CPU in the same dtype, above 1 further. "
        "`max_error_ratio` makes it a criterion (opt-in). 误差比：目标误差与同精度 CPU 误差之比。"
    )


def precision_text(target: dict, name: str = "target") -> str:
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
        f"`targets.{name}.precision: {target.get('precision') or 'default'}`; {reduced}: float32 matmul precision {modes.get('float32_matmul_precision')}, "
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
