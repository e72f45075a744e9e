"""The benchmark harness: latency and throughput of one callable at one batch size.

One measurement, in order (every phase's per-call times are kept as raw samples):

1. ``first_call``: timed on its own and always run to the end. On NPU/CUDA it includes lazy
   kernel compilation and allocator growth for this input shape (seconds to minutes on an
   NPU, again for every new shape), so it never enters the statistics, and the budget starts
   after it: a budget that the compilation could eat would make the settings meaningless.
2. ``warmup``: ``warmup`` calls, all of them or no measurement at all. The budget never
   cuts the warm-up short to make room for timed runs: a warm-up call starts only before
   the deadline and when the rest of the warm-up plus ``min_runs`` timed calls, at the pace
   of the last call, fit in the budget. A warm-up that cannot finish is reported as
   ``status: over_budget`` with the time it would need.
3. ``timed``: calls until both ``min_runs`` and ``min_seconds`` are met, capped by
   ``max_runs`` and the deadline. They start only when at least one call (at the last
   call's pace) is left of the budget: otherwise the first timed run would end past the
   deadline, no second would start, and a statistic needs two, so the row is
   ``over_budget`` at once instead of one call later. (With ``warmup: 0`` the pace is the
   first call's: on the CPU only, since an accelerator's first call includes compilation.)
   Each call is bracketed by the device's synchronisation, so queued device work is inside
   the interval it belongs to (the latency).
4. A row that is not :func:`stable <sample_stats>` is measured once more (its first samples
   are kept as ``rejected``) when the budget left is at least as long as the first attempt
   took; if it is still unstable, it is reported so.
5. ``pipelined`` (devices that run asynchronously: NPU, CUDA): back-to-back calls with a
   single synchronisation at the end, timed by the device's events where the device module
   offers them. Its per-call time gives the throughput: a port that keeps the device busy
   shows it. On the CPU every call is synchronous and the throughput comes from the p50.

``max_seconds`` covers every phase after the first call (warm-up, timed runs, re-measurement,
pipelined throughput), and a call starts only before the deadline, so one batch size costs
at most its first call + ``max_seconds`` + one call. Time spent past the budget is reported
(``budget_overrun_s``), never hidden; ``elapsed_s`` includes the first call.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import numpy as np

from npu_adapt import devices

# Percentile -> the fewest timed runs it is reported from (None below): a p99 of 5 samples
# is the maximum under another name.
PERCENTILE_MIN_RUNS = {10: 10, 25: 4, 50: 2, 75: 4, 90: 10, 95: 20, 99: 100}
PERCENTILES = tuple(PERCENTILE_MIN_RUNS)

# The stability rule: a row is stable when its coefficient of variation (stdev / mean) is at
# most STABLE_CV_PCT and the median of the second half of its runs differs from the median
# of the first half by at most STABLE_DRIFT_PCT of the overall median (a machine whose load
# changes during the measurement shows as drift even when each half is tight).
STABLE_CV_PCT = 10.0
STABLE_DRIFT_PCT = 10.0

# Phases of the raw samples (benchmark_samples.csv).
PHASES = ("first_call", "warmup", "timed", "rejected", "pipelined")


def sample_stats(samples_ms: list[float]) -> dict:
    """Summary of latencies in ms: mean, sample std, ``cv_pct``, min/max, percentiles
    (linear interpolation; None where there are too few runs, see PERCENTILE_MIN_RUNS),
    ``iqr_ms``, ``drift_pct`` (signed: positive when the second half is slower) and
    ``stable`` (STABLE_CV_PCT and STABLE_DRIFT_PCT)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    count = values.size
    if count < 2:
        raise ValueError(f"need at least 2 samples for a standard deviation, got {count}")
    mean, std = float(values.mean()), float(values.std(ddof=1))
    stats = {
        "mean_ms": mean,
        "std_ms": std,
        "cv_pct": 100.0 * std / mean if mean > 0 else None,
        "min_ms": float(values.min()),
    }
    for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
        stats[f"p{q}_ms"] = float(value) if count >= PERCENTILE_MIN_RUNS[q] else None
    stats["max_ms"] = float(values.max())
    stats["iqr_ms"] = stats["p75_ms"] - stats["p25_ms"] if stats["p25_ms"] is not None else None
    half = count // 2  # equal halves; the middle sample of an odd count belongs to neither
    drift = float(np.median(values[count - half :]) - np.median(values[:half]))
    stats["drift_pct"] = 100.0 * drift / stats["p50_ms"] if stats["p50_ms"] > 0 else None
    stats["stable"] = bool(
        stats["cv_pct"] is not None
        and stats["cv_pct"] <= STABLE_CV_PCT
        and stats["drift_pct"] is not None
        and abs(stats["drift_pct"]) <= STABLE_DRIFT_PCT
    )
    return stats


def timed_call(call: Callable[[], object], device: str) -> float:
    """Milliseconds of one call, synchronised before and after so queued device work counts."""
    devices.synchronize(device)
    start = time.perf_counter()
    call()
    devices.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def _timed_runs(
    call, device, *, min_runs: int, max_runs: int, min_seconds: float, deadline: float
) -> tuple[list[float], float, bool]:
    """Timed calls until both min_runs and min_seconds are met, capped by max_runs and the
    deadline (checked before each call). Returns the samples, the seconds they took and
    whether the deadline ended them."""
    runs: list[float] = []
    started = time.perf_counter()
    while len(runs) < max_runs and (len(runs) < min_runs or time.perf_counter() - started < min_seconds):
        if time.perf_counter() >= deadline:
            return runs, time.perf_counter() - started, True
        runs.append(timed_call(call, device))
    return runs, time.perf_counter() - started, False


def measure(
    call: Callable[[], object],
    device: str,
    batch_size: int,
    *,
    warmup: int,
    min_runs: int,
    max_runs: int,
    max_seconds: float,
    min_seconds: float = 0.0,
    pipelined: bool | None = None,
) -> tuple[dict, list[tuple[str, int, float]]]:
    """Benchmark ``call`` (one forward pass at ``batch_size``, inputs already on ``device``).

    Returns one result row of benchmark.json (status ``ok`` or ``over_budget``) and the raw
    samples as ``(phase, run, ms)``. ``pipelined``: measure the throughput over back-to-back
    calls (default: when the device runs asynchronously, devices.runs_asynchronously)."""
    if not 2 <= min_runs <= max_runs:
        raise ValueError(f"need 2 <= min_runs <= max_runs, got min_runs={min_runs}, max_runs={max_runs}")
    pipelined = devices.runs_asynchronously(device) if pipelined is None else pipelined
    gc.collect()
    rss_reset = devices.reset_peak_host_rss()
    on_device = devices.kind_of(device) != "cpu"
    if on_device:
        devices.reset_peak_memory(device)
    # Like timeit: no cyclic garbage collection inside the measurement, so a collection
    # triggered by earlier allocations never lands in one sample. Tensors are freed by
    # reference counting, so memory does not grow.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    samples: list[tuple[str, int, float]] = []
    row = {
        "batch_size": batch_size,
        "status": "ok",
        "reason": None,
        "runs": 0,
        "warmup_runs": 0,
        "remeasured": False,
        "budget_exhausted": False,
    }
    try:
        start = time.perf_counter()
        last_ms = row["first_call_ms"] = timed_call(call, device)
        samples.append(("first_call", 0, last_ms))
        budget_start = time.perf_counter()
        deadline = budget_start + max_seconds
        while row["warmup_runs"] < warmup:
            now, left = time.perf_counter(), warmup - row["warmup_runs"]
            # The first warm-up call always runs (before the deadline): the first call's
            # time includes one-time costs and says little about the pace.
            if now >= deadline or (row["warmup_runs"] and now + (left + min_runs) * last_ms / 1000 > deadline):
                break
            last_ms = timed_call(call, device)
            samples.append(("warmup", row["warmup_runs"], last_ms))
            row["warmup_runs"] += 1
        stats = None
        if row["warmup_runs"] < warmup:
            needed = (time.perf_counter() - budget_start) + (warmup - row["warmup_runs"] + min_runs) * last_ms / 1000
            row.update(
                status="over_budget",
                reason=(
                    f"warm-up did not finish within max_seconds={max_seconds:g}: "
                    f"{row['warmup_runs']} of {warmup} warm-up calls, last call {last_ms / 1000:.3g} s; "
                    f"warm-up and {min_runs} timed runs need about {needed:.3g} s (raise benchmark.max_seconds)"
                ),
            )
        elif (row["warmup_runs"] or not on_device) and (left_s := deadline - time.perf_counter()) < last_ms / 1000:
            # A first timed run would start, but at the last call's pace it ends past the deadline, so
            # no second one starts and the row is over budget anyway: say so now, without that call.
            # With no warm-up the pace is the first call's, which on an accelerator includes the
            # compilation: there it sets no pace.
            row.update(
                status="over_budget",
                reason=(
                    f"{max(0.0, left_s):.3g} s of max_seconds={max_seconds:g} left after the "
                    f"{'warm-up' if warmup else 'first call'}, "
                    f"less than one call (about {last_ms / 1000:.3g} s): "
                    f"{min_runs} timed runs need about {min_runs * last_ms / 1000:.3g} s more "
                    "(raise benchmark.max_seconds)"
                ),
            )
        else:
            timing = {"min_runs": min_runs, "max_runs": max_runs, "min_seconds": min_seconds, "deadline": deadline}
            runs, took, cut = _timed_runs(call, device, **timing)
            if (
                len(runs) >= 2
                and not (stats := sample_stats(runs))["stable"]
                and deadline - time.perf_counter() >= took
            ):
                samples += [("rejected", index, ms) for index, ms in enumerate(runs)]
                row.update(remeasured=True, first_attempt_cv_pct=stats["cv_pct"], first_attempt_p50_ms=stats["p50_ms"])
                runs, took, cut = _timed_runs(call, device, **timing)
            row["budget_exhausted"] = cut
            samples += [("timed", index, ms) for index, ms in enumerate(runs)]
            row["runs"] = len(runs)
            if len(runs) < 2:
                stats = None  # not the rejected attempt's: those samples did not make this row
                row.update(
                    status="over_budget",
                    reason=(
                        f"{len(runs)} timed run(s) within max_seconds={max_seconds:g} after the warm-up "
                        f"(a call takes about {last_ms / 1000:.3g} s; raise benchmark.max_seconds)"
                    ),
                )
            else:
                stats = sample_stats(runs)
        if stats is not None:
            row.update(stats)
            row.update(_throughput(call, device, batch_size, stats, len(runs) if pipelined else 0, deadline, samples))
            notes = []
            if row["runs"] < min_runs:
                notes.append(f"only {row['runs']} of min_runs={min_runs} timed runs within max_seconds={max_seconds:g}")
            if not stats["stable"]:
                notes.append(
                    f"unstable: cv {_pct(stats['cv_pct'])}, drift {_pct(stats['drift_pct'])} "
                    f"(stable: cv <= {STABLE_CV_PCT:g}% and |drift| <= {STABLE_DRIFT_PCT:g}%)"
                    + ("; measured twice" if row["remeasured"] else "; no budget left to measure again")
                )
            if pipelined and row["throughput_method"] != "pipelined":
                notes.append("no budget left for the pipelined throughput: throughput from the p50")
            row["reason"] = "; ".join(notes) or None
        end = time.perf_counter()
        row["elapsed_s"] = end - start
    finally:
        if gc_was_enabled:
            gc.enable()
    row["budget_overrun_s"] = max(0.0, end - budget_start - max_seconds)
    # The deadline ended a phase: the warm-up, the timed runs or the pipelined throughput.
    row["budget_exhausted"] = (
        row["status"] != "ok" or row["budget_exhausted"] or (pipelined and row["throughput_method"] != "pipelined")
    )
    row["peak_host_rss_mb"], rss_scope = devices.peak_host_rss_mb()
    row["peak_host_rss_scope"] = "batch_size" if rss_reset and rss_scope == "window" else "process_lifetime"
    row["peak_device_mem_mb"], row["peak_device_mem_reason"] = devices.peak_device_mem_mb(device)
    # The single column of the first contract: device memory on an accelerator, host RSS on the CPU.
    row["peak_mem_mb"] = row["peak_device_mem_mb"] if on_device else row["peak_host_rss_mb"]
    row["peak_mem_kind"] = f"{devices.kind_of(device)}_allocator_peak" if on_device else "process_peak_rss"
    row["peak_mem_scope"] = "batch_size" if on_device else row["peak_host_rss_scope"]
    return row, samples


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _throughput(call, device: str, batch_size: int, stats: dict, calls: int, deadline: float, samples: list) -> dict:
    """Items per second: from ``calls`` back-to-back calls and one synchronisation (as many
    as the budget left allows at the p50's pace), else from the p50."""
    sync_throughput = batch_size * 1000.0 / stats["p50_ms"]
    result = {
        "throughput": sync_throughput,
        "throughput_method": "p50",
        "throughput_sync": sync_throughput,
        "pipelined_calls": None,
        "pipelined_ms_per_call": None,
        "pipelined_clock": None,
    }
    calls = min(calls, int((deadline - time.perf_counter()) * 1000.0 / stats["p50_ms"]))
    if calls < 2:
        return result
    clock = devices.DeviceClock(device)
    clock.start()
    for _ in range(calls):
        call()
    per_call_ms = clock.stop() / calls
    samples.append(("pipelined", 0, per_call_ms))
    result.update(
        throughput=batch_size * 1000.0 / per_call_ms,
        throughput_method="pipelined",
        pipelined_calls=calls,
        pipelined_ms_per_call=per_call_ms,
        pipelined_clock=clock.kind,
    )
    return result
