"""The benchmark harness: latency and throughput of one callable per batch size.

Per batch size: the first call is timed on its own (it includes lazy kernel compilation on
NPU/CUDA), then warm-up calls, then timed calls, each bracketed by device synchronisation,
until ``max_runs`` or the time budget is spent (but at least ``min_runs``).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from npu_adapt import devices


def percentile_stats(samples_ms: list[float]) -> dict:
    values = np.asarray(samples_ms, dtype=np.float64)
    return {
        "mean_ms": float(values.mean()),
        "std_ms": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "p10_ms": float(np.percentile(values, 10)),
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p95_ms": float(np.percentile(values, 95)),
        "p99_ms": float(np.percentile(values, 99)),
    }


def timed_call(call: Callable[[], object], device: str) -> float:
    """Milliseconds of one call, synchronised before and after so queued device work counts."""
    devices.synchronize(device)
    start = time.perf_counter()
    call()
    devices.synchronize(device)
    return (time.perf_counter() - start) * 1000.0


def measure(call: Callable[[], object], device: str, batch_size: int, *, warmup: int, min_runs: int, max_runs: int, max_seconds: float) -> dict:
    """Benchmark ``call`` (one forward pass at ``batch_size``) on ``device``."""
    budget_end = time.perf_counter() + max_seconds
    devices.reset_peak_memory(device)
    first_call_ms = timed_call(call, device)
    warmups_done = 0
    for _ in range(warmup):
        if time.perf_counter() >= budget_end:
            break
        timed_call(call, device)
        warmups_done += 1
    samples: list[float] = []
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() < budget_end):
        samples.append(timed_call(call, device))
    peak_mb, peak_kind = devices.peak_memory(device)
    stats = percentile_stats(samples)
    return {
        "batch_size": batch_size,
        "status": "ok",
        "reason": None,
        "runs": len(samples),
        "warmup_runs": warmups_done,
        "budget_exhausted": len(samples) < max_runs,
        "first_call_ms": first_call_ms,
        **stats,
        "throughput": batch_size * 1000.0 / stats["mean_ms"] if stats["mean_ms"] > 0 else math.inf,
        "peak_mem_mb": peak_mb,
        "peak_mem_kind": peak_kind,
    }
