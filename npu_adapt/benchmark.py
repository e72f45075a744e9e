"""Benchmarking one model on its target device over the configured batch sizes."""

from __future__ import annotations

import logging

from npu_adapt import devices
from npu_adapt.jobs import ModelBlocked, describe_exception
from npu_adapt.runner import LoadedModel
from npu_adapt.timing import measure

log = logging.getLogger("npu_adapt")


def benchmark_model(loaded: LoadedModel, arrays: dict, settings: dict) -> list[dict]:
    """One result row per batch size. An out-of-memory batch is recorded as ``oom`` and the
    larger batch sizes are skipped; the smaller ones are kept."""
    rows = []
    for position, batch_size in enumerate(sorted(settings["batch_sizes"])):
        inputs = loaded.place_inputs(arrays, batch_size)  # resident on the device before timing

        def call():
            devices.check_fake_oom(batch_size)
            return loaded.forward(inputs)

        try:
            row = measure(
                call,
                loaded.device,
                batch_size,
                warmup=settings["warmup"],
                min_runs=settings["min_runs"],
                max_runs=settings["max_runs"],
                max_seconds=settings["max_seconds"],
            )
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, ModelBlocked) else exc
            if cause is None or not devices.is_out_of_memory(cause):
                raise
            reason = describe_exception(cause, f"batch {batch_size}")
            log.warning("out of memory at batch size %d: %s", batch_size, reason)
            rows.append({"batch_size": batch_size, "status": "oom", "reason": reason})
            for larger in sorted(settings["batch_sizes"])[position + 1 :]:
                rows.append({"batch_size": larger, "status": "skipped", "reason": f"out of memory at batch size {batch_size}"})
            devices.empty_cache(loaded.device)
            break
        finally:
            del inputs
        rows.append(row)
        log.info(
            "batch %d: %d runs, p50 %.3f ms, mean %.3f ms, %.1f items/s, peak %.0f MB (%s)",
            batch_size, row["runs"], row["p50_ms"], row["mean_ms"], row["throughput"], row["peak_mem_mb"], row["peak_mem_kind"],
        )
    return rows
