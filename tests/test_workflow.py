"""End to end: the whole chain on two tiny random-init models (real Snakemake, real torch)."""

import csv
import hashlib

import numpy as np
import pytest
from conftest import load

from npu_adapt.reports import LEADERBOARD_COLUMNS

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models


def test_every_stage_writes_its_target_with_real_tensors(tiny_run):
    env = load(tiny_run / "results/env.json")
    assert env["auto_device"] == "cpu" and env["accelerator"] is False
    assert "no accelerator" in env["note"]
    assert env["versions"]["torch"]

    for model, expected_outputs in {
        "tiny-bert": {"last_hidden_state": [1, 12, 32], "pooler_output": [1, 32], "sentence_embedding": [1, 32]},
        "tiny-convnext": {"features": [1, 64], "logits": [1, 1000]},
    }.items():
        manifest = load(tiny_run / f"weights/{model}/manifest.json")
        assert manifest["pretrained"] is False
        assert "random-init (seed 0)" in manifest["reason"] and "offline" in manifest["reason"]
        assert any(f["path"].endswith("model.safetensors") for f in manifest["files"])

        for role in ("reference", "fp32/dump"):
            index = load(tiny_run / f"results/{model}/{role}/index.json")
            assert index["status"] == "ok" and index["device"] == "cpu" and index["dtype"] == "float32"
            shapes = {t["name"]: t["shape"] for t in index["tensors"]}
            assert shapes == expected_outputs
            for tensor in index["tensors"]:
                path = tiny_run / f"results/{model}/{role}" / tensor["file"]
                array = np.load(path)
                assert list(array.shape) == tensor["shape"]
                assert hashlib.sha256(path.read_bytes()).hexdigest() == tensor["sha256"]
                assert tensor["min"] == float(array.min()) and tensor["max"] == float(array.max())
                assert tensor["nan"] == 0 and tensor["inf"] == 0

        compare = load(tiny_run / f"results/{model}/fp32/compare.json")
        # CPU float32 against CPU float32 proves determinism, not a port, and says so.
        assert compare["status"] == "self-check" and "not a port" in compare["reason"]
        # Identical CPU float32 runs of the same weights on the same inputs: bit-identical.
        for metrics in compare["outputs"].values():
            assert metrics["rel_l2"] == 0.0 and metrics["max_abs_diff"] == 0.0
            assert metrics["cosine"] > 0.999999 and metrics["status"] == "pass"
    logits = load(tiny_run / "results/tiny-convnext/fp32/compare.json")["outputs"]["logits"]
    assert logits["top1_match"] == 1.0 and logits["top5_match"] == 1.0


def test_leaderboard_has_one_complete_row_per_model(tiny_run):
    with open(tiny_run / "results/leaderboard.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == LEADERBOARD_COLUMNS
        rows = {row["model"]: row for row in reader}
    assert sorted(rows) == ["tiny-bert", "tiny-convnext"]
    for model, row in rows.items():
        assert all(value != "" for value in row.values()), row
        summary = load(tiny_run / f"results/{model}/summary.json")
        assert row["status"] == summary["status"] == "self-check"
        assert row["pretrained"] == "false"
        assert row["rel_l2"] == "0.0" and row["target_device"] == "cpu"
        assert float(row["params_m"]) == round(summary["params"] / 1e6, 3)
        assert float(row["latency_p50_ms_bs1"]) > 0 and float(row["best_throughput"]) > 0
    # tiny-bert has no class-score output: top-1 cannot exist and says null, not blank.
    assert rows["tiny-bert"]["top1_match"] == "null"

    run_manifest = load(tiny_run / "results/all")
    listed = {item["path"]: item["sha256"] for item in run_manifest["artifacts"]}
    assert "results/leaderboard.csv" in listed
    assert (
        listed["results/leaderboard.csv"]
        == hashlib.sha256((tiny_run / "results/leaderboard.csv").read_bytes()).hexdigest()
    )
