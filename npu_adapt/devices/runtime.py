"""What a job does with its device once it runs: dtypes, float32 precision modes,
synchronisation, timing events, peak memory and out-of-memory errors."""

from __future__ import annotations

import logging
import resource
import sys
import time

from npu_adapt import seams
from npu_adapt.devices.detect import kind_of, lazy_torch, torch_npu_error

log = logging.getLogger("npu_adapt")


class DeviceOutOfMemory(RuntimeError):
    """The device ran out of memory (normalised across CPU, CUDA and NPU)."""


def torch_dtype(name: str):
    torch = lazy_torch()
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


# ---------------------------------------------------------------------------- precision modes
# float32 on an accelerator is not always float32: CUDA runs float32 convolutions in TF32 by
# default (cudnn.allow_tf32), torch_npu runs them in HF32 (npu.conv.allow_hf32); both keep a
# 10-bit mantissa. The dumps record these flags (index.json precision_modes), the comparison
# picks its default criteria from them, and `target.precision: strict` turns them off.

PRECISIONS = ("default", "strict")


def npu_precision_modes(npu) -> dict:
    """torch_npu's flags, read from its backend module (``torch.npu``; a seam: tests pass a
    stand-in, since torch_npu cannot be imported without CANN). A flag this torch_npu
    version does not have is null."""

    def flag(read):
        try:
            return read()
        except (AttributeError, RuntimeError):
            return None

    return {
        "matmul_allow_hf32": flag(lambda: bool(npu.matmul.allow_hf32)),
        "conv_allow_hf32": flag(lambda: bool(npu.conv.allow_hf32)),
        "jit_compile": flag(lambda: not bool(npu.is_jit_compile_false())),
        "allow_internal_format": flag(lambda: bool(npu.config.allow_internal_format)),
    }


def set_npu_strict(npu) -> None:
    """HF32 off for matmul and convolution (``torch.npu``, or a stand-in in tests)."""
    npu.matmul.allow_hf32 = False
    npu.conv.allow_hf32 = False


def precision_modes(kind: str) -> dict:
    """The float32 precision modes in effect in this process for a device ``kind``:
    torch's float32 matmul precision, CUDA/cuDNN TF32 flags, torch_npu's HF32, jit_compile
    and internal-format settings (null with the reason where torch_npu is absent), and
    ``reduced_float32``: whether float32 matmuls/convolutions on ``kind`` may run with a
    10-bit mantissa."""
    torch = lazy_torch()
    modes = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
    npu_error = torch_npu_error()
    if npu_error is None:
        modes["npu"], modes["npu_reason"] = npu_precision_modes(torch.npu), None
    else:
        modes["npu"], modes["npu_reason"] = None, npu_error
    reduced = modes["float32_matmul_precision"] != "highest"
    if kind == "cuda":
        reduced = reduced or modes["cuda_matmul_allow_tf32"] or modes["cudnn_allow_tf32"]
    elif kind == "npu" and modes["npu"]:
        reduced = reduced or bool(modes["npu"]["matmul_allow_hf32"] or modes["npu"]["conv_allow_hf32"])
    modes["reduced_float32"] = bool(reduced)
    return modes


def apply_precision(kind: str, precision: str) -> None:
    """``default`` leaves the device's own modes; ``strict`` makes float32 mean float32
    (TF32/HF32 off, float32 matmul precision "highest")."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    if precision == "default":
        return
    torch = lazy_torch()
    torch.set_float32_matmul_precision("highest")
    if kind == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif kind == "npu" and torch_npu_error() is None:
        set_npu_strict(torch.npu)
    log.info("precision strict: float32 without TF32/HF32 on %s", kind)


def synchronize(device: str) -> None:
    kind = kind_of(device)
    if kind == "cpu":
        return
    getattr(lazy_torch(), kind).synchronize()


def runs_asynchronously(device: str) -> bool:
    """Whether calls on ``device`` return before the device has done the work (NPU, CUDA):
    latency then needs a synchronisation per call, and throughput is measured separately
    over back-to-back calls with one synchronisation at the end."""
    return kind_of(device) != "cpu"


class DeviceClock:
    """Times the device work queued between :meth:`start` and :meth:`stop`: with the
    device's timing events where its module offers them (``torch.npu.Event``,
    ``torch.cuda.Event``), else with the host clock after a synchronisation. ``kind`` says
    which (``npu_events``, ``cuda_events``, ``host_clock``)."""

    def __init__(self, device: str):
        self.device = device
        kind = kind_of(device)
        event = getattr(getattr(lazy_torch(), kind), "Event", None) if kind != "cpu" else None
        self._events = (event(enable_timing=True), event(enable_timing=True)) if event is not None else None
        self.kind = f"{kind}_events" if self._events else "host_clock"
        self._started = 0.0

    def start(self) -> None:
        synchronize(self.device)  # nothing queued earlier inside the interval
        if self._events:
            self._events[0].record()
        else:
            self._started = time.perf_counter()

    def stop(self) -> float:
        """Milliseconds since :meth:`start`, after one synchronisation."""
        if self._events:
            self._events[1].record()
            synchronize(self.device)
            return float(self._events[0].elapsed_time(self._events[1]))
        synchronize(self.device)
        return (time.perf_counter() - self._started) * 1000.0


def peak_host_rss_mb() -> tuple[float | None, str]:
    """The process's peak resident memory in MB since the last :func:`reset_peak_host_rss`,
    and its scope: ``window`` (Linux VmHWM), ``process_lifetime`` (getrusage, where the peak
    cannot be reset). Includes the Python runtime, the libraries and the host copy of the model."""
    high_water_kib = _status_kib("VmHWM")
    if high_water_kib is not None:
        return high_water_kib / 1024, "window"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss * (1 if sys.platform == "darwin" else 1024) / 2**20, "process_lifetime"


def reset_peak_host_rss() -> bool:
    """Start a new window of the process's peak RSS (Linux >= 4.0: VmHWM reset by writing 5
    to /proc/self/clear_refs). False when the platform cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def peak_device_mem_mb(device: str) -> tuple[float | None, str | None]:
    """The device allocator's peak in MB since the last :func:`reset_peak_memory` (tensors
    only, not the allocator's cache), or None and why it is not measured."""
    kind = kind_of(device)
    if kind == "cpu":
        return None, "CPU target: no device memory; see peak_host_rss_mb"
    return getattr(lazy_torch(), kind).max_memory_allocated() / 2**20, None


def reset_peak_memory(device: str) -> bool:
    """Start a new peak-memory window. False when the platform cannot: the peak that
    :func:`peak_device_mem_mb` reports then covers the whole life of the process."""
    kind = kind_of(device)
    if kind == "cpu":
        return reset_peak_host_rss()
    module = getattr(lazy_torch(), kind)
    module.empty_cache()
    module.reset_peak_memory_stats()
    return True


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of /proc/self/status (Linux), or None."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def empty_cache(device: str) -> None:
    kind = kind_of(device)
    if kind != "cpu":
        getattr(lazy_torch(), kind).empty_cache()


def limit_memory(device: str, fraction: float) -> None:
    """Cap this process's allocator on an accelerator at ``fraction`` of the device's memory,
    so that a modest batch size runs genuinely out of memory (checks of the OOM path)."""
    kind = kind_of(device)
    if kind == "cpu":
        raise ValueError("the CPU allocator cannot be capped from inside the process")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    getattr(lazy_torch(), kind).set_per_process_memory_fraction(fraction, index)


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` is an out-of-memory error of any backend."""
    if isinstance(exc, (DeviceOutOfMemory, MemoryError)):
        return True
    torch = lazy_torch()
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    # torch_npu raises RuntimeError with "NPU out of memory"; torch's CPU allocator "can't
    # allocate memory" (Linux) or "not enough memory" (Windows).
    markers = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")
    return isinstance(exc, RuntimeError) and any(marker in text for marker in markers)


def check_fake_oom(batch_size: int) -> None:
    """The test seam npu_adapt.seams.FAKE_OOM_BATCH: the device runs out of memory at large batch sizes."""
    limit = seams.fake_oom_batch()
    if limit is not None and batch_size >= limit:
        raise DeviceOutOfMemory(f"simulated out of memory at batch size {batch_size} ({seams.FAKE_OOM_BATCH}={limit})")
