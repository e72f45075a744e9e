"""dump_reference / dump_target: run the model once on the inputs and dump every output.

The same script serves both rules (``params.role``), so reference and target differ only
in the device and dtype they are given. With ``layers: true`` the same forward pass also
saves every leaf module's output under ``results/{model}/layers/{role}/`` (npu_adapt.layers).
"""

import json
import time
from contextlib import nullcontext
from pathlib import Path

from npu_adapt import devices, integrity
from npu_adapt.io import dump_tensors, load_tensors, read_json, to_numpy, write_json
from npu_adapt.jobs import ModelBlocked, check_upstream, disk_step, model_step, setup_logging
from npu_adapt.layers import LayerCapture, apply_test_perturbation, clear_dump, layers_dir, write_layer_index
from npu_adapt.runner import LoadedModel


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)
    model = smk.wildcards.model
    role = smk.params.role
    entry = json.loads(smk.params.model)
    placement = json.loads(smk.params.placement)
    manifest = read_json(smk.input.manifest)
    inputs_index = read_json(smk.input.inputs)
    capture_layers = entry.get("layers", False)
    pattern = entry.get("layer_pattern")
    layer_directory = layers_dir(Path(smk.output.index).parent.parent, role)
    clear_dump(layer_directory)  # a previous run's modules must never be compared with this one's
    capture = None
    index = {"model": model, "role": role, "device": placement["device"], "device_name": None, "dtype": placement["dtype"], "status": "ok", "reason": None, "tensors": []}
    try:
        check_upstream(weights=manifest, inputs=inputs_index)
        # A device of this job's own (several jobs share the machine's devices); taken
        # before anything starts the device runtime, or the visibility would not apply.
        with devices.acquire_device(devices.accelerator_kind(placement["device"])) as device_index:
            index["device_index"] = device_index
            with model_step("device"):
                device = devices.resolve(placement["device"])
            index.update(device=device, device_name=devices.device_name(device), requested_device=placement["device"])
            log.info("%s %s on %s (%s), %s", model, role, device, index["device_name"], placement["dtype"])
            loaded = LoadedModel(entry, manifest, device, placement["dtype"], Path(smk.scriptdir).parent)  # logs the build
            if perturbation := apply_test_perturbation(loaded.model, role):
                index["test_perturbation"] = perturbation
                log.warning("TEST SEAM: target output perturbed (%s)", perturbation)
            with model_step("inputs"):  # checked against their recorded sha256 first
                inputs = loaded.place_inputs(load_tensors(smk.input.inputs))
            if capture_layers:
                capture = LayerCapture(loaded.model, layer_directory, pattern)
                log.info("capturing %d leaf modules (pattern %s) into %s", len(capture.modules()), pattern, layer_directory)
            started = time.perf_counter()
            with capture or nullcontext():
                outputs = loaded.forward(inputs)
                devices.synchronize(device)
            index["forward_seconds"] = time.perf_counter() - started
            index["layers_captured"] = bool(capture_layers)  # capture time is inside forward_seconds
            index["params"] = loaded.params
            arrays = {name: to_numpy(tensor) for name, tensor in outputs.items()}
            with disk_step(f"writing the {role} dump"):
                index["tensors"] = dump_tensors(Path(smk.output.index).parent, arrays, loaded.adapter.output_kinds())
            log.info("forward %.3f s; outputs %s", index["forward_seconds"], {t["name"]: t["shape"] for t in index["tensors"]})
    except ModelBlocked as blocked:
        index.update(status=blocked.status, reason=str(blocked))
        log.error("%s %s blocked: %s", model, role, blocked)
    if capture_layers:
        entries = capture.entries if capture and index["status"] == "ok" else []
        if not entries:
            clear_dump(layer_directory)  # what a blocked forward left half-written
        header = {key: value for key, value in index.items() if key != "tensors"}
        write_layer_index(layer_directory, header, entries, pattern)
        log.info("layer dump: %d tensors in %s", len(entries), layer_directory)
    write_json(smk.output.index, index)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
