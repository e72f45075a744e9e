"""The benchmark harness: its statistics and budget on plain callables, the CPU peak-memory
and out-of-memory handling of the device module, and the benchmark rule end to end on the
tiny ConvNeXt (real Snakemake, real torch), with the CPU baseline and the OOM seam."""

import csv
import math
import shutil
import time

import numpy as np
import pytest
from conftest import load, run_snakemake, tiny_config

from npu_adapt import devices
from npu_adapt.benchmark import ROW_KEYS
from npu_adapt.plots import benchmark_plot
from npu_adapt.timing import measure, percentile_stats

TOP_KEYS = ("model", "status", "reason", "device", "device_name", "dtype", "warmup", "results", "cpu_threads", "baseline")
BENCH = {"batch_sizes": [4, 1, 2], "warmup": 2, "min_runs": 3, "max_runs": 100000, "max_seconds": 0.3, "baseline": "cpu"}


def test_percentile_stats_match_hand_computed_values():
    stats = percentile_stats([5.0, 1.0, 4.0, 2.0, 3.0])
    # numpy's linear interpolation: position q/100 * (n - 1) in the sorted samples.
    assert stats == pytest.approx(
        {"mean_ms": 3.0, "std_ms": math.sqrt(2.5), "min_ms": 1.0, "p10_ms": 1.4, "p50_ms": 3.0, "p90_ms": 4.6, "p95_ms": 4.8, "p99_ms": 4.96, "max_ms": 5.0}
    )
    with pytest.raises(ValueError):
        percentile_stats([1.0])


def sleeper(seconds: float, calls: list):
    def call():
        calls.append(time.perf_counter())
        time.sleep(seconds)

    return call


def test_first_call_and_warmup_are_not_counted_and_the_budget_stops_the_runs():
    calls = []
    row = measure(sleeper(0.005, calls), "cpu", 3, warmup=2, min_runs=3, max_runs=100000, max_seconds=0.15)
    assert len(calls) == 1 + row["warmup_runs"] + row["runs"]
    assert row["warmup_runs"] == 2 and 3 <= row["runs"] < 100000 and row["budget_exhausted"] is True
    # The last run starts before the deadline: the overrun is at most one call.
    assert row["elapsed_s"] <= 0.15 + row["max_ms"] / 1000 + 0.02
    assert row["runs"] * row["mean_ms"] / 1000 <= row["elapsed_s"]
    assert 5.0 <= row["min_ms"] <= row["p10_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["first_call_ms"] >= 5.0
    assert row["throughput"] == pytest.approx(3 * 1000 / row["mean_ms"])


def test_min_runs_are_done_even_when_the_first_call_spends_the_budget():
    calls = []
    row = measure(sleeper(0.02, calls), "cpu", 1, warmup=5, min_runs=3, max_runs=50, max_seconds=0.001)
    assert (row["warmup_runs"], row["runs"], row["budget_exhausted"]) == (0, 3, True)
    assert len(calls) == 4


def test_max_runs_ends_a_measurement_within_budget():
    row = measure(lambda: sum(range(100)), "cpu", 1, warmup=1, min_runs=2, max_runs=7, max_seconds=30)
    assert (row["warmup_runs"], row["runs"], row["budget_exhausted"]) == (1, 7, False)
    with pytest.raises(ValueError):
        measure(lambda: None, "cpu", 1, warmup=0, min_runs=5, max_runs=4, max_seconds=1)


def test_cpu_peak_rss_is_reset_per_measurement():
    if not devices.reset_peak_memory("cpu"):
        pytest.skip("this platform cannot reset the process's peak RSS (no /proc/self/clear_refs)")
    before, kind = devices.peak_memory("cpu")
    assert kind == "process_peak_rss"
    block = np.ones(256 * 2**20 // 8)  # 256 MiB, touched
    del block
    grown, _ = devices.peak_memory("cpu")
    assert grown >= before + 250
    assert devices.reset_peak_memory("cpu")
    assert devices.peak_memory("cpu")[0] < grown - 200


def test_real_cpu_allocator_failure_counts_as_out_of_memory(monkeypatch):
    import torch

    with pytest.raises(RuntimeError) as failure:
        torch.empty(10**15, dtype=torch.uint8)  # 1 PB: refused by the allocator at once
    assert devices.is_out_of_memory(failure.value)
    assert not devices.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    monkeypatch.setenv("NPU_ADAPT_FAKE_OOM_BATCH", "4")
    devices.check_fake_oom(2)
    with pytest.raises(devices.DeviceOutOfMemory) as simulated:
        devices.check_fake_oom(4)
    assert devices.is_out_of_memory(simulated.value)


@pytest.fixture(scope="module")
def bench_runs(tmp_path_factory):
    """The tiny ConvNeXt's benchmark, then the same again with batch size 2 out of memory
    through the device module's seam (upstream outputs reused)."""
    workdir = tmp_path_factory.mktemp("bench")
    config = tiny_config(benchmark=BENCH)
    target = "results/tiny-convnext/benchmark.json"
    run_snakemake(workdir, target, config=config)
    saved = tmp_path_factory.mktemp("bench_saved")
    for name in ("benchmark.json", "benchmark.csv", "benchmark.png"):
        shutil.copy(workdir / "results/tiny-convnext" / name, saved / name)
    run_snakemake(workdir, target, "--forcerun", "benchmark", config=config, env={"NPU_ADAPT_FAKE_OOM_BATCH": "2"})
    return saved, workdir / "results/tiny-convnext"


@pytest.mark.e2e
def test_benchmark_rule_records_every_key_with_consistent_statistics(bench_runs):
    saved, _ = bench_runs
    bench = load(saved / "benchmark.json")
    assert set(TOP_KEYS) <= set(bench)
    assert (bench["status"], bench["device"], bench["dtype"], bench["warmup"]) == ("ok", "cpu", "float32", 2)
    assert bench["cpu_threads"] >= 1
    assert [row["batch_size"] for row in bench["results"]] == [1, 2, 4]
    for row in bench["results"]:
        assert set(row) == set(ROW_KEYS)
        assert row["status"] == "ok" and row["reason"] is None
        assert row["min_ms"] <= row["p10_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["min_ms"] <= row["mean_ms"] <= row["max_ms"] and row["std_ms"] >= 0
        assert row["throughput"] == pytest.approx(row["batch_size"] * 1000 / row["mean_ms"], rel=1e-9)
        # A 0.3 s budget ends the runs long before the 100000 asked for.
        assert 3 <= row["runs"] < 100000 and row["budget_exhausted"] is True and row["warmup_runs"] == 2
        assert row["elapsed_s"] <= 0.3 + max(row["first_call_ms"], row["max_ms"]) / 1000 + 0.05
        assert row["runs"] * row["mean_ms"] / 1000 <= row["elapsed_s"]
        assert row["first_call_ms"] > 0
        assert (row["peak_mem_kind"], row["peak_mem_scope"]) == ("process_peak_rss", "batch_size")
        assert row["peak_mem_mb"] > 50  # the process: Python, torch and the model
    with open(saved / "benchmark.csv") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [int(row["batch_size"]) for row in csv_rows] == [1, 2, 4]
    assert set(csv_rows[0]) == set(ROW_KEYS)
    assert float(csv_rows[0]["p50_ms"]) == bench["results"][0]["p50_ms"]
    assert (saved / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_cpu_baseline_gives_speedup_per_batch_size(bench_runs):
    saved, _ = bench_runs
    bench = load(saved / "benchmark.json")
    baseline = bench["baseline"]
    assert (baseline["status"], baseline["device"], baseline["dtype"]) == ("ok", "cpu", "float32")
    assert [row["batch_size"] for row in baseline["results"]] == [1, 2, 4]
    for row, cpu_row in zip(bench["results"], baseline["results"]):
        assert cpu_row["status"] == "ok" and cpu_row["runs"] >= 3
        assert row["speedup_vs_cpu"] == pytest.approx(cpu_row["mean_ms"] / row["mean_ms"], rel=1e-9)


@pytest.mark.e2e
def test_out_of_memory_keeps_smaller_batches_and_skips_larger(bench_runs):
    _, results = bench_runs
    bench = load(results / "benchmark.json")
    assert bench["status"] == "ok"
    ok, oom, skipped = bench["results"]
    assert (ok["batch_size"], ok["status"]) == (1, "ok") and ok["runs"] >= 3 and ok["speedup_vs_cpu"] > 0
    assert (oom["batch_size"], oom["status"]) == (2, "oom")
    assert "DeviceOutOfMemory" in oom["reason"] and "NPU_ADAPT_FAKE_OOM_BATCH=2" in oom["reason"]
    assert (skipped["batch_size"], skipped["status"]) == (4, "skipped") and "(2) ran out of memory" in skipped["reason"]
    for row in (oom, skipped):
        assert set(row) == set(ROW_KEYS)
        assert all(row[key] is None for key in ROW_KEYS if key not in ("batch_size", "status", "reason"))
    # The baseline runs only where the target succeeded.
    assert [row["batch_size"] for row in bench["baseline"]["results"]] == [1]
    with open(results / "benchmark.csv") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok", "oom", "skipped"]


def test_plot_marks_out_of_memory_batch_sizes(tmp_path):
    ok = {"batch_size": 1, "status": "ok", "p10_ms": 1.0, "p50_ms": 1.5, "p90_ms": 2.0, "throughput": 666.0}
    path = tmp_path / "plot.png"
    benchmark_plot([ok, {"batch_size": 2, "status": "oom", "reason": "out of memory"}], "tiny", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    benchmark_plot([{"batch_size": 1, "status": "oom", "reason": "out of memory"}], "tiny", tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 5_000


@pytest.mark.e2e
def test_min_runs_above_max_runs_stops_the_workflow_before_any_job(tmp_path):
    config = tiny_config(benchmark={"min_runs": 9, "max_runs": 4})
    done = run_snakemake(tmp_path, "-n", "results/all", config=config, check=False)
    assert done.returncode != 0
    assert "benchmark.min_runs (9) > benchmark.max_runs (4)" in done.stdout + done.stderr
