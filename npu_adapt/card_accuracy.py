"""The accuracy section of a model card, one per target, from the target's compare.json
(``accuracy`` in summary.json): verdict, criteria, precision modes, error budget, the errors
per output and the layer localisation."""

from __future__ import annotations

from npu_adapt.blocks import Heading, Link, Table, Text
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
            f"Target `{name}`: {placement_text(placement, 'the target did not run')} "
            f"{shown(placement.get('dtype'), 'n/a')} against the reference "
            f"{placement_text(reference, 'the reference did not run')} {shown(reference['dtype'], 'n/a')}; "
            "metrics computed in float64 over the flattened outputs. 目标设备输出与参考（CPU）输出逐张量对比。"
        )
    )
    if target.get("self_check"):
        blocks.append(
            Text(
                "this target ran where the reference did (same device kind, dtype and precision modes): "
                "its numbers show the run's determinism, not a port. "
                "本目标与参考在同一设备、同一精度上运行，仅验证确定性，不是移植验证。",
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
        "fail: NaN/Inf where the reference is finite, a shape or dtype mismatch, "
        "rel_l2 = ‖t − r‖₂ / ‖r‖₂ above `rel_l2_fail`, cosine below `cosine_floor`, "
        "a class-score disagreement (top-1/top-5 when enabled) that is no near-tie, "
        "or generated tokens differing before `token_prefix` (null: anywhere). "
        "warn: rel_l2 above `rel_l2_max` or cosine below `cosine_min` "
        "(above the expected band of the compute dtype, still usable), "
        "class disagreements that are all near-ties (the reference's own margin between the classes is within twice "
        "rel_l2_max times the row's RMS; the margin is stated), tokens differing at or after `token_prefix`, "
        "or within_rtol_frac below `within_min` when set. "
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
                "More metrics per output (within_rtol_frac: |t − r| ≤ atol + rtol·|r| "
                f"with atol = {format_cell(criteria.get('atol'))}, rtol = {format_cell(criteria.get('rtol'))}):"
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
        token_rows = [_token_row(name, outputs[name]) for name in tokens]
        blocks.append(Text("Generated token ids (compared by exact match):"))
        blocks.append(Table(["output", "exact_match", "token_agreement", "first_mismatch", "status"], token_rows))
    return blocks


def _token_row(name: str, metrics: dict) -> list:
    """One generated-ids output; one that was never compared (missing, a shape or integrity
    error) says so instead of reading as identical."""
    if metrics.get("exact_match") is None:
        why = f"not compared: {metrics['status']}"
        return [name, f"n/a ({why})", f"n/a ({why})", f"n/a ({why})", output_verdict(metrics)]
    return [
        name,
        format_cell(metrics["exact_match"]),
        shown(metrics.get("token_agreement"), "not compared"),
        shown(metrics.get("first_mismatch"), "none: identical"),
        output_verdict(metrics),
    ]


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
        "implementation: error_ratio_vs_cpu_same_dtype = the target's rel_l2 ÷ that run's rel_l2 "
        "(cpu_same_dtype_rel_l2), "
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
        f"`targets.{name}.precision: {target.get('precision') or 'default'}`; "
        f"{reduced}: float32 matmul precision {modes.get('float32_matmul_precision')}, "
        f"cuda matmul allow_tf32 {format_cell(modes.get('cuda_matmul_allow_tf32'))}, "
        f"cudnn allow_tf32 {format_cell(modes.get('cudnn_allow_tf32'))}, {npu_text}."
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
                f"{first['name']} ({first.get('type')}, "
                f"{first.get('kind') or 'module'} in {first.get('module') or 'the model'})",
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
