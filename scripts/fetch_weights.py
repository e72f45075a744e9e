"""fetch_weights: make a model's weights available locally, verified, and write their manifest."""

from pathlib import Path

from npu_adapt.config_types import DownloadSettings, ModelEntry
from npu_adapt.io import write_json
from npu_adapt.jobs import start_job
from npu_adapt.weights import fetch
from npu_adapt.weights.download import log_clients_to


def main(smk):
    log = start_job(smk.log[0])
    log_clients_to(log.handlers)  # the download clients' warnings (resumed transfers, retries)
    model = smk.wildcards.model
    entry = ModelEntry.from_param(smk.params.model)
    manifest = fetch(
        model,
        entry,
        weights_root=Path(smk.params.weights_dir),
        settings=DownloadSettings.from_param(smk.params.download),
        seed=smk.params.seed,
        base_dir=Path(smk.scriptdir).parent,
    )
    write_json(smk.output.manifest, manifest)
    log.info(
        "%s: pretrained=%s status=%s %s", model, manifest["pretrained"], manifest["status"], manifest["reason"] or ""
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
