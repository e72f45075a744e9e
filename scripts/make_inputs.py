"""make_inputs: the batch-1 input tensors of a model, as .npy files with an index."""

from pathlib import Path

from npu_adapt import integrity
from npu_adapt.adapters import get_adapter
from npu_adapt.config_types import ModelEntry
from npu_adapt.io import dump_tensors, read_json, write_json
from npu_adapt.jobs import ModelBlocked, check_upstream, disk_step, model_step, setup_logging
from npu_adapt.weights import verified_dir


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)
    model = smk.wildcards.model
    entry = ModelEntry.from_param(smk.params.model)
    manifest = read_json(smk.input.manifest)
    index = {
        "model": model,
        "role": "inputs",
        "device": "cpu",
        "device_name": "host",
        "dtype": None,
        "status": "ok",
        "reason": None,
        "tensors": [],
    }
    try:
        check_upstream(weights=manifest)
        adapter = get_adapter(entry, Path(smk.scriptdir).parent)
        with model_step("make_inputs"):
            arrays = adapter.make_inputs(verified_dir(manifest), smk.params.seed)
        with disk_step("writing the inputs"):
            index["tensors"] = dump_tensors(Path(smk.output.index).parent, arrays)
        log.info("%s inputs: %s", model, {t["name"]: t["shape"] for t in index["tensors"]})
    except ModelBlocked as blocked:
        index.update(status=blocked.status, reason=str(blocked))
        log.error("%s blocked: %s", model, blocked)
    write_json(smk.output.index, index)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
