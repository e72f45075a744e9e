"""Layer inspection (``layers: stats | tensors``): localise a divergence to the first module
or torch API call whose result crosses the accuracy threshold, as Ascend's own compare tools
(msprobe) do, at a cost that fits real models.

- capture.py: what one forward pass records (module and API rows; tensors, statistics or
  shapes);
- settings.py: a model's ``layers*`` keys (mode, scope, the size guard);
- localise.py: the row-by-row comparison and the first divergence;
- msprobe.py: a run's layer dumps in msprobe's dump.json layout.

Files: ``results/{model}/layers/reference/index.json`` and
``results/{model}/{target}/layers/dump/index.json`` (declared outputs of the dump rules; with
``tensors`` one ``{order:05d}_{name}.npy`` per row beside it) and
``results/{model}/{target}/layers/compare.json`` / ``compare.csv``.
"""

from __future__ import annotations

from npu_adapt import seams
from npu_adapt.layers.capture import (
    KINDS,
    MODES,
    LayerCapture,
    clear_dump,
    tensor_statistics,
)
from npu_adapt.layers.localise import (
    STATS_COLUMNS,
    TENSOR_COLUMNS,
    columns,
    compare_layers,
    layer_summary,
    write_layer_index,
)
from npu_adapt.layers.settings import resolve_mode, scope, size_refusal

__all__ = [
    "KINDS",
    "MODES",
    "STATS_COLUMNS",
    "TENSOR_COLUMNS",
    "LayerCapture",
    "apply_test_perturbation",
    "clear_dump",
    "columns",
    "compare_layers",
    "layer_summary",
    "resolve_mode",
    "scope",
    "size_refusal",
    "tensor_statistics",
    "write_layer_index",
]


def apply_test_perturbation(model, role: str) -> str | None:
    """The test seam npu_adapt.seams.PERTURB_LAYER ("MODULE:SCALE" scales MODULE's output in
    the *target* dump): returns the perturbation applied, or None. It is written into the
    target's index.json ("test_perturbation") and compare.json; never set it in a real run."""
    spec = seams.perturbed_layer()
    if not spec or role != "target":
        return None
    name, _, scale = spec.rpartition(":")
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"{seams.PERTURB_LAYER}={spec}: the model has no module {name!r}")
    factor = float(scale)

    def perturb(module, args, output):
        import torch

        with torch._C.DisableTorchFunction():  # unseen by the API capture: no extra row in the target
            return output * factor

    modules[name].register_forward_hook(perturb)
    return spec
