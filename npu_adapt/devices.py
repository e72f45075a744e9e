"""Everything device-specific lives here: detection, ``import torch_npu``, synchronisation,
peak-memory queries, device names and the environment report.

No other file in npu-adapt says ``torch.npu`` or ``torch.cuda``. The rest of the code talks
about devices as plain strings: ``"npu"``, ``"cuda"``, ``"cpu"`` (optionally ``"npu:1"``).

Seams for tests (the NPU branch cannot run on a machine without CANN):
- ``NPU_ADAPT_FAKE_DEVICE_COUNT=KIND:N`` makes :func:`device_count` report N devices of KIND
  (used to test the per-job device pool without N real accelerators);
- ``NPU_ADAPT_FAKE_OOM_BATCH=N`` makes :func:`check_fake_oom` raise :class:`DeviceOutOfMemory`
  for batch sizes >= N (used to test the benchmark's out-of-memory path);
- :data:`_probe_overrides` lets unit tests declare a kind available or not.
"""

from __future__ import annotations

import importlib
import os
import platform
import resource
import shutil
import subprocess
import sys
from functools import lru_cache

KINDS = ("npu", "cuda", "cpu")
DTYPES = ("float32", "float16", "bfloat16")

# Environment variable that restricts the visible devices of each kind, per job.
VISIBLE_DEVICES_ENV = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "cuda": "CUDA_VISIBLE_DEVICES"}

# Unit tests may set e.g. {"npu": True} to exercise the NPU branch of the resolution logic.
_probe_overrides: dict[str, bool] = {}


class DeviceOutOfMemory(RuntimeError):
    """The device ran out of memory (normalised across CPU, CUDA and NPU)."""


def _torch():
    import torch

    return torch


@lru_cache(maxsize=None)
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
    if kind in _probe_overrides:
        return _probe_overrides[kind]
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


def device_count(kind: str) -> int:
    fake = os.environ.get("NPU_ADAPT_FAKE_DEVICE_COUNT", "")
    if fake:
        fake_kind, _, count = fake.partition(":")
        if fake_kind == kind:
            return int(count)
    if kind == "cpu" or not is_available(kind):
        return 0 if kind != "cpu" else 1
    return int(getattr(_torch(), kind).device_count())


def torch_dtype(name: str):
    torch = _torch()
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def synchronize(device: str) -> None:
    kind = kind_of(device)
    if kind == "cpu":
        return
    getattr(_torch(), kind).synchronize()


def reset_peak_memory(device: str) -> None:
    kind = kind_of(device)
    if kind == "cpu":
        return  # the process's peak RSS cannot be reset; it is reported as such
    module = getattr(_torch(), kind)
    module.empty_cache()
    module.reset_peak_memory_stats()


def peak_memory(device: str) -> tuple[float, str]:
    """Peak memory in MB and what it measures (``peak_mem_kind``)."""
    kind = kind_of(device)
    if kind == "cpu":
        # ru_maxrss is in KiB on Linux, bytes on macOS.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024
        return rss * scale / 2**20, "process_peak_rss"
    return getattr(_torch(), kind).max_memory_allocated() / 2**20, f"{kind}_allocator_peak"


def empty_cache(device: str) -> None:
    kind = kind_of(device)
    if kind != "cpu":
        getattr(_torch(), kind).empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """True when ``exc`` is an out-of-memory error of any backend."""
    if isinstance(exc, (DeviceOutOfMemory, MemoryError)):
        return True
    torch = _torch()
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    text = str(exc).lower()
    # torch_npu raises RuntimeError with "NPU out of memory"; CPU allocators "not enough memory".
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)


def check_fake_oom(batch_size: int) -> None:
    """Test seam: simulate the device running out of memory at large batch sizes."""
    limit = os.environ.get("NPU_ADAPT_FAKE_OOM_BATCH")
    if limit and batch_size >= int(limit):
        raise DeviceOutOfMemory(f"simulated out of memory at batch size {batch_size} (NPU_ADAPT_FAKE_OOM_BATCH={limit})")


def device_name(device: str) -> str:
    kind = kind_of(device)
    if kind == "cpu":
        return cpu_model_name()
    module = getattr(_torch(), kind)
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return str(module.get_device_name(index))


@lru_cache(maxsize=None)
def cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


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
            entry["names"] = [device_name(kind if kind == "cpu" else f"{kind}:{i}") for i in range(max(entry["count"], 1))]
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
        },
        "host": {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu_model_name()},
        "threads": torch.get_num_threads(),
    }
    return env, "\n".join(raw)
