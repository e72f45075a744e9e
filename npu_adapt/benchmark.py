"""Benchmarking one model over the configured batch sizes, and the optional CPU baseline."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

from npu_adapt import devices
from npu_adapt.adapters import get_adapter
from npu_adapt.jobs import ModelBlocked, check_upstream, describe_exception, model_step
from npu_adapt.llm_timing import llm_figures
from npu_adapt.runner import LoadedModel
from npu_adapt.timing import STABLE_CV_PCT, STABLE_DRIFT_PCT, measure

if TYPE_CHECKING:
    from npu_adapt.config_types import BenchmarkSettings, ModelEntry, Placement

log = logging.getLogger("npu_adapt")

# The keys of a measured row (timing.measure); a row that was not measured, or not to the
# end, carries the missing ones as null. Row statuses: ok, over_budget (timing.measure),
# oom, skipped (a smaller batch size ran out of memory or over the budget).
ROW_KEYS = (
    "batch_size",
    "status",
    "reason",
    "runs",
    "warmup_runs",
    "stable",
    "remeasured",
    "first_attempt_cv_pct",
    "first_attempt_p50_ms",
    "budget_exhausted",
    "elapsed_s",
    "budget_overrun_s",
    "first_call_ms",
    "mean_ms",
    "std_ms",
    "cv_pct",
    "iqr_ms",
    "drift_pct",
    "min_ms",
    "p10_ms",
    "p25_ms",
    "p50_ms",
    "p75_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "throughput",
    "throughput_method",
    "throughput_sync",
    "pipelined_calls",
    "pipelined_ms_per_call",
    "pipelined_clock",
    "speedup_vs_cpu",
    "peak_host_rss_mb",
    "peak_host_rss_scope",
    "peak_device_mem_mb",
    "peak_device_mem_reason",
    "peak_mem_mb",
    "peak_mem_kind",
    "peak_mem_scope",
)
# The raw per-call times (benchmark_samples.csv); phase as in timing.PHASES, prefixed with
# "baseline_" for the CPU baseline's.
SAMPLE_COLUMNS = ("batch_size", "phase", "run", "ms")

# Decoder-only LLM rows (families whose adapter has prefill/decode) also carry these:
# time to first token (p50 of the prompt's prefill) and the decode speed (p50 over the tokens).
LLM_KEYS = ("prompt_len", "new_tokens", "ttft_ms", "decode_ms_per_token", "decode_tokens_per_s")

# The CPU baseline runs the model as it usually runs there: float32.
BASELINE_DEVICE, BASELINE_DTYPE = "cpu", "float32"


def empty_row(batch_size: int, status: str, reason: str) -> dict:
    return {**dict.fromkeys(ROW_KEYS), "batch_size": batch_size, "status": status, "reason": reason}


def host_info() -> dict:
    """The CPU model and its frequency governor (null where unreadable, e.g. in a container)."""
    return {"cpu": devices.cpu_model_name(), "governor": devices.cpu_governor()}


def param_bytes(model) -> int:
    """Bytes of the model's parameters and buffers as placed (in the target dtype)."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(tensor.numel() * tensor.element_size() for tensor in tensors))


def benchmark_model(
    loaded: LoadedModel,
    arrays: dict,
    settings: BenchmarkSettings,
    batch_sizes: list[int] | None = None,
    samples: list[dict] | None = None,
) -> list[dict]:
    """One result row per batch size (ascending). A batch size that runs out of memory is
    recorded as ``oom``, one whose warm-up does not fit the time budget as ``over_budget``;
    the larger ones are then ``skipped`` and the smaller ones kept. The raw per-call times
    are appended to ``samples`` (dicts of SAMPLE_COLUMNS) when given."""
    sizes = sorted(settings.batch_sizes if batch_sizes is None else batch_sizes)
    # One full collection here; then everything that exists now (the libraries, the model),
    # alive for the whole benchmark anyway, is set aside, so the collections around each
    # batch size scan only what the benchmark creates: with torch and transformers loaded a
    # full collection takes about 0.2 s, and there are two per batch size.
    gc.collect()
    gc.freeze()
    try:
        return _benchmark_sizes(loaded, arrays, settings, sizes, samples if samples is not None else [])
    finally:
        gc.unfreeze()


def _benchmark_sizes(
    loaded: LoadedModel, arrays: dict, settings: BenchmarkSettings, sizes: list[int], samples: list[dict]
) -> list[dict]:
    rows = []
    for position, batch_size in enumerate(sizes):
        inputs = None
        try:
            inputs = loaded.place_inputs(arrays, batch_size)  # resident on the device before timing
            devices.check_fake_oom(batch_size)  # test seam: behaves as the device refusing this batch
            row, raw = measure(
                lambda inputs=inputs: loaded.forward(inputs),
                loaded.device,
                batch_size,
                **settings.measure_options(),
            )
            if is_llm(loaded):  # out of memory here too counts as this batch size's
                # A forward that could not be timed within the budget: its prefill cannot be either.
                figures = llm_figures(loaded, inputs, settings, batch_size) if row["status"] == "ok" else {}
                note = figures.pop("reason", None)
                row.update({**dict.fromkeys(LLM_KEYS), **figures})
                row["reason"] = "; ".join(filter(None, [row["reason"], note])) or None
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, ModelBlocked) else exc
            if cause is None or not devices.is_out_of_memory(cause):
                raise
            reason = describe_exception(cause, f"batch size {batch_size}")
            log.warning("out of memory at batch size %d: %s", batch_size, reason)
            rows.append(empty_row(batch_size, "oom", reason))
            rows += [
                empty_row(larger, "skipped", f"a smaller batch size ({batch_size}) ran out of memory")
                for larger in sizes[position + 1 :]
            ]
            break
        finally:
            del inputs
            gc.collect()  # frames of an exception's traceback may hold device tensors
            devices.empty_cache(loaded.device)
        samples += [{"batch_size": batch_size, "phase": phase, "run": run, "ms": ms} for phase, run, ms in raw]
        row = {**dict.fromkeys(ROW_KEYS), **row}
        rows.append(row)
        if row["status"] != "ok":
            log.warning("batch %d %s after %.1f s: %s", batch_size, row["status"], row["elapsed_s"], row["reason"])
            rows += [
                empty_row(larger, "skipped", f"a smaller batch size ({batch_size}) did not fit the time budget")
                for larger in sizes[position + 1 :]
            ]
            break
        log.info(
            "batch %d: first call %.3f ms, %d warm-up, %d runs in %.1f s%s: p50 %.3f ms, cv %.1f%%%s, "
            "%.2f items/s (%s), peak RSS %.0f MB, device %s MB",
            batch_size,
            row["first_call_ms"],
            row["warmup_runs"],
            row["runs"],
            row["elapsed_s"],
            " (budget exhausted)" if row["budget_exhausted"] else "",
            row["p50_ms"],
            row["cv_pct"] or 0.0,
            "" if row["stable"] else " UNSTABLE",
            row["throughput"],
            row["throughput_method"],
            row["peak_host_rss_mb"],
            "n/a" if row["peak_device_mem_mb"] is None else f"{row['peak_device_mem_mb']:.0f}",
        )
    return rows


def is_llm(loaded: LoadedModel) -> bool:
    return hasattr(loaded.adapter, "prefill") and hasattr(loaded.adapter, "decode")


def no_baseline(status: str, reason: str) -> dict:
    return {"device": None, "device_name": None, "dtype": None, "status": status, "reason": reason, "results": []}


def runs_as_baseline(loaded: LoadedModel) -> bool:
    """Whether a loaded model already is the baseline's: on the CPU, in float32."""
    return devices.kind_of(loaded.device) == BASELINE_DEVICE and loaded.dtype == BASELINE_DTYPE


def cpu_baseline(
    entry: ModelEntry,
    manifest: dict,
    arrays: dict,
    settings: BenchmarkSettings,
    rows: list[dict],
    base_dir,
    loaded: LoadedModel | None = None,
    samples: list[dict] | None = None,
) -> dict:
    """``benchmark.baseline: cpu``: the same model on the CPU in float32, at the batch sizes
    that succeeded on the target, with the same settings. Sets each target row's
    ``speedup_vs_cpu`` (target throughput / baseline throughput; on a CPU target the ratio
    of the p50s). Its raw samples go to ``samples`` with phases prefixed ``baseline_``.
    ``loaded``: the target's model when it already runs as the baseline (runs_as_baseline),
    so the job builds the model from its weights once; otherwise the baseline loads its own."""
    if settings.baseline == "none":
        return no_baseline("not_requested", "benchmark.baseline is none")
    sizes = [row["batch_size"] for row in rows if row["status"] == "ok"]
    if not sizes:
        return no_baseline("skipped", "no batch size succeeded on the target")
    baseline = {
        "device": BASELINE_DEVICE,
        "device_name": devices.device_name(BASELINE_DEVICE),
        "dtype": BASELINE_DTYPE,
        "status": "ok",
        "reason": None,
        "results": [],
    }
    log.info("CPU baseline (%s, %s), batch sizes %s", baseline["device_name"], BASELINE_DTYPE, sizes)
    try:
        if loaded is None or not runs_as_baseline(loaded):
            loaded = LoadedModel(entry, manifest, BASELINE_DEVICE, BASELINE_DTYPE, base_dir)
        raw: list[dict] = []
        baseline["results"] = benchmark_model(loaded, arrays, settings, sizes, raw)
    except ModelBlocked as blocked:
        log.error("CPU baseline blocked: %s", blocked)
        return {**baseline, "status": "blocked", "reason": str(blocked)}
    if samples is not None:
        samples += [{**sample, "phase": f"baseline_{sample['phase']}"} for sample in raw]
    cpu_throughput = {row["batch_size"]: row["throughput"] for row in baseline["results"] if row["status"] == "ok"}
    for row in rows:
        if row["batch_size"] in cpu_throughput:
            row["speedup_vs_cpu"] = row["throughput"] / cpu_throughput[row["batch_size"]]
    return baseline


def run_benchmark(
    model: str,
    entry: ModelEntry,
    manifest: dict,
    arrays,
    placement: Placement,
    settings: BenchmarkSettings,
    base_dir,
    target: dict | None = None,
    job_cores: int | None = None,
) -> tuple[dict, list[dict]]:
    """The whole benchmark of one model, as the workflow's job and ``npu-adapt bench`` run
    it: take a device, set the threads (``benchmark.threads``; null: as the job's cores left
    them), measure every batch size, then the CPU baseline. Returns benchmark.json's content
    and the raw samples (rows of SAMPLE_COLUMNS). ``target``: the target dump's index.json
    (its device and name are reported if the benchmark blocks before choosing one).
    ``arrays``: the inputs, or a function loading them (the workflow's, which checks them
    against their recorded sha256: a mismatch makes the benchmark ``error``)."""
    target = target or {}
    result = {
        "model": model,
        "status": "ok",
        "reason": None,
        "device": target.get("device"),
        "requested_device": placement.device,
        "device_name": target.get("device_name"),
        "dtype": placement.dtype,
        # CPU latencies are only comparable at equal thread counts: the count torch really used.
        "threads": None,
        "threads_requested": settings.threads,
        "job_cores": job_cores,
        "warmup": settings.warmup,
        "timed_call": get_adapter(entry, base_dir).timed_call(),
        "settings": settings.as_dict(),
        "param_bytes": None,
        "results": [],
        "baseline": None,
        "stability_rule": {"cv_pct_max": STABLE_CV_PCT, "drift_pct_max": STABLE_DRIFT_PCT},
        "host": host_info(),
        "load_average": {"start": devices.load_average(), "end": None},  # 1, 5 and 15 min
    }
    samples: list[dict] = []
    try:
        check_upstream(target=target)
        if callable(arrays):
            with model_step("inputs"):
                arrays = arrays()
        # A device of this job's own, held for the target measurements only (the baseline
        # runs on the CPU); see npu_adapt/dump.py.
        with devices.acquire_device(devices.accelerator_kind(placement.device)) as device_index:
            result["device_index"] = device_index
            import torch  # only now: the device's visibility must be set before any runtime starts

            if settings.threads:
                torch.set_num_threads(settings.threads)
            result["threads"] = torch.get_num_threads()
            with model_step("device"):
                device = devices.resolve(placement.device)
            devices.apply_precision(devices.kind_of(device), placement.precision)  # as the target dump ran
            loaded = LoadedModel(entry, manifest, device, placement.dtype, base_dir)
            result.update(device=device, device_name=devices.device_name(device), param_bytes=param_bytes(loaded.model))
            log.info(
                "%s on %s (%s) %s, %d threads, batch sizes %s",
                model,
                device,
                result["device_name"],
                placement.dtype,
                result["threads"],
                list(settings.batch_sizes),
            )
            result["results"] = benchmark_model(loaded, arrays, settings, samples=samples)
            # A target on the CPU in float32 is the baseline's model too (built once per job);
            # any other target's copy is freed before the baseline loads its own.
            reusable = loaded if runs_as_baseline(loaded) else None
            del loaded
            devices.empty_cache(device)
        first = result["results"][0]
        if first["status"] == "oom":
            # Out of memory even at the smallest batch size: the model cannot run here. (A
            # batch size over the time budget is a setting to raise, not a model failure.)
            raise ModelBlocked(f"no batch size fits in device memory; {first['reason']}")
        result["baseline"] = cpu_baseline(
            entry, manifest, arrays, settings, result["results"], base_dir, reusable, samples
        )
    except ModelBlocked as blocked:
        result.update(
            status=blocked.status,
            reason=str(blocked),
            baseline=no_baseline("skipped", f"the target benchmark is {blocked.status}"),
        )
        log.error("%s blocked: %s", model, blocked)
    result["load_average"]["end"] = devices.load_average()
    return result, samples
