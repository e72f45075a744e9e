"""Test seams: every way a test can make production code behave as on hardware it lacks.

Each seam is an environment variable (jobs run in Snakemake's subprocesses, so a test reaches
them through the environment), read here and nowhere else: this module is the one place to
check for what a test can inject. None is ever set in a real run; a run that used one says so
in its results (the reason of the simulated failure, the target's ``test_perturbation``).

(``NPU_ADAPT_LOCK_DIR``, where the device pool keeps its lock files, is a user setting, not a
seam: npu_adapt.devices.pool reads it.)
"""

from __future__ import annotations

import os

# "KIND:N": the machine has N devices of KIND (npu, cuda). The NPU branch cannot run without
# CANN: tests/test_device_pool.py tests the per-job device pool (acquire_device, the
# Snakemake resource per kind) on the CPU with it.
FAKE_DEVICE_COUNT = "NPU_ADAPT_FAKE_DEVICE_COUNT"

# "N": the device runs out of memory at batch sizes >= N. A real OOM needs a device and a big
# model: tests/test_benchmark.py and tests/test_failures.py test the benchmark's
# out-of-memory path (batch sizes recorded as OOM, the model still benchmarked) with it.
FAKE_OOM_BATCH = "NPU_ADAPT_FAKE_OOM_BATCH"

# "MODULE:SCALE": the target dump multiplies the output of MODULE by SCALE. A CPU target agrees
# with its reference; tests/test_layers.py, test_accuracy.py and test_verdicts.py check that
# the layer comparison names exactly that module as the first divergence.
PERTURB_LAYER = "NPU_ADAPT_PERTURB_LAYER"


def fake_device_count(kind: str) -> int | None:
    """N when ``NPU_ADAPT_FAKE_DEVICE_COUNT=KIND:N`` names ``kind``, else None (count the real ones)."""
    fake_kind, _, count = os.environ.get(FAKE_DEVICE_COUNT, "").partition(":")
    if fake_kind != kind:
        return None
    if not count.isdigit():
        raise ValueError(f"{FAKE_DEVICE_COUNT}={fake_kind}:{count}: expected KIND:N with N a whole number")
    return int(count)


def fake_oom_batch() -> int | None:
    """The smallest batch size that runs out of memory (``NPU_ADAPT_FAKE_OOM_BATCH``), or None."""
    limit = os.environ.get(FAKE_OOM_BATCH, "").strip()
    if not limit:
        return None
    if not limit.isdigit():
        raise ValueError(f"{FAKE_OOM_BATCH}={limit}: expected a batch size")
    return int(limit)


def perturbed_layer() -> str | None:
    """The ``MODULE:SCALE`` of ``NPU_ADAPT_PERTURB_LAYER``, or None."""
    return os.environ.get(PERTURB_LAYER) or None
