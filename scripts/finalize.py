"""all: the run manifest, every artifact of the run with its sha256 (npu_adapt.io)."""

from pathlib import Path

from npu_adapt.io import write_run_manifest
from npu_adapt.jobs import start_job


def main(smk):
    log = start_job(smk.log[0])
    count = write_run_manifest(Path("results"), Path(smk.output.manifest))
    log.info("%d artifacts in results/", count)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
