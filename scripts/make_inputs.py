"""make_inputs: the batch-1 input tensors of a model, as .npy files with an index."""

import json
from pathlib import Path

from npu_adapt.adapters import get_adapter
from npu_adapt.io import dump_tensors, read_json, write_json
from npu_adapt.jobs import ModelBlocked, model_step, setup_logging, upstream_reason
from npu_adapt.weights import verified_dir


def main(smk):
    log = setup_logging(smk.log[0])
    model = smk.wildcards.model
    entry = json.loads(smk.params.model)
    manifest = read_json(smk.input.manifest)
    index = {"model": model, "role": "inputs", "device": "cpu", "device_name": "host", "dtype": None, "status": "ok", "reason": None, "tensors": []}
    try:
        if reason := upstream_reason(weights=manifest):
            raise ModelBlocked(reason)
        adapter = get_adapter(entry, Path(smk.scriptdir).parent)
        with model_step("make_inputs"):
            arrays = adapter.make_inputs(verified_dir(manifest), smk.params.seed)
        index["tensors"] = dump_tensors(Path(smk.output.index).parent, arrays)
        log.info("%s inputs: %s", model, {t["name"]: t["shape"] for t in index["tensors"]})
    except ModelBlocked as blocked:
        index.update(status="blocked", reason=str(blocked))
        log.error("%s blocked: %s", model, blocked)
    write_json(smk.output.index, index)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
