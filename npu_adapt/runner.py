"""Running one model on one device: load the weights once, place model and inputs, forward.

Used by the dump and benchmark jobs, so the reference, the target and the benchmark run the
exact same code path, differing only in device and dtype.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from npu_adapt import devices
from npu_adapt.adapters import Adapter, get_adapter
from npu_adapt.jobs import model_step
from npu_adapt.weights import verified_dir

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry

log = logging.getLogger("npu_adapt")


class LoadedModel:
    """A model placed on a device in a dtype, with its adapter."""

    def __init__(self, entry: ModelEntry, manifest: dict, device: str, dtype: str, base_dir: Path = Path(".")):
        self.adapter: Adapter = get_adapter(entry, base_dir)
        self.device = device
        self.dtype = dtype
        with model_step("load"):
            # Never load weights that changed after fetch_weights hashed them (cheap: a stat per file).
            weights_dir = verified_dir(manifest)
            # The family's code first (seconds of imports), so the log times the build alone.
            imports_started = time.perf_counter()
            self.adapter.import_code(weights_dir)
            started = time.perf_counter()
            model = self.adapter.load(weights_dir)
            self.params = self.adapter.count_params(model)
            self.model = model.to(device=device, dtype=devices.torch_dtype(dtype)).eval()
        # One line per build from the weights (bench/workflow_overhead.py counts them per job).
        log.info(
            "built %s from its weights in %s: %d params, %s on %s, in %.2f s"
            " (imports of %s and the model code before it: %.2f s)",
            manifest.get("model"),
            weights_dir,
            self.params,
            dtype,
            device,
            time.perf_counter() - started,
            "+".join(self.adapter.libraries),
            started - imports_started,
        )

    def place_inputs(self, arrays: dict[str, np.ndarray], batch_size: int = 1) -> dict:
        """Inputs on the device: float tensors in the model's dtype, integer ids unchanged;
        batch-1 arrays are repeated along the batch axis for larger batches."""
        import torch

        placed = {}
        for name, array in arrays.items():
            tensor = torch.from_numpy(np.repeat(np.asarray(array), batch_size, axis=0))
            if tensor.is_floating_point():
                tensor = tensor.to(devices.torch_dtype(self.dtype))
            placed[name] = tensor.to(self.device)
        return placed

    def forward(self, inputs: dict) -> dict:
        import torch

        with model_step("forward"), torch.inference_mode():
            return self.adapter.run(self.model, inputs)
