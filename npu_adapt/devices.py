"""Everything device-specific lives here: detection, ``import torch_npu``, synchronisation,
peak-memory queries, device names and the environment report.

No other file in npu-adapt says ``torch.npu`` or ``torch.cuda``. The rest of the code talks
about devices as plain strings: ``"npu"``, ``"cuda"``, ``"cpu"`` (optionally ``"npu:1"``).

Seams for tests (the NPU branch cannot run on a machine without CANN):
- ``NPU_ADAPT_FAKE_DEVICE_COUNT=KIND:N`` makes :func:`device_count`, :func:`device_ids` and
  :func:`accelerator_kind` see N devices of KIND (used to test the per-job device pool,
  :func:`acquire_device`, without N real accelerators);
- ``NPU_ADAPT_FAKE_OOM_BATCH=N`` makes :func:`check_fake_oom` raise :class:`DeviceOutOfMemory`
  for batch sizes >= N (used to test the benchmark's out-of-memory path).
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

KINDS = ("npu", "cuda", "cpu")

# Environment variable that restricts the visible devices of each kind, per job.
VISIBLE_DEVICES_ENV = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "cuda": "CUDA_VISIBLE_DEVICES"}

log = logging.getLogger("npu_adapt")


class DeviceOutOfMemory(RuntimeError):
    """The device ran out of memory (normalised across CPU, CUDA and NPU)."""


def _torch():
    import torch

    return torch


@cache
def _import_torch_npu() -> str | None:
    """Import torch_npu (registers the ``npu`` device with torch). Returns the error if any."""
    if importlib.util.find_spec("torch_npu") is None:
        return "torch_npu is not installed"
    try:
        importlib.import_module("torch_npu")
    except Exception as exc:  # CANN missing or mismatched: report, never crash detection
        return f"import torch_npu failed: {type(exc).__name__}: {exc}"
    return None


def kind_of(device: str) -> str:
    """``"npu:1"`` -> ``"npu"``."""
    return device.split(":", 1)[0]


def is_available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "npu":
        if _import_torch_npu() is not None:
            return False
        return bool(_torch().npu.is_available())
    if kind == "cuda":
        return bool(_torch().cuda.is_available())
    raise ValueError(f"unknown device kind {kind!r}; expected one of {KINDS}")


def why_unavailable(kind: str) -> str:
    if kind == "npu":
        return _import_torch_npu() or "torch_npu imported but torch.npu.is_available() is False"
    if kind == "cuda":
        return "torch.cuda.is_available() is False"
    return ""


def resolve(requested: str) -> str:
    """Turn a configured device (``auto``, ``npu``, ``cuda``, ``cpu``) into the kind to use.

    ``auto`` picks npu, then cuda, then cpu. An explicitly requested accelerator that is
    missing raises :class:`DeviceUnavailable` so the job can record it as blocked.
    """
    if requested == "auto":
        return next(kind for kind in KINDS if is_available(kind))
    kind = kind_of(requested)
    if kind not in KINDS:
        raise ValueError(f"unknown device {requested!r}; expected auto or one of {KINDS}")
    if not is_available(kind):
        raise DeviceUnavailable(f"device {requested!r} requested but unavailable: {why_unavailable(kind)}")
    return requested


class DeviceUnavailable(RuntimeError):
    pass


def _fake_device_count(kind: str) -> int | None:
    """The test seam ``NPU_ADAPT_FAKE_DEVICE_COUNT=KIND:N``: N when it names ``kind``."""
    fake_kind, _, count = os.environ.get("NPU_ADAPT_FAKE_DEVICE_COUNT", "").partition(":")
    return int(count) if fake_kind == kind else None


def device_count(kind: str) -> int:
    fake = _fake_device_count(kind)
    if fake is not None:
        return fake
    if kind == "cpu" or not is_available(kind):
        return 0 if kind != "cpu" else 1
    return int(getattr(_torch(), kind).device_count())


# One device per job. Snakemake runs up to `--resources npu=N` device jobs at once; each job
# takes a free device from a pool of lock files and makes only that device visible to its
# own process, so no two jobs share one. The visible-devices variable only takes effect if
# it is set before the device runtime initialises (CUDA reads CUDA_VISIBLE_DEVICES at its
# first call, CANN reads ASCEND_RT_VISIBLE_DEVICES when torch_npu first touches a device),
# so nothing in this section imports torch: devices are counted from the environment and
# the device nodes in /dev, and a job must take its device before its first device query
# (acquire_device refuses once the runtime has started). Within the visibility the job's
# device is then simply "npu" (= npu:0) or "cuda".

# Device nodes of the drivers: /dev/davinciN (Ascend), /dev/nvidiaN (NVIDIA).
DEVICE_NODES = {"npu": re.compile(r"davinci\d+"), "cuda": re.compile(r"nvidia\d+")}
# Where the pool's lock files live (default: a per-user folder of the node-local temp dir,
# shared by every workflow of that user on this machine, never by other nodes).
LOCK_DIR_ENV = "NPU_ADAPT_LOCK_DIR"
LOCK_POLL_SECONDS = 0.5


def _device_nodes(kind: str) -> int:
    pattern = DEVICE_NODES.get(kind)
    try:
        return sum(1 for name in os.listdir("/dev") if pattern and pattern.fullmatch(name))
    except OSError:
        return 0


def _present(kind: str) -> bool:
    """Whether the machine has devices of ``kind``, without starting any runtime."""
    fake = _fake_device_count(kind)
    if fake is not None:
        return fake > 0
    if kind == "npu" and importlib.util.find_spec("torch_npu") is None:
        return False
    return _device_nodes(kind) > 0


def accelerator_kind(requested: str) -> str:
    """The kind a configured device (``auto``, ``npu``, ``cuda``, ``cpu``) will use, decided
    cheaply (no torch import): the Snakefile names the jobs' device resource after it, and
    a job takes its device from that kind's pool. ``auto`` is npu when torch_npu is
    installed and /dev has Ascend devices, else cuda when /dev has NVIDIA devices, else cpu;
    :func:`resolve` confirms it in the job (and falls back to the CPU if the runtime fails)."""
    if requested != "auto":
        return kind_of(requested)
    return next((kind for kind in ("npu", "cuda") if _present(kind)), "cpu")


def device_ids(kind: str) -> list[str]:
    """The device ids a job of ``kind`` may take: those already listed in the kind's
    visible-devices variable (set by a scheduler such as SLURM, or by the user to reserve
    devices), else 0..N-1 for the N devices of the machine. The CPU is not pooled: []."""
    if kind not in VISIBLE_DEVICES_ENV:
        return []
    listed = os.environ.get(VISIBLE_DEVICES_ENV[kind], "").strip()
    if listed:
        return [item.strip() for item in listed.split(",") if item.strip()]
    fake = _fake_device_count(kind)
    return [str(index) for index in range(_device_nodes(kind) if fake is None else fake)]


def _runtime_started(kind: str) -> bool:
    torch = sys.modules.get("torch")
    module = getattr(torch, kind, None) if torch is not None else None
    return bool(module is not None and hasattr(module, "is_initialized") and module.is_initialized())


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"npu-adapt-devices-{os.getuid()}")


def _take_free_device(directory: Path, kind: str, ids: list[str]):
    """The first free device of ``ids`` and its lock, now held; None when all are taken."""
    for device_id in ids:
        handle = open(directory / f"{kind}-{device_id}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return device_id, handle
        except BlockingIOError:
            handle.close()
    return None


@contextmanager
def acquire_device(kind: str):
    """Hold one device of ``kind`` for the duration of the block, exclusively among every
    job on this machine, with only that device visible to this process. Yields its id (an
    int, or the id string the visible-devices variable listed), or None when there is
    nothing to pool (the CPU, or no device of that kind found). Waits while all are taken.
    The lock is an flock: the kernel releases it when the process dies, so a killed job
    never leaves a device taken."""
    ids = device_ids(kind)
    if not ids:
        yield None
        return
    if _runtime_started(kind):
        raise RuntimeError(
            f"acquire_device({kind!r}) called after the {kind} runtime started: {VISIBLE_DEVICES_ENV[kind]} can no longer take effect"
        )
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if (taken := _take_free_device(directory, kind, ids)) is None:
        log.info("all %d %s devices (%s) are taken by other jobs; waiting", len(ids), kind, ",".join(ids))
        while (taken := _take_free_device(directory, kind, ids)) is None:
            time.sleep(LOCK_POLL_SECONDS)
    device_id, handle = taken
    variable = VISIBLE_DEVICES_ENV[kind]
    previous = os.environ.get(variable)
    os.environ[variable] = device_id
    log.info(
        "took %s device %s of %s (%s=%s) after %.1f s",
        kind,
        device_id,
        ",".join(ids),
        variable,
        device_id,
        time.monotonic() - started,
    )
    try:
        yield int(device_id) if device_id.isdigit() else device_id
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        log.info("released %s device %s", kind, device_id)


def torch_dtype(name: str):
    torch = _torch()
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
    torch = _torch()
    modes = {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
    }
    npu_error = _import_torch_npu()
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
    torch = _torch()
    torch.set_float32_matmul_precision("highest")
    if kind == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif kind == "npu" and _import_torch_npu() is None:
        set_npu_strict(torch.npu)
    log.info("precision strict: float32 without TF32/HF32 on %s", kind)


def synchronize(device: str) -> None:
    kind = kind_of(device)
    if kind == "cpu":
        return
    getattr(_torch(), kind).synchronize()


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
        event = getattr(getattr(_torch(), kind), "Event", None) if kind != "cpu" else None
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
    return getattr(_torch(), kind).max_memory_allocated() / 2**20, None


def reset_peak_memory(device: str) -> bool:
    """Start a new peak-memory window. False when the platform cannot: the peak that
    :func:`peak_memory` reports then covers the whole life of the process."""
    kind = kind_of(device)
    if kind == "cpu":
        # Linux resets the process's peak RSS (VmHWM) to its current RSS on "5" (kernel >= 4.0).
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            return False
        return _status_kib("VmHWM") is not None
    module = getattr(_torch(), kind)
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


def peak_memory(device: str) -> tuple[float, str]:
    """Peak memory in MB since the last :func:`reset_peak_memory`, and what it measures
    (``peak_mem_kind``): the device allocator's peak, or the CPU process's peak RSS (which
    includes the Python runtime, the libraries and the model's weights)."""
    kind = kind_of(device)
    if kind == "cpu":
        high_water_kib = _status_kib("VmHWM")
        if high_water_kib is None:  # no /proc: the peak since process start; ru_maxrss is KiB on Linux, bytes on macOS
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss * (1 if sys.platform == "darwin" else 1024) / 2**20, "process_peak_rss"
        return high_water_kib / 1024, "process_peak_rss"
    return getattr(_torch(), kind).max_memory_allocated() / 2**20, f"{kind}_allocator_peak"


def empty_cache(device: str) -> None:
    kind = kind_of(device)
    if kind != "cpu":
        getattr(_torch(), kind).empty_cache()


def limit_memory(device: str, fraction: float) -> None:
    """Cap this process's allocator on an accelerator at ``fraction`` of the device's memory,
    so that a modest batch size runs genuinely out of memory (checks of the OOM path)."""
    kind = kind_of(device)
    if kind == "cpu":
        raise ValueError("the CPU allocator cannot be capped from inside the process")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    getattr(_torch(), kind).set_per_process_memory_fraction(fraction, index)


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` is an out-of-memory error of any backend."""
    if isinstance(exc, (DeviceOutOfMemory, MemoryError)):
        return True
    torch = _torch()
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    # torch_npu raises RuntimeError with "NPU out of memory"; torch's CPU allocator "can't
    # allocate memory" (Linux) or "not enough memory" (Windows).
    markers = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")
    return isinstance(exc, RuntimeError) and any(marker in text for marker in markers)


def check_fake_oom(batch_size: int) -> None:
    """Test seam: simulate the device running out of memory at large batch sizes."""
    limit = os.environ.get("NPU_ADAPT_FAKE_OOM_BATCH")
    if limit and batch_size >= int(limit):
        raise DeviceOutOfMemory(
            f"simulated out of memory at batch size {batch_size} (NPU_ADAPT_FAKE_OOM_BATCH={limit})"
        )


def device_name(device: str) -> str:
    kind = kind_of(device)
    if kind == "cpu":
        return cpu_model_name()
    module = getattr(_torch(), kind)
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return str(module.get_device_name(index))


@cache
def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def load_average() -> list[float] | None:
    """The host's 1, 5 and 15 minute load averages, or None where the platform has none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def cpu_governor() -> str | None:
    """The CPU frequency governor (Linux cpufreq: performance, powersave, ...), or None when
    unreadable (containers and VMs often hide it)."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() or None
    except OSError:
        return None


def _run_tool(*command: str) -> str | None:
    """Raw text of a vendor tool (npu-smi, nvidia-smi, lscpu), or None when absent."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command)} failed: {exc}"
    return (done.stdout + done.stderr).strip()


def _cann_version() -> str | None:
    """CANN version from the toolkit's version file (set by CANN's set_env.sh)."""
    home = os.environ.get("ASCEND_TOOLKIT_HOME") or os.environ.get("ASCEND_HOME_PATH")
    candidates = [home] if home else []
    candidates.append("/usr/local/Ascend/ascend-toolkit/latest")
    for base in candidates:
        for name in ("version.cfg", "compiler/version.info", "runtime/version.info"):
            path = os.path.join(base, name)
            if os.path.isfile(path):
                with open(path) as handle:
                    for line in handle:
                        if "version" in line.lower() and "=" in line:
                            return line.split("=", 1)[1].strip()
    return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def environment_report() -> tuple[dict, str]:
    """What this machine offers: ``(env.json content, raw vendor tool text for env.log)``."""
    torch = _torch()
    kinds = {}
    for kind in KINDS:
        available = is_available(kind)
        entry = {"available": available, "count": device_count(kind) if available else 0}
        if kind != "cpu" and not available:
            entry["reason"] = why_unavailable(kind)
        if available:
            entry["names"] = [
                device_name(kind if kind == "cpu" else f"{kind}:{i}") for i in range(max(entry["count"], 1))
            ]
        kinds[kind] = entry
    auto = resolve("auto")
    raw = []
    for command in (("npu-smi", "info"), ("nvidia-smi",), ("lscpu",)):
        text = _run_tool(*command)
        raw.append(f"$ {' '.join(command)}\n{text if text is not None else '(not installed)'}\n")
    env = {
        "auto_device": auto,
        "accelerator": auto != "cpu",
        "note": None if auto != "cpu" else "no accelerator found: target device auto runs on the CPU",
        "devices": kinds,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_npu": _version("torch_npu"),
            "cann": _cann_version(),
            "cuda": torch.version.cuda,
            "transformers": _version("transformers"),
            "timm": _version("timm"),
            "numpy": _version("numpy"),
            "snakemake": _version("snakemake"),
            "pandas": _version("pandas"),
            "modelscope": _version("modelscope"),
        },
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_model_name()},
        "threads": torch.get_num_threads(),
        # This host's defaults for its auto device (each dump records the modes it ran with).
        "precision_modes": precision_modes(kind_of(auto)),
    }
    return env, "\n".join(raw)
