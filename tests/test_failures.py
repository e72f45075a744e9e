"""Failure is data (docs/design.md): models that cannot be had, whose forward raises or that run
out of memory end as `blocked` with their reason in every later artifact and in the
leaderboard, while the run goes on and exits 0. A crash in npu-adapt's own code still fails
its job, and a broken config.yaml stops everything before any job runs."""

import csv
import shutil

import pytest
from conftest import load, run_snakemake, tiny_config

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models

HEALTHY = "tiny-convnext"
NO_WEIGHTS = "no-weights"
BAD_FORWARD = "bad-forward"
OUT_OF_MEMORY = "out-of-memory"
# Artifacts of one model, in the order the stages write them.
STAGES = ("inputs/index.json", "reference/index.json", "target/index.json", "compare.json", "benchmark.json", "summary.json")


def broken_config() -> dict:
    config = tiny_config()
    healthy, bert = config["models"][HEALTHY], config["models"]["tiny-bert"]
    config["models"] = {
        HEALTHY: healthy,
        # Offline, no fallback: the weights cannot be had.
        NO_WEIGHTS: {"source": "hf:npu-adapt/not-downloadable", "family": "hf_encoder", "fallback": "none"},
        # 100 tokens for a model with 64 positions: its forward raises.
        BAD_FORWARD: {**bert, "inputs": {"seq_len": 100}},
        # The device refuses batch size 4 and up (NPU_ADAPT_FAKE_OOM_BATCH), its only sizes.
        OUT_OF_MEMORY: {**healthy, "benchmark": {"batch_sizes": [4, 8]}},
    }
    return config


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("broken_run")
    # check=True: `snakemake --cores 2 results/all` exits 0 although three models failed.
    run_snakemake(workdir, "results/all", "--cores", "2", config=broken_config(), env={"NPU_ADAPT_FAKE_OOM_BATCH": "4"})
    return workdir


def leaderboard(workdir):
    with open(workdir / "results/leaderboard.csv") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def test_the_healthy_model_passes_beside_the_broken_ones(broken_run):
    summary = load(broken_run / f"results/{HEALTHY}/summary.json")
    assert summary["status"] == "self-check" and "not a port" in summary["reason"]  # CPU float32 on both sides
    row = leaderboard(broken_run)[HEALTHY]
    assert row["status"] == "self-check" and float(row["latency_p50_ms_bs1"]) > 0


def test_weights_that_cannot_be_had_block_every_later_stage(broken_run):
    manifest = load(broken_run / f"weights/{NO_WEIGHTS}/manifest.json")
    assert manifest["status"] == "blocked" and manifest["pretrained"] is False
    assert "download" in manifest["reason"] and "offline" in manifest["reason"]
    for stage in STAGES:
        document = load(broken_run / f"results/{NO_WEIGHTS}/{stage}")
        assert document["status"] == "blocked", stage
        assert "offline" in document["reason"], stage  # the original reason is carried on
    row = leaderboard(broken_run)[NO_WEIGHTS]
    assert row["status"] == "blocked" and row["reason"].startswith("weights:") and "offline" in row["reason"]


def test_a_forward_that_raises_blocks_the_model_with_the_error(broken_run):
    inputs = load(broken_run / f"results/{BAD_FORWARD}/inputs/index.json")
    assert inputs["status"] == "ok" and inputs["tensors"][0]["shape"] == [1, 100]
    for role in ("reference", "target"):
        index = load(broken_run / f"results/{BAD_FORWARD}/{role}/index.json")
        assert index["status"] == "blocked" and index["tensors"] == []
        assert index["reason"].startswith("forward: RuntimeError") and "traceback tail" in index["reason"]
    for stage in STAGES[3:]:
        document = load(broken_run / f"results/{BAD_FORWARD}/{stage}")
        assert document["status"] == "blocked" and "forward: RuntimeError" in document["reason"], stage
    row = leaderboard(broken_run)[BAD_FORWARD]
    assert row["status"] == "blocked" and row["reason"].startswith("reference: forward: RuntimeError")
    assert row["rel_l2"] == "null" and row["latency_p50_ms_bs1"] == "null"


def test_out_of_memory_at_every_batch_size_blocks_the_model(broken_run):
    compare = load(broken_run / f"results/{OUT_OF_MEMORY}/compare.json")
    assert compare["status"] == "self-check"  # batch 1 ran fine: only the benchmark cannot
    benchmark = load(broken_run / f"results/{OUT_OF_MEMORY}/benchmark.json")
    assert benchmark["status"] == "blocked"
    assert "no batch size fits in device memory" in benchmark["reason"] and "DeviceOutOfMemory" in benchmark["reason"]
    assert [(row["batch_size"], row["status"]) for row in benchmark["results"]] == [(4, "oom"), (8, "skipped")]
    summary = load(broken_run / f"results/{OUT_OF_MEMORY}/summary.json")
    assert summary["status"] == "blocked" and summary["reason"].startswith("benchmark:")
    row = leaderboard(broken_run)[OUT_OF_MEMORY]
    assert row["status"] == "blocked" and "DeviceOutOfMemory" in row["reason"]


def test_a_crash_in_our_own_code_fails_the_job_with_its_traceback_in_the_log(broken_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(broken_run, workdir, symlinks=True)
    # Input the code does not expect (not a model failure): reading it raises in our code.
    (workdir / f"results/{HEALTHY}/inputs/index.json").write_text("{not json")
    target = f"results/{HEALTHY}/reference/index.json"
    done = run_snakemake(workdir, target, check=False)
    assert done.returncode != 0
    assert "Error in rule dump_reference" in done.stderr + done.stdout
    log = (workdir / f"logs/{HEALTHY}/dump_reference.log").read_text()
    assert "crash in npu-adapt" in log and "Traceback (most recent call last)" in log
    assert "JSONDecodeError" in log
    assert not (workdir / target).exists()  # Snakemake removed the failed job's output


def test_a_bad_config_key_stops_the_run_before_any_job(tmp_path):
    config = tiny_config()
    config["models"]["tiny-bert"]["acuracy"] = {"rel_l2_max": 0.1}  # misspelt key
    done = run_snakemake(tmp_path, "results/all", config=config, check=False)
    assert done.returncode != 0
    assert "acuracy" in done.stderr and "Error validating config file" in done.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
