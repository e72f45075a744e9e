"""benchmark: latency, throughput and peak memory per batch size on the target device, with
the raw per-call times."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.benchmark import LLM_KEYS, ROW_KEYS, SAMPLE_COLUMNS, run_benchmark
from npu_adapt.config_types import BenchmarkSettings, ModelEntry, Placement
from npu_adapt.io import load_tensors, read_json, write_csv, write_json
from npu_adapt.jobs import setup_logging
from npu_adapt.plots import benchmark_plot

# reason last: it is the long free-text column.
CSV_COLUMNS = [key for key in ROW_KEYS if key != "reason"] + ["reason"]


def main(smk):
    setup_logging(smk.log[0])
    integrity.configure(smk.config)
    model = smk.wildcards.model
    placement = Placement.from_param(smk.params.placement)
    result, samples = run_benchmark(
        model,
        ModelEntry.from_param(smk.params.model),
        read_json(smk.input.manifest),
        lambda: load_tensors(smk.input.inputs),
        placement,
        BenchmarkSettings.from_param(smk.params.settings),
        Path(smk.scriptdir).parent,
        target=read_json(smk.input.target),
        job_cores=smk.threads,
    )
    result["samples_file"] = smk.output.samples
    result["target_name"] = smk.wildcards.target
    write_json(smk.output.json, result)
    llm = any(row.get("ttft_ms") is not None for row in result["results"])
    write_csv(
        smk.output.csv, result["results"], CSV_COLUMNS[:-1] + list(LLM_KEYS) + CSV_COLUMNS[-1:] if llm else CSV_COLUMNS
    )
    write_csv(smk.output.samples, samples, list(SAMPLE_COLUMNS))
    title = f"{model} [{smk.wildcards.target}] on {result['device_name'] or result['device']} ({placement.dtype})"
    if result["status"] == "blocked":
        title += " - blocked"
    benchmark_plot(result["results"], title, smk.output.plot, baseline=result["baseline"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
