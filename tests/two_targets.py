"""Summaries of two targets, `fp32` and `bf16`, for the report tests (cards, leaderboard.md and
the HTML page), in summary.json's `targets` shape.

`fp32` is the tiny run's own target, its compare.json and benchmark.json as the workflow wrote
them (float32 on the CPU: a self-check). `bf16` is built here from literal documents, as
tests/test_status_render.py builds its statuses: a bfloat16 comparison judged by bfloat16
criteria, with an error budget (one output with its ratio to a CPU run in bfloat16, one
without, and why) and a benchmark of two batch sizes.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
from pathlib import Path

from conftest import load

from npu_adapt.cards import model_card
from npu_adapt.html_report import model_page
from npu_adapt.io import write_json
from npu_adapt.leaderboard_stage import write_leaderboard
from npu_adapt.plots import benchmark_plot
from npu_adapt.reports import STATUS_ORDER

MODELS = ("tiny-bert", "tiny-convnext")
BUDGET = "results/{model}/cpu-same-dtype/bfloat16/index.json"
# Per output (in compare.json order): rel_l2, cosine, max_abs_diff, the CPU-bfloat16 run's rel_l2.
BF16_ERRORS = [(0.0061, 0.99998, 0.031, 0.0048), (0.0094, 0.99995, 0.052, 0.0)]
BF16_CRITERIA = {"rel_l2_max": 0.008, "rel_l2_fail": 0.05, "cosine_min": 0.9999, "cosine_floor": 0.99}
NO_RATIO = "the CPU run in bfloat16 is bit-identical to the reference (rel_l2 0): no ratio"
# A bfloat16 benchmark per model: batch sizes 1 and 2 (p50 ms, items/s, host peak MB).
BF16_RUNS = {
    "tiny-bert": [(1, 3.75, 266.7, 701.5), (2, 5.5, 363.6, 702.25)],
    "tiny-convnext": [(1, 9.25, 108.1, 731.0), (2, 15.5, 129.0, 733.5)],
}


def bf16_outputs(fp32: dict, model: str) -> dict:
    outputs = {}
    for index, (name, metrics) in enumerate(fp32["outputs"].items()):
        rel_l2, cosine, max_abs, cpu_rel_l2 = BF16_ERRORS[(index + MODELS.index(model)) % len(BF16_ERRORS)]
        ratio = round(rel_l2 / cpu_rel_l2, 6) if cpu_rel_l2 else None
        over = rel_l2 > BF16_CRITERIA["rel_l2_max"]
        outputs[name] = {
            **metrics,
            "status": "warn" if over else "pass",
            "reason": f"rel_l2 {rel_l2} > rel_l2_max {BF16_CRITERIA['rel_l2_max']}" if over else None,
            "rel_l2": rel_l2,
            "cosine": cosine,
            "max_abs_diff": max_abs,
            "mean_abs_diff": max_abs / 8,
            "rmse": max_abs / 4,
            "max_rel_diff": 3.5,
            "within_rtol_frac": 0.625,
            "cpu_same_dtype_rel_l2": cpu_rel_l2,
            "error_ratio_vs_cpu_same_dtype": ratio,
            "error_ratio_reason": None if ratio is not None else NO_RATIO,
            "ascend_verdict": "Yes",
        }
    return outputs


def bf16_target(model: str, fp32: dict) -> dict:
    """The bfloat16 target beside a real float32 one (same outputs, same machine)."""
    accuracy = copy.deepcopy(fp32["accuracy"])
    outputs = bf16_outputs(accuracy, model)
    worst = max((m["status"] for m in outputs.values()), key=STATUS_ORDER.get)
    reasons = [f"{name}: {m['reason']}" for name, m in outputs.items() if m["reason"]]
    accuracy.update(
        status=worst,
        reason="; ".join(reasons) or None,
        self_check=False,
        criteria={**accuracy["criteria"], **BF16_CRITERIA, "max_error_ratio": None},
        criteria_class="bfloat16",
        criteria_source={
            **accuracy.get("criteria_source", {}),
            **dict.fromkeys(BF16_CRITERIA, "dtype default (bfloat16)"),
            "max_error_ratio": "default (opt-in: accuracy.max_error_ratio)",
        },
        error_budget={"cpu_same_dtype": BUDGET.format(model=model), "reason": None},
        outputs=outputs,
    )
    accuracy["target"] = {**accuracy.get("target", {}), "dtype": "bfloat16", "compute_dtype": "bfloat16"}
    bench = copy.deepcopy(fp32["benchmark"])
    bench.update(dtype="bfloat16", param_bytes=(bench.get("param_bytes") or 0) // 2 or None)
    bench["results"] = [
        {
            "batch_size": size,
            "status": "ok",
            "reason": None,
            "runs": 5,
            "warmup_runs": 1,
            "stable": True,
            "p50_ms": p50,
            "mean_ms": p50,
            "cv_pct": 2.5,
            "throughput": throughput,
            "throughput_method": "p50",
            "peak_host_rss_mb": rss,
            "peak_device_mem_mb": None,
            "peak_device_mem_reason": "CPU target: no device memory; see peak_host_rss_mb",
        }
        for size, p50, throughput, rss in BF16_RUNS[model]
    ]
    return {
        **fp32,
        "target": "bf16",
        "status": worst,
        "reason": accuracy["reason"],
        "self_check": False,
        "placement": {**fp32["placement"], "dtype": "bfloat16"},
        "outputs": [{**t, "dtype": "bfloat16"} for t in fp32["outputs"]],
        "accuracy": accuracy,
        "benchmark": bench,
        "files": "bf16",
    }


def two_target_summary(workdir: Path, model: str) -> dict:
    summary = load(workdir / f"results/{model}/summary.json")
    if len(summary["targets"]) >= 2:
        return summary
    real = copy.deepcopy(summary["targets"]["fp32"])
    fp32 = {**real, "target": "fp32", "files": "fp32"}
    bf16 = bf16_target(model, fp32)
    targets = {"fp32": fp32, "bf16": bf16}
    worst = max(targets.values(), key=lambda t: STATUS_ORDER[t["status"]])
    new = {key: value for key, value in summary.items() if key != "targets"}
    new.update(status=worst["status"], reason=f"{worst['target']}: {worst['reason']}", targets=targets)
    return new


def write_reports(workdir: Path, out: Path) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """A working directory ``out`` holding the tiny run (results/, weights/) with two targets:
    each model's summary.json, each target's compare.json and benchmark.json in its own
    directory with its plot (fp32's the run's own, bf16's drawn here from its benchmark rows),
    the cards (README.md, summary.html), leaderboard.csv, .md and .html. Returns rows, reasons
    (by row_key) and summaries (by model)."""
    for tree in ("results", "weights"):
        shutil.copytree(workdir / tree, out / tree, dirs_exist_ok=True)
    summaries = {model: two_target_summary(workdir, model) for model in MODELS}
    with contextlib.chdir(out):  # paths relative to the working directory, as the workflow's jobs see them
        for model, summary in summaries.items():
            card_dir = Path("results") / model
            write_json(card_dir / "summary.json", summary)
            for name, target in summary["targets"].items():
                directory = card_dir / target["files"]
                directory.mkdir(parents=True, exist_ok=True)
                write_json(directory / "compare.json", target["accuracy"])
                write_json(directory / "benchmark.json", target["benchmark"])
                real = workdir / "results" / model / target["files"] / "benchmark.png"
                if real.is_file():
                    shutil.copy(real, directory / "benchmark.png")
                else:
                    benchmark_plot(target["benchmark"]["results"], f"{model} {name}", directory / "benchmark.png")
            (card_dir / "README.md").write_text(model_card(summary, str(card_dir)))
            (card_dir / "summary.html").write_text(model_page(summary, str(card_dir)))
        board = (Path("results") / name for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.html"))
        rows, reasons = write_leaderboard(summaries, *board)
    return rows, reasons, summaries
