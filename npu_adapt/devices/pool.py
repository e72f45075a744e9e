"""The per-job device pool: one device per job, exclusively, on this machine.

Torch-free on purpose (nothing here or in what it imports loads torch): a job must take its
device before its first device query, and the visible-devices variable must be set before
the device runtime initialises.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from npu_adapt.devices.detect import VISIBLE_DEVICES_ENV, device_ids

log = logging.getLogger("npu_adapt")

# One device per job. Snakemake runs up to `--resources npu=N` device jobs at once; each job
# takes a free device from a pool of lock files and makes only that device visible to its
# own process, so no two jobs share one. The visible-devices variable only takes effect if
# it is set before the device runtime initialises (CUDA reads CUDA_VISIBLE_DEVICES at its
# first call, CANN reads ASCEND_RT_VISIBLE_DEVICES when torch_npu first touches a device),
# so nothing in this section imports torch: devices are counted from the environment and
# the device nodes in /dev, and a job must take its device before its first device query
# (acquire_device refuses once the runtime has started). Within the visibility the job's
# device is then simply "npu" (= npu:0) or "cuda".

# Where the pool's lock files live (default: a per-user folder of the node-local temp dir,
# shared by every workflow of that user on this machine, never by other nodes).
LOCK_DIR_ENV = "NPU_ADAPT_LOCK_DIR"
LOCK_POLL_SECONDS = 0.5


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
            f"acquire_device({kind!r}) called after the {kind} runtime started: "
            f"{VISIBLE_DEVICES_ENV[kind]} can no longer take effect"
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
