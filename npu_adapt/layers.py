"""Per-module outputs (``layers: true``): localise a divergence to the first module whose
output crosses the accuracy threshold, as Ascend's own compare tools do.

Capture: a forward hook on every leaf module (optionally only those whose name matches
``layer_pattern``) saves each output as ``.npy`` the moment it is produced, so memory holds
one module's output at a time. Files are named ``{order:05d}_{name}.npy`` (execution order)
under ``results/{model}/layers/{reference,target}/`` and listed in an ``index.json`` there
(the shape of every index.json, plus ``module``, ``call``, ``type`` and ``order``).

Names: a module called more than once per run (shared embeddings, each step of
``generate``) gets ``#1``, ``#2``... for its later calls; a module returning several tensors
gets ``[0]``, ``[1]``... per tensor. Reference and target run the same code on the same
inputs, so the names match one to one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from npu_adapt.compare import compare_indexes, target_criteria_class
from npu_adapt.io import read_json, save_tensor, to_numpy, write_json
from npu_adapt.jobs import upstream_reason
from npu_adapt.metrics import dtype_criteria

LAYER_COLUMNS = [
    "order",
    "name",
    "type",
    "shape",
    "dtype_reference",
    "dtype_target",
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "mean_abs_diff",
    "max_rel_diff",
    "nan_target",
    "inf_target",
    "status",
    "reason",
]

# TEST SEAM (used only by tests/test_accuracy.py): "MODULE:SCALE" multiplies the output of
# the named module by SCALE in the *target* dump, so a test can check that the layer
# comparison names exactly that module as the first divergence. The perturbation is written
# into the target's index.json ("test_perturbation") and compare.json; never set it in a real run.
PERTURB_ENV = "NPU_ADAPT_PERTURB_LAYER"


def layers_dir(model_dir: str | Path, role: str) -> Path:
    """``results/{model}/layers/{role}``, from ``results/{model}``."""
    return Path(model_dir) / "layers" / role


def clear_dump(directory: Path) -> None:
    """Remove a previous run's layer dump (ours only: .npy files and index.json)."""
    if not directory.is_dir():
        return
    for path in directory.glob("*.npy"):
        path.unlink()
    (directory / "index.json").unlink(missing_ok=True)


def apply_test_perturbation(model, role: str) -> str | None:
    """The test seam above: returns the perturbation applied, or None."""
    spec = os.environ.get(PERTURB_ENV)
    if not spec or role != "target":
        return None
    name, _, scale = spec.rpartition(":")
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"{PERTURB_ENV}={spec}: the model has no module {name!r}")
    factor = float(scale)
    modules[name].register_forward_hook(lambda module, args, output: output * factor)
    return spec


def _tensors(output, suffix: str = ""):
    """(suffix, tensor) for every tensor in a module's output (tensor, tuple, list, dict)."""
    import torch

    if isinstance(output, torch.Tensor):
        yield suffix, output
    elif isinstance(output, (tuple, list)):
        for i, item in enumerate(output):
            yield from _tensors(item, f"{suffix}[{i}]")
    elif isinstance(output, dict):
        for key, item in output.items():
            yield from _tensors(item, f"{suffix}[{key}]")


def _file_name(order: int, name: str) -> str:
    return f"{order:05d}_" + re.sub(r"[^A-Za-z0-9._\[\]#-]", "_", name) + ".npy"


class LayerCapture:
    """Context manager: while active, every selected leaf module's output is saved."""

    def __init__(self, model, directory: str | Path, pattern: str | None = None):
        self.model = model
        self.directory = Path(directory)
        self.pattern = re.compile(pattern) if pattern else None
        self.entries: list[dict] = []
        self.calls: dict[str, int] = {}
        self.handles = []

    def modules(self) -> list[tuple[str, object]]:
        """The leaf modules to capture, in registration order."""
        selected = []
        for name, module in self.model.named_modules():
            is_leaf = next(module.children(), None) is None
            if name and is_leaf and (self.pattern is None or self.pattern.search(name)):
                selected.append((name, module))
        return selected

    def __enter__(self) -> LayerCapture:
        clear_dump(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, module in self.modules():
            self.handles.append(module.register_forward_hook(self._hook(name, type(module).__name__)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _hook(self, name: str, type_name: str):
        def save(module, args, output):
            call = self.calls.get(name, 0)
            self.calls[name] = call + 1
            for suffix, tensor in _tensors(output):
                full = (f"{name}#{call}" if call else name) + suffix
                array = to_numpy(tensor)
                order = len(self.entries)
                entry = save_tensor(self.directory / _file_name(order, full), full, array)
                entry.update(module=name, call=call, type=type_name, order=order)
                self.entries.append(entry)

        return save


def write_layer_index(directory: Path, header: dict, entries: list[dict], pattern: str | None) -> None:
    """The layer dump's index.json: the dump's own header (model, role, device, status...)."""
    write_json(directory / "index.json", {**header, "layer_pattern": pattern, "tensors": entries})


def compare_layers(model_dir: str | Path, criteria: dict) -> dict:
    """Every captured module's metrics, in execution order, and the first divergence: the
    first module whose output fails the accuracy criteria (rel_l2, cosine, NaN/Inf; a warn
    is within what the dtype allows and is no divergence)."""
    reference_index = layers_dir(model_dir, "reference") / "index.json"
    target_index = layers_dir(model_dir, "target") / "index.json"
    result = {"status": "ok", "reason": None, "criteria": criteria, "modules": 0, "diverged": 0, "first_divergence": None, "rows": []}
    missing = [str(path) for path in (reference_index, target_index) if not path.is_file()]
    if missing:
        result.update(status="blocked", reason=f"no layer dump: {', '.join(missing)} missing")
        return result
    reference, target = read_json(reference_index), read_json(target_index)
    if reason := upstream_reason(reference=reference, target=target):
        result.update(status="blocked", reason=reason)
        return result
    # The target dump's compute dtype and precision modes pick the defaults, as in compare.json.
    criteria = {**dtype_criteria(target_criteria_class(target)), **criteria}
    result["criteria"] = criteria
    outputs, _ = compare_indexes(reference_index, target_index, criteria)
    described = {t["name"]: t for t in target["tensors"]} | {t["name"]: t for t in reference["tensors"]}
    for order, (name, metrics) in enumerate(outputs.items()):
        info = described[name]
        row = {"order": order, "name": name, "module": info.get("module"), "type": info.get("type"), "shape": info.get("shape"), **metrics}
        result["rows"].append(row)
        if metrics["status"] in ("fail", "error"):
            result["diverged"] += 1
            if result["first_divergence"] is None:
                result["first_divergence"] = {key: row[key] for key in ("order", "name", "module", "type", "rel_l2", "cosine", "max_abs_diff", "reason")}
    result["modules"] = len(result["rows"])
    if result["first_divergence"] is None:
        result["reason"] = "no captured module crosses the threshold" if result["rows"] else "no module captured (check layer_pattern)"
    return result


def layer_summary(layers: dict | None) -> dict:
    """What compare.json says about the layers (the full table is in layers/compare.csv)."""
    if layers is None:
        return {"enabled": False, "first_divergence": None, "reason": "layers: false for this model"}
    return {
        "enabled": True,
        "status": layers["status"],
        "modules": layers["modules"],
        "diverged": layers["diverged"],
        "first_divergence": layers["first_divergence"],
        "reason": layers["reason"],
        "table": "layers/compare.csv",
    }
