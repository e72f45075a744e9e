"""The make_inputs stage: a model's batch-1 input tensors, as .npy files with an index.json
(the same format as every dump, ``role: inputs``), made on the host from the adapter's
recipe and the run's seed."""

from __future__ import annotations

import logging
from pathlib import Path

from npu_adapt.adapters import get_adapter
from npu_adapt.config_types import ModelEntry
from npu_adapt.io import dump_tensors, read_json, write_json
from npu_adapt.jobs import ModelBlocked, check_upstream, disk_step, model_step
from npu_adapt.weights import verified_dir

log = logging.getLogger("npu_adapt")


def dump_inputs(model: str, entry: ModelEntry, manifest_path: str, index_path: str, seed: int, repo: Path) -> dict:
    """Write the inputs of ``model`` beside ``index_path`` and the index itself; a model whose
    weights are blocked, or whose inputs cannot be made, gets ``status: blocked`` and the
    reason in the index instead. Returns the index."""
    manifest = read_json(manifest_path)
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
        adapter = get_adapter(entry, repo)
        with model_step("make_inputs"):
            arrays = adapter.make_inputs(verified_dir(manifest), seed)
        with disk_step("writing the inputs"):
            index["tensors"] = dump_tensors(Path(index_path).parent, arrays)
        log.info("%s inputs: %s", model, {t["name"]: t["shape"] for t in index["tensors"]})
    except ModelBlocked as blocked:
        index.update(status=blocked.status, reason=str(blocked))
        log.error("%s blocked: %s", model, blocked)
    write_json(index_path, index)
    return index
