"""The dump stage: run a model once on its inputs and dump every output (the reference, a
target, or the CPU same-dtype yardstick of the error budget).

The three differ only in the device and dtype they are given. With ``layers: stats |
tensors`` (or ``auto`` on a big model) the same forward pass also records every leaf module's
and torch API call's result beside the dump (npu_adapt.layers); that index.json is written in
every case (``mode: null`` and the reason when nothing is captured). The yardstick has no
layer output: it only measures an error.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path

from npu_adapt import devices
from npu_adapt.config_types import ModelEntry, Placement
from npu_adapt.io import dump_tensors, load_tensors, read_json, to_numpy, write_json
from npu_adapt.jobs import ModelBlocked, check_upstream, disk_step, model_step
from npu_adapt.layers import (
    LayerCapture,
    apply_test_perturbation,
    clear_dump,
    resolve_mode,
    scope,
    size_refusal,
    write_layer_index,
)
from npu_adapt.runner import LoadedModel

log = logging.getLogger("npu_adapt")


def dump_model(
    model: str,
    role: str,
    entry: ModelEntry,
    placement: Placement,
    manifest_path: str,
    inputs_path: str,
    index_path: str,
    layers_index: str | None,
    repo: Path,
) -> dict:
    """Run ``model`` once on its inputs as ``role`` (reference, target, cpu-same-dtype) and
    write the dump's index.json at ``index_path``, with the layer capture's index at
    ``layers_index`` (None: no capture, the yardstick). A stage that cannot be gone through
    is recorded in the index (``status: blocked`` and the reason), never raised. Returns the
    index."""
    manifest = read_json(manifest_path)
    inputs_index = read_json(inputs_path)
    layer_directory = Path(layers_index).parent if layers_index else None
    layer_scope = scope(entry) if layer_directory else None  # the yardstick's slice has no layer keys
    clear_dump(layer_directory)  # a previous run's rows must never be compared with this one's
    capture = None
    layer = {"mode": None, "mode_reason": None, "status": None, "reason": None, "estimated_bytes": None}
    index = {
        "model": model,
        "role": role,
        "device": placement.device,
        "requested_device": placement.device,  # recorded also when the device cannot be had
        "device_name": None,
        "dtype": placement.dtype,
        "status": "ok",
        "reason": None,
        "tensors": [],
    }
    # What the model computed in (the .npy of a bfloat16 output stores it widened to float32).
    index.update(compute_dtype=placement.dtype, precision=placement.precision, precision_modes=None)
    try:
        check_upstream(weights=manifest, inputs=inputs_index)
        # A device of this job's own (several jobs share the machine's devices); taken
        # before anything starts the device runtime, or the visibility would not apply.
        with devices.acquire_device(devices.accelerator_kind(placement.device)) as device_index:
            index["device_index"] = device_index
            with model_step("device"):
                device = devices.resolve(placement.device)
            index.update(device=device, device_name=devices.device_name(device))
            devices.apply_precision(devices.kind_of(device), index["precision"])
            index["precision_modes"] = devices.precision_modes(devices.kind_of(device))
            log.info("%s %s on %s (%s), %s", model, role, device, index["device_name"], placement.dtype)
            loaded = LoadedModel(entry, manifest, device, placement.dtype, repo)  # logs the build
            if perturbation := apply_test_perturbation(loaded.model, role):
                index["test_perturbation"] = perturbation
                log.warning("TEST SEAM: target output perturbed (%s)", perturbation)
            with model_step("inputs"):  # checked against their recorded sha256 first
                inputs = loaded.place_inputs(load_tensors(inputs_path))
            capture = layer_capture(loaded, inputs, entry, layer_scope, layer_directory, layer)
            started = time.perf_counter()
            with capture or nullcontext():
                outputs = loaded.forward(inputs)
                devices.synchronize(device)
            index["forward_seconds"] = time.perf_counter() - started
            index["layers_captured"] = capture.mode if capture else None  # capture time is inside forward_seconds
            index["params"] = loaded.params
            arrays = {name: to_numpy(tensor) for name, tensor in outputs.items()}
            with disk_step(f"writing the {role} dump"):
                index["tensors"] = dump_tensors(Path(index_path).parent, arrays, loaded.adapter.output_kinds())
            for tensor in index["tensors"]:  # integer outputs (token ids) are what they store
                tensor["compute_dtype"] = placement.dtype if tensor["dtype"].startswith("float") else tensor["dtype"]
            log.info(
                "forward %.3f s; outputs %s",
                index["forward_seconds"],
                {t["name"]: t["shape"] for t in index["tensors"]},
            )
    except ModelBlocked as blocked:
        index.update(status=blocked.status, reason=str(blocked))
        log.error("%s %s blocked: %s", model, role, blocked)
    entries = capture.entries if capture and index["status"] == "ok" else []
    if not entries:
        clear_dump(layer_directory)  # what a blocked forward left half-written
    if layer_directory:
        header = {key: value for key, value in index.items() if key != "tensors"}
        if index["status"] == "ok" and layer["status"] == "blocked":
            header.update(status="blocked", reason=layer["reason"])
        header.update(mode=layer["mode"], mode_reason=layer["mode_reason"], estimated_bytes=layer["estimated_bytes"])
        header.update(bytes=capture.bytes if capture else 0, layer_pattern=layer_scope["pattern"])
        header.update(layer_kinds=list(layer_scope["kinds"]), layer_inputs=layer_scope["inputs"])
        write_layer_index(layer_directory, header, entries)
        log.info("layer dump (%s): %d rows in %s", layer["mode"] or layer["mode_reason"], len(entries), layer_directory)
    write_json(index_path, index)
    return index


def layer_capture(loaded, inputs, entry, layer_scope, directory, layer):
    """The capture this model asks for (None for none), after the size guard: a tensors
    capture first runs one forward recording shapes only, and is refused beyond
    layers_max_bytes (the model's own outputs are dumped all the same)."""
    if directory is None:
        layer["mode_reason"] = "no layer capture for this run (the error budget's CPU same-dtype yardstick)"
        return None
    mode, layer["mode_reason"] = resolve_mode(entry, loaded.params)
    if mode == "tensors":
        with LayerCapture(loaded.model, None, "shapes", **layer_scope) as probe:
            loaded.forward(inputs)
        layer["estimated_bytes"] = probe.bytes
        log.info("layers: tensors: %d rows, an estimated %d bytes", len(probe.entries), probe.bytes)
        if refusal := size_refusal(probe.bytes, entry):
            layer.update(
                status="blocked", reason=refusal, mode_reason=f"{layer['mode_reason']}; refused by the size guard"
            )
            log.warning("%s", refusal)
            return None
    layer["mode"] = mode
    if mode is None:
        log.info("%s", layer["mode_reason"])
        return None
    capture = LayerCapture(loaded.model, directory, mode, **layer_scope)
    apis = " and torch API calls" if "api" in layer_scope["kinds"] else ""
    log.info(
        "layers: %s: capturing %d leaf modules%s (scope %s) into %s",
        mode,
        len(capture.modules()),
        apis,
        layer_scope,
        directory,
    )
    return capture
