"""The benchmark harness: its statistics, stopping rule and budget on real torch work (no
sleeps, no mocks), the accelerator path (pipelined throughput) through the device module's
seams on the CPU, the CPU peak-memory and out-of-memory handling, and the benchmark rule end
to end on the tiny ConvNeXt (real Snakemake, real torch), with the CPU baseline, the raw
samples and the OOM seam."""

import csv
import functools
import math
import shutil
import statistics
import time

import numpy as np
import pytest
from conftest import copy_of, load, run_snakemake, tiny_config

from npu_adapt import devices
from npu_adapt.benchmark import ROW_KEYS, SAMPLE_COLUMNS
from npu_adapt.plots import benchmark_plot
from npu_adapt.reports import LEADERBOARD_COLUMNS, format_cell
from npu_adapt.timing import PHASES, STABLE_CV_PCT, STABLE_DRIFT_PCT, measure, sample_stats

TOP_KEYS = (
    "model",
    "status",
    "reason",
    "device",
    "device_name",
    "dtype",
    "warmup",
    "results",
    "threads",
    "threads_requested",
    "load_average",
    "host",
    "param_bytes",
    "stability_rule",
    "baseline",
    "samples_file",
)
BENCH = {
    "batch_sizes": [4, 1, 2],
    "warmup": 2,
    "min_runs": 3,
    "min_seconds": 0.2,
    "max_runs": 100000,
    "max_seconds": 2,
    "baseline": "cpu",
}


def test_sample_stats_match_hand_computed_values():
    stats = sample_stats([5.0, 1.0, 4.0, 2.0, 3.0])
    # numpy's linear interpolation: position q/100 * (n - 1) in the sorted samples; the
    # halves are [5, 1] (median 3) and [2, 3] (median 2.5).
    assert stats == pytest.approx(
        {
            "mean_ms": 3.0,
            "std_ms": math.sqrt(2.5),
            "cv_pct": 100 * math.sqrt(2.5) / 3,
            "min_ms": 1.0,
            "max_ms": 5.0,
            "p10_ms": None,
            "p25_ms": 2.0,
            "p50_ms": 3.0,
            "p75_ms": 4.0,
            "p90_ms": None,
            "p95_ms": None,
            "p99_ms": None,
            "iqr_ms": 2.0,
            "drift_pct": 100 * (2.5 - 3.0) / 3.0,
            "stable": False,
        }
    )
    steady = sample_stats([10.0 + 0.01 * (i % 7) for i in range(120)])
    assert steady["stable"] and steady["cv_pct"] < 1 and abs(steady["drift_pct"]) < 1
    assert (
        steady["min_ms"]
        <= steady["p10_ms"]
        <= steady["p25_ms"]
        <= steady["p50_ms"]
        <= steady["p75_ms"]
        <= steady["p90_ms"]
        <= steady["p95_ms"]
        <= steady["p99_ms"]
        <= steady["max_ms"]
    )
    # A machine that gets 30% slower halfway: each half is tight, the drift is not.
    drifting = sample_stats([10.0] * 20 + [13.0] * 20)
    assert drifting["drift_pct"] == pytest.approx(100 * 3.0 / 11.5) and not drifting["stable"]  # of the overall median
    with pytest.raises(ValueError):
        sample_stats([1.0])


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def matmul(torch, size: int):
    """Real, sleep-free work: one size x size float32 matrix product (2 size^3 flops)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    return lambda: a @ a


def phases(samples):
    return [phase for phase, _, _ in samples]


def within_budget(row: dict, samples, max_seconds: float) -> bool:
    """The batch size cost its first call + max_seconds + one call (the longest measured), and
    a little for the harness's own bookkeeping between calls (descheduled on a loaded machine)."""
    longest_s = max(ms for _, _, ms in samples) / 1000
    return row["elapsed_s"] - row["first_call_ms"] / 1000 <= max_seconds + longest_s + 0.25


def test_the_budget_ends_the_timed_runs_of_a_heavy_call(one_thread):
    call = matmul(one_thread, 512)
    row, samples = measure(call, "cpu", 1, warmup=2, min_runs=3, max_runs=10**6, min_seconds=60, max_seconds=1.5)
    assert row["status"] == "ok" and row["warmup_runs"] == 2 and row["budget_exhausted"] is True
    assert within_budget(row, samples, 1.5)
    assert row["budget_overrun_s"] == pytest.approx(
        max(0.0, row["elapsed_s"] - row["first_call_ms"] / 1000 - 1.5), abs=0.1
    )
    timed = [ms for phase, _, ms in samples if phase == "timed"]
    assert phases(samples)[:3] == ["first_call", "warmup", "warmup"] and len(timed) == row["runs"] >= 2
    assert row["p50_ms"] == pytest.approx(statistics.median(timed), rel=1e-12)
    assert row["throughput"] == pytest.approx(1000 / row["p50_ms"]) and row["throughput_method"] == "p50"


def test_a_warm_up_that_cannot_finish_is_reported_and_never_timed(one_thread):
    call = matmul(one_thread, 768)
    row, samples = measure(call, "cpu", 1, warmup=50, min_runs=3, max_runs=100, max_seconds=0.3)
    assert row["status"] == "over_budget" and row["runs"] == 0 and 1 <= row["warmup_runs"] < 50
    assert (
        "warm-up did not finish within max_seconds=0.3" in row["reason"]
        and "raise benchmark.max_seconds" in row["reason"]
    )
    assert set(phases(samples)) == {"first_call", "warmup"}  # no timed sample from a half warm device
    assert row.get("p50_ms") is None and within_budget(row, samples, 0.3)


def test_no_timed_run_starts_when_it_would_be_the_only_one():
    # A call of steady length: what the harness decides here hinges on how long one call takes,
    # and a matrix product's time swings when another test's jobs share the cores.
    call_s = 0.2
    call = functools.partial(time.sleep, call_s)
    # A budget of 1.3 calls: the warm-up call leaves about 0.3 of a call, so a timed run would
    # end past the deadline and no second one would start.
    row, samples = measure(call, "cpu", 1, warmup=1, min_runs=3, max_runs=100, max_seconds=1.3 * call_s)
    assert row["status"] == "over_budget" and row["runs"] == 0 and row["warmup_runs"] == 1
    assert phases(samples) == ["first_call", "warmup"]  # the useless timed call was not made
    assert "left after the warm-up, less than one call" in row["reason"]
    assert "raise benchmark.max_seconds" in row["reason"] and row.get("p50_ms") is None
    # No warm-up: on the CPU the first call sets the pace (there is no compilation in it).
    cold, cold_samples = measure(call, "cpu", 1, warmup=0, min_runs=3, max_runs=100, max_seconds=0.3 * call_s)
    assert cold["status"] == "over_budget" and phases(cold_samples) == ["first_call"]
    assert "left after the first call, less than one call" in cold["reason"]
    # With room for more calls after the warm-up, the same call is timed as before.
    roomy, _ = measure(call, "cpu", 1, warmup=1, min_runs=2, max_runs=2, max_seconds=30)
    assert roomy["status"] == "ok" and roomy["runs"] == 2


def test_runs_stop_once_min_runs_and_min_seconds_are_both_met(one_thread):
    call = matmul(one_thread, 64)
    row, samples = measure(call, "cpu", 1, warmup=1, min_runs=3, max_runs=10**6, min_seconds=0.3, max_seconds=30)
    assert row["status"] == "ok" and row["budget_exhausted"] is False
    timed_s = sum(ms for phase, _, ms in samples if phase == "timed") / 1000
    # Many more than min_runs (a call takes well under 0.1 s), over about min_seconds, far from the 30 s cap.
    assert row["runs"] > 3 and 0.2 <= timed_s and row["elapsed_s"] < 10
    capped, _ = measure(call, "cpu", 1, warmup=1, min_runs=2, max_runs=7, min_seconds=30, max_seconds=30)
    assert (capped["runs"], capped["budget_exhausted"]) == (7, False)
    with pytest.raises(ValueError):
        measure(call, "cpu", 1, warmup=0, min_runs=5, max_runs=4, max_seconds=1)


def test_an_unstable_row_is_measured_twice_and_reported_unstable(one_thread):
    small, large = matmul(one_thread, 32), matmul(one_thread, 384)
    calls = []

    def alternating():  # every other call does ~1000x the work: cv far above the rule
        calls.append(None)
        return (large if len(calls) % 2 else small)()

    row, samples = measure(alternating, "cpu", 1, warmup=1, min_runs=6, max_runs=6, max_seconds=30)
    assert row["stable"] is False and row["remeasured"] is True and row["cv_pct"] > STABLE_CV_PCT
    assert row["first_attempt_cv_pct"] > STABLE_CV_PCT
    assert phases(samples).count("rejected") == 6 and phases(samples).count("timed") == 6 == row["runs"]
    assert "unstable" in row["reason"] and "measured twice" in row["reason"]
    assert len(calls) == 1 + 1 + 6 + 6


def test_a_second_attempt_cut_short_by_the_budget_keeps_none_of_the_rejected_statistics():
    # Sleeps of set lengths (a schedule, not a pace): an unstable first attempt leaves time for a
    # second, whose calls then slow down so that only one fits before the deadline.
    schedule = [0.01, 0.01] + [0.01, 0.2, 0.01, 0.2] + [0.8] * 4  # first call, warm-up, attempts
    calls = iter(schedule)
    row, samples = measure(lambda: time.sleep(next(calls)), "cpu", 1, warmup=1, min_runs=4, max_runs=4, max_seconds=1.2)
    assert row["remeasured"] is True and row["first_attempt_cv_pct"] > STABLE_CV_PCT
    assert phases(samples).count("rejected") == 4 and phases(samples).count("timed") == row["runs"] == 1
    assert row["status"] == "over_budget" and row.get("p50_ms") is None and row.get("throughput") is None
    assert row["reason"].startswith("1 timed run(s) within max_seconds=1.2 after the warm-up")


def test_the_accelerator_path_synchronises_once_for_the_pipelined_calls(one_thread, monkeypatch):
    """NPU/CUDA measurements on the CPU, through the device module's seams: the device runs
    asynchronously (devices.runs_asynchronously), so after the latency runs (two
    synchronisations each) the throughput comes from back-to-back calls and one clock."""
    syncs = []
    real_synchronize = devices.synchronize
    monkeypatch.setattr(devices, "runs_asynchronously", lambda device: True)
    for module in (devices, devices.runtime):  # the package's name, and the one DeviceClock calls
        monkeypatch.setattr(module, "synchronize", lambda device: (syncs.append(device), real_synchronize(device)))
    call = matmul(one_thread, 128)
    row, samples = measure(call, "cpu", 8, warmup=2, min_runs=40, max_runs=40, min_seconds=0, max_seconds=30)
    attempts = 2 if row["remeasured"] else 1
    assert row["throughput_method"] == "pipelined" and row["pipelined_calls"] == row["runs"] == 40
    assert row["pipelined_clock"] == "host_clock"  # the CPU module offers no timing events
    # first call, warm-up and timed runs: before and after each; the pipelined calls: two in all.
    assert len(syncs) == 2 * (1 + 2 + 40 * attempts) + 2
    pipelined = [ms for phase, _, ms in samples if phase == "pipelined"]
    assert len(pipelined) == 1 and row["pipelined_ms_per_call"] == pipelined[0]
    assert row["throughput"] == pytest.approx(8 * 1000 / pipelined[0]) and row["throughput_sync"] == pytest.approx(
        8 * 1000 / row["p50_ms"]
    )
    # Back to back on a synchronous device, no call can be much faster than the fastest alone.
    assert row["pipelined_ms_per_call"] >= 0.5 * row["min_ms"]


def test_cpu_peak_rss_is_reset_per_measurement():
    if not devices.reset_peak_host_rss():
        pytest.skip("this platform cannot reset the process's peak RSS (no /proc/self/clear_refs)")
    before, scope = devices.peak_host_rss_mb()
    assert scope == "window"
    block = np.ones(256 * 2**20 // 8)  # 256 MiB, touched
    del block
    grown, _ = devices.peak_host_rss_mb()
    assert grown >= before + 250
    assert devices.reset_peak_host_rss()
    assert devices.peak_host_rss_mb()[0] < grown - 200
    assert devices.peak_device_mem_mb("cpu") == (None, "CPU target: no device memory; see peak_host_rss_mb")


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
def bench_runs(tiny_run, tmp_path_factory):
    """The tiny ConvNeXt's benchmark, then the same again with batch size 2 out of memory
    through the device module's seam (upstream outputs reused). Both run in a copy of the tiny
    run: the benchmark settings change no upstream job, so its weights, inputs and target dump
    are kept (timestamps kept: Snakemake sees them complete) and only the benchmark runs."""
    workdir = copy_of(tiny_run, tmp_path_factory.mktemp("bench"))
    config = tiny_config(benchmark=BENCH)
    target = "results/tiny-convnext/fp32/benchmark.json"
    # One model's jobs run one after the other anyway: --cores 1 costs nothing here, and the
    # 2 s budget of BENCH holds on a busy machine (two torch threads sharing a core with another
    # process make a call many times slower).
    cores = ("--cores", "1")
    run_snakemake(workdir, target, *cores, config=config)
    saved = tmp_path_factory.mktemp("bench_saved")
    for name in ("benchmark.json", "benchmark.csv", "benchmark.png", "benchmark_samples.csv"):
        shutil.copy(workdir / "results/tiny-convnext/fp32" / name, saved / name)
    run_snakemake(
        workdir, target, "--forcerun", "benchmark", *cores, config=config, env={"NPU_ADAPT_FAKE_OOM_BATCH": "2"}
    )
    return saved, workdir / "results/tiny-convnext/fp32"


def read_samples(path) -> list[dict]:
    with open(path) as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == SAMPLE_COLUMNS
        return [
            {"batch_size": int(r["batch_size"]), "phase": r["phase"], "run": int(r["run"]), "ms": float(r["ms"])}
            for r in reader
        ]


@pytest.mark.e2e
def test_benchmark_rule_records_every_key_with_consistent_statistics(bench_runs):
    saved, results = bench_runs
    bench = load(saved / "benchmark.json")
    assert set(TOP_KEYS) <= set(bench)
    assert (bench["status"], bench["device"], bench["dtype"], bench["warmup"]) == ("ok", "cpu", "float32", 2)
    assert bench["requested_device"] == load(results / "dump/index.json")["requested_device"] == "auto"
    assert bench["timed_call"] == "one forward pass"
    assert bench["threads"] >= 1 and bench["threads_requested"] is None  # null: the job's cores
    assert all(len(bench["load_average"][when]) == 3 for when in ("start", "end"))
    assert bench["host"]["cpu"] == devices.cpu_model_name() and "governor" in bench["host"]
    assert bench["stability_rule"] == {"cv_pct_max": STABLE_CV_PCT, "drift_pct_max": STABLE_DRIFT_PCT}
    # float32: four bytes per parameter (a ConvNeXt has no buffers).
    assert bench["param_bytes"] == 4 * load(results / "dump/index.json")["params"] > 0
    assert [row["batch_size"] for row in bench["results"]] == [1, 2, 4]
    samples = read_samples(saved / "benchmark_samples.csv")
    assert {sample["phase"].removeprefix("baseline_") for sample in samples} <= set(PHASES)
    for row in bench["results"]:
        assert set(row) == set(ROW_KEYS)
        assert row["status"] == "ok" and row["warmup_runs"] == 2 and row["cv_pct"] >= 0 and row["iqr_ms"] >= 0
        assert isinstance(row["stable"], bool) and (row["reason"] is not None or row["stable"])
        assert row["min_ms"] <= row["p25_ms"] <= row["p50_ms"] <= row["p75_ms"] <= row["max_ms"]
        assert (
            row["throughput"] == pytest.approx(row["batch_size"] * 1000 / row["p50_ms"], rel=1e-9)
            and row["throughput_method"] == "p50"
        )
        # Runs until 0.2 s of timed calls, or the 2 s budget after the first call.
        assert (
            3 <= row["runs"] < 100000
            and row["elapsed_s"] - row["first_call_ms"] / 1000 <= 2 + row["max_ms"] / 1000 + 0.25
        )
        assert (row["peak_mem_kind"], row["peak_mem_scope"], row["peak_host_rss_scope"]) == (
            "process_peak_rss",
            "batch_size",
            "batch_size",
        )
        assert (
            row["peak_host_rss_mb"] > 50 and row["peak_mem_mb"] == row["peak_host_rss_mb"]
        )  # the process: Python, torch and the model
        assert row["peak_device_mem_mb"] is None and "no device memory" in row["peak_device_mem_reason"]
        # The raw samples behind the row: its first call, warm-up and every timed run.
        mine = [s for s in samples if s["batch_size"] == row["batch_size"] and not s["phase"].startswith("baseline_")]
        timed = [s["ms"] for s in mine if s["phase"] == "timed"]
        assert [s["ms"] for s in mine if s["phase"] == "first_call"] == [row["first_call_ms"]]
        assert len([s for s in mine if s["phase"] == "warmup"]) == 2 and len(timed) == row["runs"]
        assert statistics.median(timed) == pytest.approx(row["p50_ms"], rel=1e-12)
        assert ("rejected" in {s["phase"] for s in mine}) == row["remeasured"]
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
    baseline_timed = [s for s in read_samples(saved / "benchmark_samples.csv") if s["phase"] == "baseline_timed"]
    for row, cpu_row in zip(bench["results"], baseline["results"]):
        assert cpu_row["status"] == "ok" and cpu_row["runs"] >= 3
        assert row["speedup_vs_cpu"] == pytest.approx(row["throughput"] / cpu_row["throughput"], rel=1e-9)
        assert len([s for s in baseline_timed if s["batch_size"] == row["batch_size"]]) == cpu_row["runs"]


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
    assert {s["batch_size"] for s in read_samples(results / "benchmark_samples.csv")} == {1}
    with open(results / "benchmark.csv") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["ok", "oom", "skipped"]


def test_plot_marks_unmeasured_and_unstable_batch_sizes(tmp_path):
    ok = {
        "batch_size": 1,
        "status": "ok",
        "p25_ms": 1.0,
        "p50_ms": 1.5,
        "p75_ms": 2.0,
        "throughput": 666.0,
        "stable": False,
        "throughput_method": "p50",
    }
    few = {
        "batch_size": 2,
        "status": "ok",
        "p25_ms": None,
        "p50_ms": 2.5,
        "p75_ms": None,
        "throughput": 800.0,
        "stable": True,
    }
    path = tmp_path / "plot.png"
    benchmark_plot(
        [ok, few, {"batch_size": 4, "status": "over_budget", "reason": "warm-up did not finish"}], "tiny", path
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    benchmark_plot([{"batch_size": 1, "status": "oom", "reason": "out of memory"}], "tiny", tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 5_000


def test_benchmark_csv_has_the_llm_columns_when_a_row_has_llm_figures(tmp_path):
    # The workflow's job and `npu-adapt bench --out` write the same three files through write_benchmark.
    from npu_adapt.benchmark import LLM_KEYS
    from npu_adapt.benchmark_stage import write_benchmark

    plain = [{"batch_size": 1, "status": "ok", "p50_ms": 2.5, "reason": None}]
    llm = [{**plain[0], "prompt_len": 8, "new_tokens": 4, "ttft_ms": 3.25, "decode_tokens_per_s": 120.0}]
    # A prefill over the budget: no time to first token, the decode still timed (llm_timing).
    no_ttft = [{**llm[0], "ttft_ms": None, "decode_ms_per_token": 8.0, "decode_tokens_per_s": 125.0}]
    headers = {}
    for name, rows in (("plain", plain), ("llm", llm), ("no_ttft", no_ttft)):
        paths = [tmp_path / name / file for file in ("benchmark.json", "benchmark.csv", "benchmark_samples.csv")]
        paths[0].parent.mkdir()
        write_benchmark({"results": rows}, [{"batch_size": 1, "phase": "timed", "run": 0, "ms": 2.5}], *paths)
        with open(paths[1]) as handle:
            headers[name] = next(csv.reader(handle))
        assert load(paths[0]) == {"results": rows}
        assert (paths[2]).read_text().splitlines() == ["batch_size,phase,run,ms", "1,timed,0,2.5"]
    assert headers["plain"] == [key for key in ROW_KEYS if key != "reason"] + ["reason"]
    assert headers["llm"] == headers["no_ttft"] == headers["plain"][:-1] + list(LLM_KEYS) + ["reason"]
    assert open(tmp_path / "no_ttft/benchmark.csv").read().splitlines()[1].endswith(",8,4,null,8.0,125.0,null")
    assert "null" in open(tmp_path / "plain/benchmark.csv").read().splitlines()[1].split(",")


@pytest.mark.e2e
def test_leaderboard_latency_is_the_benchmark_p50_and_the_card_its_threads(tiny_run):
    with open(tiny_run / "results/leaderboard.csv") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == LEADERBOARD_COLUMNS
    for model, row in rows.items():
        bench = load(tiny_run / f"results/{model}/fp32/benchmark.json")
        measured = [r for r in bench["results"] if r["status"] == "ok"]
        bs1 = next(r for r in measured if r["batch_size"] == 1)
        # leaderboard.csv keeps floats in full (the CSV convention): the JSON's numbers exactly.
        assert float(row["latency_p50_ms_bs1"]) == bs1["p50_ms"]
        assert float(row["cv_pct"]) == max(r["cv_pct"] for r in measured)
        assert row["stable"] == ("true" if all(r["stable"] for r in measured) else "false")
        assert float(row["peak_host_rss_mb"]) == max(r["peak_host_rss_mb"] for r in measured)
        assert row["peak_device_mem_mb"] == "null" and row["param_bytes"] == str(bench["param_bytes"])
        for result in measured:  # every measured row: its warm-up, cv_pct and raw samples
            assert result["warmup_runs"] == bench["warmup"] and result["cv_pct"] is not None
        samples = read_samples(tiny_run / f"results/{model}/fp32/benchmark_samples.csv")
        assert {s["batch_size"] for s in samples if s["phase"] == "timed"} == {r["batch_size"] for r in measured}
        card = (tiny_run / f"results/{model}/README.md").read_text()
        lines = card.splitlines()  # the environment's placement table: the target's row ends with its threads
        assert any(line.startswith("| target fp32 |") and line.endswith(f"| {bench['threads']} |") for line in lines)
        md = (tiny_run / "results/leaderboard.md").read_text()
        assert "`latency_p50_ms_bs1`: median (p50) latency" in md


@pytest.mark.e2e  # a Snakemake dry-run
def test_min_runs_above_max_runs_stops_the_workflow_before_any_job(tmp_path):
    config = tiny_config(benchmark={"min_runs": 9, "max_runs": 4})
    done = run_snakemake(tmp_path, "-n", "results/all", config=config, check=False)
    assert done.returncode != 0
    assert "benchmark.min_runs (9) > benchmark.max_runs (4)" in done.stdout + done.stderr


@pytest.mark.e2e
def test_bench_command_prints_the_cards_table_without_the_workflow(tmp_path):
    """``python -m npu_adapt bench MODEL``: one configured model, the workflow's settings
    (here the tiny config, with batch sizes from the command line), the card's table."""
    import os
    import subprocess
    import sys

    import yaml
    from conftest import REPO

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "npu_adapt",
        "bench",
        "tiny-convnext",
        "--configfile",
        "tiny.yaml",
        "--batch-sizes",
        "1",
        "2",
        "--threads",
        "1",
        "--out",
        "out",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    bench = load(tmp_path / "out/benchmark.json")
    assert (bench["status"], bench["threads"], bench["threads_requested"]) == ("ok", 1, 1)
    table = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [row["batch_size"] for row in bench["results"]] == [int(line[0]) for line in table] == [1, 2]
    for line, row in zip(table, bench["results"]):
        assert format_cell(row["p50_ms"]) in line and format_cell(row["first_call_ms"]) in line
    assert len(read_samples(tmp_path / "out/benchmark_samples.csv")) >= 2 * (1 + 1 + 3)
    typo = subprocess.run(
        [*command[:4], "tiny-convnxt", *command[5:7]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert typo.returncode == 3 and "no model 'tiny-convnxt' in the config; did you mean tiny-convnext?" in typo.stderr


def test_bench_exits_3_when_it_cannot_run_never_a_verdicts_code(tmp_path, monkeypatch, capsys):
    """No config, a typo in the model, weights that cannot be had, a YAML syntax error: 3 (as inspect's missing
    evidence), never 1 or 2, which mean warn and fail."""
    import yaml

    from npu_adapt.__main__ import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "tiny-bert"]) == 3
    assert "no config.yaml in the working directory" in capsys.readouterr().err
    config = tiny_config(download={"offline": True})
    config["models"]["missing"] = {"source": "hf:npu-adapt/not-there", "family": "hf_encoder", "fallback": "none"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["bench", "tiny-bret"]) == 3
    assert "no model 'tiny-bret' in the config; did you mean tiny-bert" in capsys.readouterr().err
    assert main(["bench", "missing"]) == 3
    assert "missing: no weights: " in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text("models:\n  a: {source: 'timm:x'\n  b: 1\n")
    assert main(["bench", "a"]) == 3
    assert "config.yaml: YAML syntax error at line 3, column 3: " in capsys.readouterr().err
