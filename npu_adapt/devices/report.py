"""The environment report (env.json): devices, library versions, host, CPU model and governor."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import cache
from pathlib import Path

from npu_adapt.devices.detect import KINDS, device_count, is_available, kind_of, lazy_torch, resolve, why_unavailable
from npu_adapt.devices.runtime import precision_modes


def device_name(device: str) -> str:
    kind = kind_of(device)
    if kind == "cpu":
        return cpu_model_name()
    module = getattr(lazy_torch(), kind)
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
    torch = lazy_torch()
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
