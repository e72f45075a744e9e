"""Everything device-specific lives in this package: detection, ``import torch_npu``,
synchronisation, peak-memory queries, device names and the environment report.

No other file in npu-adapt says ``torch.npu`` or ``torch.cuda``. The rest of the code talks
about devices as plain strings: ``"npu"``, ``"cuda"``, ``"cpu"`` (optionally ``"npu:1"``).

Modules: ``detect`` (kinds, ``auto``, device counts and nodes; torch only inside the calls
that ask the runtime), ``pool`` (one device per job; torch-free), ``runtime`` (dtypes,
precision modes, synchronisation, clocks, memory, out-of-memory), ``report`` (env.json).
Importing this package loads no torch (the Snakefile does, at parse time). The NPU branch
cannot run without CANN: tests reach it through npu_adapt.seams and stand-ins.
"""

from __future__ import annotations

from npu_adapt.devices.detect import (
    KINDS,
    VISIBLE_DEVICES_ENV,
    DeviceUnavailable,
    accelerator_kind,
    device_count,
    device_ids,
    is_available,
    kind_of,
    resolve,
    why_unavailable,
)
from npu_adapt.devices.pool import LOCK_DIR_ENV, acquire_device, lock_dir
from npu_adapt.devices.report import cpu_governor, cpu_model_name, device_name, environment_report, load_average
from npu_adapt.devices.runtime import (
    PRECISIONS,
    DeviceClock,
    DeviceOutOfMemory,
    apply_precision,
    check_fake_oom,
    empty_cache,
    is_out_of_memory,
    limit_memory,
    npu_precision_modes,
    peak_device_mem_mb,
    peak_host_rss_mb,
    precision_modes,
    reset_peak_host_rss,
    reset_peak_memory,
    runs_asynchronously,
    set_npu_strict,
    synchronize,
    torch_dtype,
)

__all__ = [
    "KINDS",
    "LOCK_DIR_ENV",
    "PRECISIONS",
    "VISIBLE_DEVICES_ENV",
    "DeviceClock",
    "DeviceOutOfMemory",
    "DeviceUnavailable",
    "accelerator_kind",
    "acquire_device",
    "apply_precision",
    "check_fake_oom",
    "cpu_governor",
    "cpu_model_name",
    "device_count",
    "device_ids",
    "device_name",
    "empty_cache",
    "environment_report",
    "is_available",
    "is_out_of_memory",
    "kind_of",
    "limit_memory",
    "load_average",
    "lock_dir",
    "npu_precision_modes",
    "peak_device_mem_mb",
    "peak_host_rss_mb",
    "precision_modes",
    "reset_peak_host_rss",
    "reset_peak_memory",
    "resolve",
    "runs_asynchronously",
    "set_npu_strict",
    "synchronize",
    "torch_dtype",
    "why_unavailable",
]
