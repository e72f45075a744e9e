"""Every status (pass, self-check, warn, fail, error, blocked) renders with its reason and
colour in the card, the leaderboard (Markdown and HTML) and inspect's exit code. The
documents are built here as the jobs write them; `error` is what a dump or weight file whose
evidence is bad (unreadable, or altered after it was hashed) makes of a model."""

from __future__ import annotations

import json

import pytest

from npu_adapt.__main__ import main as cli
from npu_adapt.cards import leaderboard_markdown, model_card
from npu_adapt.config_types import ModelEntry, Placement
from npu_adapt.html_board import leaderboard_page
from npu_adapt.html_report import model_page
from npu_adapt.leaderboard_stage import leaderboard
from npu_adapt.reports import (
    STATUS_ORDER,
    build_summary,
    target_summary,
)

REASONS = {
    "pass": None,
    "self-check": (
        "the target ran where the reference did (cpu, float32, the same precision modes): "
        "this checks determinism, not a port"
    ),
    "warn": (
        "logits: top1 disagrees on 1 near-tied row(s): reference margin <= 0.001, "
        "within the band 0.018 (2 x rel_l2_max x the row's RMS)"
    ),
    "fail": "logits: rel_l2 0.1 > rel_l2_fail 0.08",
    "error": "logits: cannot read dump: ValueError: sha256 mismatch",
}


def documents(status: str) -> dict:
    outputs = {
        "logits": {
            "kind": "class_scores",
            "status": "error" if status == "error" else "pass",
            "reason": REASONS[status],
            "rel_l2": 0.1,
            "cosine": 0.99,
            "max_abs_diff": 0.5,
            "mean_abs_diff": 0.1,
            "rmse": 0.1,
            "max_rel_diff": 1.0,
            "within_rtol_frac": 0.5,
            "top1_match": 1.0,
            "top5_match": 1.0,
            "nan_target": 0,
            "inf_target": 0,
            "ascend_verdict": "Yes",
            "shape_target": [1, 4],
        }
    }
    compare = {
        "model": f"m-{status}",
        "status": status,
        "reason": REASONS[status],
        "criteria": {"rel_l2_max": 0.04},
        "criteria_class": "bfloat16",
        "criteria_source": {"rel_l2_max": "dtype default (bfloat16)"},
        "target": {"precision": "default", "precision_modes": None},
        "outputs": outputs,
    }
    index = {"status": "ok", "device": "cpu", "device_name": "cpu", "dtype": "bfloat16", "tensors": []}
    bench = {
        "status": "ok",
        "results": [
            {
                "batch_size": 1,
                "status": "ok",
                "mean_ms": 1.5,
                "p50_ms": 1.5,
                "cv_pct": 2.0,
                "stable": True,
                "peak_host_rss_mb": 10.0,
                "throughput": 600.0,
                "peak_mem_mb": 10.0,
            }
        ],
    }
    manifest = {"source": "local:/m", "pretrained": False, "reason": "random init", "files": []}
    placement = Placement(device="cpu", dtype="bfloat16", precision="default")
    target = target_summary("bf16", placement, manifest, index, index, compare, bench)
    return build_summary(
        f"m-{status}",
        ModelEntry(task="t", family="timm_image"),
        manifest,
        {"versions": {}, "host": {}},
        {"tensors": []},
        index,
        {"bf16": target},
        None,
    )


@pytest.mark.parametrize("status", ["pass", "self-check", "warn", "fail", "error"])
def test_each_status_is_stated_with_its_reason_in_card_and_leaderboard(status, tmp_path):
    summary = documents(status)
    assert summary["status"] == status
    expected = REASONS[status] and f"bf16: {'compare: ' if status == 'error' else ''}{REASONS[status]}"
    assert summary["reason"] == expected  # the target names itself, error its stage
    card = model_card(summary, str(tmp_path))
    assert f"**Status / 状态:** {status}" in card
    if status != "pass":
        assert f"**Verdict / 结论:** {status}: {REASONS[status]}" in card
    rows, reasons = leaderboard({summary["model"]: summary})
    markdown = leaderboard_markdown(rows, reasons)
    assert f"| {status} |" in markdown
    page = model_page(summary, str(tmp_path))
    assert f'<span class="status-{status}"' in page  # coloured by status in the HTML card
    board = leaderboard_page(rows, reasons, {summary["model"]: summary}, tmp_path)
    assert f'<td data-sort="{STATUS_ORDER[status]}"><span class="status-{status}"' in board
    assert f".status-{status} {{" in board  # the page styles the status


@pytest.mark.parametrize("status", ["pass", "self-check", "warn", "fail", "error"])
def test_each_target_status_is_stated_in_the_targets_table_and_its_row(status, tmp_path):
    summary = documents(status)
    target = summary["targets"]["bf16"]
    card = model_card(summary, str(tmp_path))
    reason = f": {target['reason']}" if target["reason"] else ""
    self_check = "yes: determinism, not a port" if target["self_check"] else "no"
    assert f"| bf16 | cpu (cpu) | bfloat16 | {status}{reason} | {self_check} | 0.1 | 1.5 |" in card
    assert "## Accuracy / 精度对比 — target `bf16`" in card and "![m-" in card and "(bf16/benchmark.png)" in card
    page = model_page(summary, str(tmp_path))
    assert f'<tr><td>bf16</td><td>cpu (cpu)</td><td>bfloat16</td><td><span class="status-{status}"' in page  # coloured
    rows, reasons = leaderboard({summary["model"]: summary})
    assert [(row["model"], row["target"], row["status"]) for row in rows] == [(summary["model"], "bf16", status)]
    assert f"| {status} |" in leaderboard_markdown(rows, reasons)
    board = leaderboard_page(rows, reasons, {summary["model"]: summary}, tmp_path)
    assert (
        f'data-key="{summary["model"]}/bf16" data-model="{summary["model"]}" data-target="bf16" data-status="{status}"'
        in board
    )
    assert f'<td data-sort="{STATUS_ORDER[status]}"><span class="status-{status}"' in board


def test_inspect_exit_code_follows_the_model_status(tmp_path):
    for status, code in (("pass", 0), ("self-check", 0), ("warn", 1), ("fail", 2), ("error", 3), ("blocked", 3)):
        model_dir = tmp_path / status
        model_dir.mkdir()
        (model_dir / "compare.json").write_text(
            json.dumps(
                {
                    "model": status,
                    "status": status,
                    "reason": REASONS.get(status, "upstream target blocked"),
                    "outputs": {},
                }
            )
        )
        assert cli(["inspect", str(model_dir)]) == code, status
    assert cli(["inspect", str(tmp_path / "empty")]) == 3  # no such directory: no evidence
