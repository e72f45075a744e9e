"""The LLM figures of a causal LM's benchmark row: prefill (time to first token) and
per-token decode, timed apart (npu_adapt.benchmark adds them to a row of a family whose
adapter has ``prefill`` and ``decode``)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from npu_adapt import devices
from npu_adapt.timing import measure

if TYPE_CHECKING:
    from npu_adapt.config_types import BenchmarkSettings
    from npu_adapt.runner import LoadedModel

log = logging.getLogger("npu_adapt")


def prompt_ids(input_ids, prompt_len: int | None):
    """The benchmark's prompt: the inputs' token ids, or ``prompt_len`` ids (the inputs' ids
    repeated, then cut), so a long-prompt figure needs no other tokenizer run."""
    if not prompt_len:
        return input_ids
    repeats = -(-prompt_len // input_ids.shape[1])
    return input_ids.repeat(1, repeats)[:, :prompt_len].contiguous()


def llm_figures(loaded: LoadedModel, inputs: dict, settings: BenchmarkSettings, batch_size: int) -> dict:
    """Prefill and decode timed apart, at one batch size (inputs already on the device).

    ``ttft_ms``: p50 of the prompt's forward pass with its first greedy token, measured as
    any forward (first call, warm-up, timed runs until ``min_runs`` and ``min_seconds``, within
    ``max_runs`` and ``max_seconds``). ``decode_ms_per_token``:
    p50 over ``new_tokens`` single-token steps from the KV cache, each synchronised;
    ``decode_tokens_per_s`` = batch_size tokens per step / that p50. A prefill over the budget
    gives ``ttft_ms`` null and ``reason`` (for the row's reason)."""
    import torch

    adapter, model = loaded.adapter, loaded.model
    ids = prompt_ids(inputs["input_ids"], settings.prompt_len)
    new_tokens = settings.new_tokens
    with torch.inference_mode():
        prefill, _ = (
            measure(  # the prefill's raw times stay out of benchmark_samples.csv (its timed rows are the forward's)
                lambda: adapter.prefill(model, ids),
                loaded.device,
                batch_size,
                **settings.measure_options(),
            )
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
        # A prefill that could not be timed twice within max_seconds has no p50: null, and why.
        "ttft_ms": prefill.get("p50_ms"),
        "decode_ms_per_token": per_token,
        "decode_tokens_per_s": batch_size * 1000.0 / per_token,
    }
    if prefill["status"] != "ok":
        figures["reason"] = f"time to first token: {prefill['reason']}"
        log.warning("batch %d: no time to first token: %s", batch_size, prefill["reason"])
    log.info(
        "batch %d: prompt %d tokens, time to first token p50 %s ms (%d runs); "
        "%d new tokens, decode p50 %.3f ms/token, %.1f tokens/s",
        batch_size,
        figures["prompt_len"],
        "n/a" if figures["ttft_ms"] is None else f"{figures['ttft_ms']:.3f}",
        prefill["runs"],
        new_tokens,
        per_token,
        figures["decode_tokens_per_s"],
    )
    return figures
