"""The benchmark harness: latency and throughput of one callable at one batch size.

One measurement, in order:

1. the first call, timed on its own: on NPU/CUDA it includes lazy kernel compilation and
   allocator growth for this input shape, so it never enters the statistics;
2. warm-up calls, while the time budget lasts (their count is recorded);
3. timed calls until ``max_runs``, or until the budget is spent once ``min_runs`` are done.

Every call is bracketed by the device's synchronisation, so queued device work is inside the
interval it belongs to. ``max_seconds`` covers all three phases, so a slow model costs about
``max(max_seconds, first call) + (min_runs + 1) calls`` per batch size at worst.
"""

from __future__ import annotations

import gc
import time
from typing import Callable

import numpy as np

from npu_adapt import devices

PERCENTILES = (10, 50, 90, 95, 99)


def percentile_stats(samples_ms: list[float]) -> dict:
    """Summary of latencies in ms: mean, sample std, min/max and percentiles (linear
    interpolation, so p10 <= p50 <= p90 <= p95 <= p99 always)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size < 2:
        raise ValueError(f"need at least 2 samples for a standard deviation, got {values.size}")
    stats = {"mean_ms": float(values.mean()), "std_ms": float(values.std(ddof=1)), "min_ms": float(values.min())}
    stats.update({f"p{q}_ms": float(value) for q, value in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
    stats["max_ms"] = float(values.max())
    return stats


def timed_call(call: Callable[[], object], device: str) -> float:
    """Milliseconds of one call, synchronised before and after so queued device work counts."""
    devices.synchronize(device)
    start = time.perf_counter()
    call()
    devices.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def measure(call: Callable[[], object], device: str, batch_size: int, *, warmup: int, min_runs: int, max_runs: int, max_seconds: float) -> dict:
    """Benchmark ``call`` (one forward pass at ``batch_size``, inputs already on ``device``).

    Returns one result row of benchmark.json (status ``ok``).
    """
    if not 2 <= min_runs <= max_runs:
        raise ValueError(f"need 2 <= min_runs <= max_runs, got min_runs={min_runs}, max_runs={max_runs}")
    gc.collect()
    peak_reset = devices.reset_peak_memory(device)
    # Like timeit: no cyclic garbage collection inside the measurement, so a collection
    # triggered by earlier allocations never lands in one sample. Tensors are freed by
    # reference counting, so memory does not grow.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        deadline = start + max_seconds
        first_call_ms = timed_call(call, device)
        warmup_runs = 0
        while warmup_runs < warmup and time.perf_counter() < deadline:
            timed_call(call, device)
            warmup_runs += 1
        samples: list[float] = []
        while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() < deadline):
            samples.append(timed_call(call, device))
        elapsed_s = time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    peak_mb, peak_kind = devices.peak_memory(device)
    stats = percentile_stats(samples)
    return {
        "batch_size": batch_size,
        "status": "ok",
        "reason": None,
        "runs": len(samples),
        "warmup_runs": warmup_runs,
        # The budget ran out before the planned warm-up and max_runs were done.
        "budget_exhausted": warmup_runs < warmup or len(samples) < max_runs,
        "elapsed_s": elapsed_s,
        "first_call_ms": first_call_ms,
        **stats,
        "throughput": batch_size * 1000.0 / stats["mean_ms"],
        "peak_mem_mb": peak_mb,
        "peak_mem_kind": peak_kind,
        # What the peak covers: this batch size alone, or (where it cannot be reset) the process.
        "peak_mem_scope": "batch_size" if peak_reset else "process_lifetime",
    }
