"""all: the run manifest, every artifact of the run with its sha256."""

import datetime
from pathlib import Path

from npu_adapt.io import sha256_file, write_json
from npu_adapt.jobs import setup_logging


def main(smk):
    log = setup_logging(smk.log[0])
    artifacts = sorted(
        {path for path in Path("results").rglob("*") if path.is_file() and path != Path(smk.output.manifest)}
    )
    manifest = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "artifacts": [
            {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)} for path in artifacts
        ],
    }
    write_json(smk.output.manifest, manifest)
    log.info("%d artifacts in results/", len(artifacts))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
