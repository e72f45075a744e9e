"""Benchmarking one model over the configured batch sizes, and the optional CPU baseline."""

from __future__ import annotations

import gc
import logging
import time

import numpy as np

from npu_adapt import devices
from npu_adapt.jobs import ModelBlocked, describe_exception
from npu_adapt.runner import LoadedModel
from npu_adapt.timing import measure

log = logging.getLogger("npu_adapt")

# The keys of an ok row (timing.measure); rows that did not run carry them as null.
ROW_KEYS = (
    "batch_size", "status", "reason", "runs", "warmup_runs", "budget_exhausted", "elapsed_s", "first_call_ms",
    "mean_ms", "std_ms", "min_ms", "p10_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
    "throughput", "speedup_vs_cpu", "peak_mem_mb", "peak_mem_kind", "peak_mem_scope",
)  # fmt: skip

# Decoder-only LLM rows (families whose adapter has prefill/decode) also carry these:
# time to first token (p50 of the prompt's prefill) and the decode speed (p50 over the tokens).
LLM_KEYS = ("prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s")
DEFAULT_NEW_TOKENS = 16

# The CPU baseline runs the model as it usually runs there: float32.
BASELINE_DEVICE, BASELINE_DTYPE = "cpu", "float32"


def empty_row(batch_size: int, status: str, reason: str) -> dict:
    return {**dict.fromkeys(ROW_KEYS), "batch_size": batch_size, "status": status, "reason": reason}


def benchmark_model(loaded: LoadedModel, arrays: dict, settings: dict, batch_sizes: list[int] | None = None) -> list[dict]:
    """One result row per batch size (ascending). An out-of-memory batch size is recorded as
    ``oom`` and the larger ones as ``skipped``; the smaller ones are kept."""
    sizes = sorted(settings["batch_sizes"] if batch_sizes is None else batch_sizes)
    # One full collection here; then everything that exists now (the libraries, the model),
    # alive for the whole benchmark anyway, is set aside, so the collections around each
    # batch size scan only what the benchmark creates: with torch and transformers loaded a
    # full collection takes about 0.2 s, and there are two per batch size.
    gc.collect()
    gc.freeze()
    try:
        return _benchmark_sizes(loaded, arrays, settings, sizes)
    finally:
        gc.unfreeze()


def _benchmark_sizes(loaded: LoadedModel, arrays: dict, settings: dict, sizes: list[int]) -> list[dict]:
    rows = []
    for position, batch_size in enumerate(sizes):
        inputs = None
        try:
            inputs = loaded.place_inputs(arrays, batch_size)  # resident on the device before timing
            devices.check_fake_oom(batch_size)  # test seam: behaves as the device refusing this batch
            row = measure(
                lambda: loaded.forward(inputs),
                loaded.device,
                batch_size,
                warmup=settings["warmup"],
                min_runs=settings["min_runs"],
                max_runs=settings["max_runs"],
                max_seconds=settings["max_seconds"],
            )
            if is_llm(loaded):  # out of memory here too counts as this batch size's
                row.update(llm_figures(loaded, inputs, settings, batch_size))
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, ModelBlocked) else exc
            if cause is None or not devices.is_out_of_memory(cause):
                raise
            reason = describe_exception(cause, f"batch size {batch_size}")
            log.warning("out of memory at batch size %d: %s", batch_size, reason)
            rows.append(empty_row(batch_size, "oom", reason))
            rows += [empty_row(larger, "skipped", f"a smaller batch size ({batch_size}) ran out of memory") for larger in sizes[position + 1 :]]
            break
        finally:
            del inputs
            gc.collect()  # frames of an exception's traceback may hold device tensors
            devices.empty_cache(loaded.device)
        row["speedup_vs_cpu"] = None
        rows.append(row)
        log.info(
            "batch %d: first call %.3f ms, %d warm-up, %d runs in %.1f s%s: p50 %.3f ms, mean %.3f ms, %.2f items/s, peak %.0f MB (%s, %s)",
            batch_size, row["first_call_ms"], row["warmup_runs"], row["runs"], row["elapsed_s"],
            " (budget exhausted)" if row["budget_exhausted"] else "", row["p50_ms"], row["mean_ms"], row["throughput"],
            row["peak_mem_mb"], row["peak_mem_kind"], row["peak_mem_scope"],
        )  # fmt: skip
    return rows


def is_llm(loaded: LoadedModel) -> bool:
    return hasattr(loaded.adapter, "prefill") and hasattr(loaded.adapter, "decode")


def prompt_ids(input_ids, prompt_len: int | None):
    """The benchmark's prompt: the inputs' token ids, or ``prompt_len`` ids (the inputs' ids
    repeated, then cut), so a long-prompt figure needs no other tokenizer run."""
    if not prompt_len:
        return input_ids
    repeats = -(-prompt_len // input_ids.shape[1])
    return input_ids.repeat(1, repeats)[:, :prompt_len].contiguous()


def llm_figures(loaded: LoadedModel, inputs: dict, settings: dict, batch_size: int) -> dict:
    """Prefill and decode timed apart, at one batch size (inputs already on the device).

    ``ttft_ms``: p50 of the prompt's forward pass with its first greedy token, measured as
    any forward (first call, warm-up, runs within ``max_seconds``). ``decode_ms_per_token``:
    p50 over ``new_tokens`` single-token steps from the KV cache, each synchronised;
    ``decode_tokens_per_s`` = batch_size tokens per step / that p50."""
    import torch

    adapter, model = loaded.adapter, loaded.model
    ids = prompt_ids(inputs["input_ids"], settings.get("prompt_len"))
    new_tokens = int(settings.get("new_tokens") or DEFAULT_NEW_TOKENS)
    with torch.inference_mode():
        prefill = measure(
            lambda: adapter.prefill(model, ids),
            loaded.device,
            batch_size,
            warmup=settings["warmup"],
            min_runs=settings["min_runs"],
            max_runs=settings["max_runs"],
            max_seconds=settings["max_seconds"],
        )
        cache, next_ids = adapter.prefill(model, ids)
        steps_ms = []
        for _ in range(new_tokens):
            devices.synchronize(loaded.device)
            start = time.perf_counter()
            cache, next_ids = adapter.decode(model, cache, next_ids)
            devices.synchronize(loaded.device)
            steps_ms.append((time.perf_counter() - start) * 1000.0)
        del cache, next_ids
    per_token = float(np.percentile(steps_ms, 50))
    figures = {
        "prompt_len": int(ids.shape[1]),
        "new_tokens": new_tokens,
        "ttft_ms": prefill["p50_ms"],
        "decode_ms_per_token": per_token,
        "decode_tokens_per_s": batch_size * 1000.0 / per_token,
    }
    log.info(
        "batch %d: prompt %d tokens, time to first token p50 %.3f ms (%d runs); %d new tokens, decode p50 %.3f ms/token, %.1f tokens/s",
        batch_size, figures["prompt_len"], figures["ttft_ms"], prefill["runs"], new_tokens, per_token, figures["decode_tokens_per_s"],
    )  # fmt: skip
    return figures


def no_baseline(status: str, reason: str) -> dict:
    return {"device": None, "device_name": None, "dtype": None, "status": status, "reason": reason, "results": []}


def runs_as_baseline(loaded: LoadedModel) -> bool:
    """Whether a loaded model already is the baseline's: on the CPU, in float32."""
    return devices.kind_of(loaded.device) == BASELINE_DEVICE and loaded.dtype == BASELINE_DTYPE


def cpu_baseline(entry: dict, manifest: dict, arrays: dict, settings: dict, rows: list[dict], base_dir, loaded: LoadedModel | None = None) -> dict:
    """``benchmark.baseline: cpu``: the same model on the CPU in float32, at the batch sizes
    that succeeded on the target, with the same settings. Sets each target row's
    ``speedup_vs_cpu`` (baseline mean / target mean, i.e. the throughput ratio).
    ``loaded``: the target's model when it already runs as the baseline (runs_as_baseline),
    so the job builds the model from its weights once; otherwise the baseline loads its own."""
    if settings.get("baseline", "none") == "none":
        return no_baseline("not_requested", "benchmark.baseline is none")
    sizes = [row["batch_size"] for row in rows if row["status"] == "ok"]
    if not sizes:
        return no_baseline("skipped", "no batch size succeeded on the target")
    baseline = {"device": BASELINE_DEVICE, "device_name": devices.device_name(BASELINE_DEVICE), "dtype": BASELINE_DTYPE, "status": "ok", "reason": None, "results": []}
    log.info("CPU baseline (%s, %s), batch sizes %s", baseline["device_name"], BASELINE_DTYPE, sizes)
    try:
        if loaded is None or not runs_as_baseline(loaded):
            loaded = LoadedModel(entry, manifest, BASELINE_DEVICE, BASELINE_DTYPE, base_dir)
        baseline["results"] = benchmark_model(loaded, arrays, settings, sizes)
    except ModelBlocked as blocked:
        log.error("CPU baseline blocked: %s", blocked)
        return {**baseline, "status": "blocked", "reason": str(blocked)}
    cpu_mean = {row["batch_size"]: row["mean_ms"] for row in baseline["results"] if row["status"] == "ok"}
    for row in rows:
        if row["batch_size"] in cpu_mean:
            row["speedup_vs_cpu"] = cpu_mean[row["batch_size"]] / row["mean_ms"]
    return baseline
