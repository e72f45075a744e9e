"""The benchmark stage: one target's benchmark (npu_adapt.benchmark) written as
benchmark.json, benchmark.csv (one row per batch size), benchmark_samples.csv (the raw
per-call times) and the latency/throughput plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from npu_adapt.benchmark import LLM_KEYS, ROW_KEYS, SAMPLE_COLUMNS, run_benchmark
from npu_adapt.io import load_tensors, read_json, write_csv, write_json
from npu_adapt.plots import benchmark_plot

if TYPE_CHECKING:
    from npu_adapt.config_types import BenchmarkSettings, ModelEntry, Placement


def csv_columns(rows: list[dict]) -> list[str]:
    """benchmark.csv's columns: the row keys, the LLM figures when a row has them (any of them:
    a prefill over the budget has no ttft_ms but a decode speed), and the reason last (the long
    free-text column)."""
    columns = [key for key in ROW_KEYS if key != "reason"]
    if any(row.get(key) is not None for row in rows for key in LLM_KEYS):
        columns += LLM_KEYS
    return [*columns, "reason"]


def write_benchmark(result: dict, samples: list[dict], json_path: Path, csv_path: Path, samples_path: Path) -> None:
    """benchmark.json, benchmark.csv and benchmark_samples.csv of one benchmark."""
    write_json(json_path, result)
    write_csv(csv_path, result["results"], csv_columns(result["results"]))
    write_csv(samples_path, samples, list(SAMPLE_COLUMNS))


def benchmark_target(
    model: str,
    target_name: str,
    entry: ModelEntry,
    placement: Placement,
    settings: BenchmarkSettings,
    documents: dict[str, Path],
    outputs: dict[str, Path],
    repo: Path,
    job_cores: int | None = None,
) -> dict:
    """Benchmark ``model`` on one target (``target_name``, ``placement``) and write ``outputs``
    (``json``, ``csv``, ``samples``, ``plot``). ``documents``: the ``manifest`` of its weights,
    the ``inputs`` index and the ``target`` dump's index. Returns benchmark.json's content."""
    result, samples = run_benchmark(
        model,
        entry,
        read_json(documents["manifest"]),
        lambda: load_tensors(documents["inputs"]),
        placement,
        settings,
        repo,
        target=read_json(documents["target"]),
        job_cores=job_cores,
    )
    result["samples_file"] = str(outputs["samples"])
    result["target_name"] = target_name
    write_benchmark(result, samples, outputs["json"], outputs["csv"], outputs["samples"])
    title = f"{model} [{target_name}] on {result['device_name'] or result['device']} ({placement.dtype})"
    if result["status"] == "blocked":
        title += " - blocked"
    benchmark_plot(result["results"], title, outputs["plot"], baseline=result["baseline"])
    return result
