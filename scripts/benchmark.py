"""benchmark: latency, throughput and peak memory per batch size on the target device, with
the raw per-call times and the plot (npu_adapt.benchmark_stage)."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.benchmark_stage import benchmark_target
from npu_adapt.config_types import BenchmarkSettings, ModelEntry, Placement
from npu_adapt.jobs import start_job


def main(smk):
    start_job(smk.log[0])
    integrity.configure(smk.config)  # the inputs are checked against their sha256 before use
    benchmark_target(
        smk.wildcards.model,
        smk.wildcards.target,
        ModelEntry.from_param(smk.params.model),
        Placement.from_param(smk.params.placement),
        BenchmarkSettings.from_param(smk.params.settings),
        {name: Path(getattr(smk.input, name)) for name in ("manifest", "inputs", "target")},
        {name: Path(getattr(smk.output, name)) for name in ("json", "csv", "samples", "plot")},
        Path(smk.scriptdir).parent,
        job_cores=smk.threads,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
