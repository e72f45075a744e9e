"""Which devices this machine has and which one a job uses: kinds, ``auto`` resolved, device
counts and ids (from the environment and the device nodes in /dev, without torch where the
answer is needed before a job starts: the Snakefile, the device pool). torch is imported
only inside the functions that ask the runtime (:func:`is_available`, :func:`resolve`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from functools import cache

from npu_adapt import seams

KINDS = ("npu", "cuda", "cpu")

# Environment variable that restricts the visible devices of each kind, per job.
VISIBLE_DEVICES_ENV = {"npu": "ASCEND_RT_VISIBLE_DEVICES", "cuda": "CUDA_VISIBLE_DEVICES"}


def lazy_torch():
    """torch, imported on first use: planning the workflow and the device pool stay torch-free."""
    import torch

    return torch


@cache
def torch_npu_error() -> str | None:
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
        if torch_npu_error() is not None:
            return False
        return bool(lazy_torch().npu.is_available())
    if kind == "cuda":
        return bool(lazy_torch().cuda.is_available())
    raise ValueError(f"unknown device kind {kind!r}; expected one of {KINDS}")


def why_unavailable(kind: str) -> str:
    if kind == "npu":
        return torch_npu_error() or "torch_npu imported but torch.npu.is_available() is False"
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
    fake = seams.fake_device_count(kind)
    if fake is not None:
        return fake
    if kind == "cpu" or not is_available(kind):
        return 0 if kind != "cpu" else 1
    return int(getattr(lazy_torch(), kind).device_count())


# Device nodes of the drivers: /dev/davinciN (Ascend), /dev/nvidiaN (NVIDIA).
DEVICE_NODES = {"npu": re.compile(r"davinci\d+"), "cuda": re.compile(r"nvidia\d+")}


def _device_nodes(kind: str) -> int:
    pattern = DEVICE_NODES.get(kind)
    try:
        return sum(1 for name in os.listdir("/dev") if pattern and pattern.fullmatch(name))
    except OSError:
        return 0


def _present(kind: str) -> bool:
    """Whether the machine has devices of ``kind``, without starting any runtime."""
    fake = seams.fake_device_count(kind)
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
    fake = seams.fake_device_count(kind)
    return [str(index) for index in range(_device_nodes(kind) if fake is None else fake)]
