"""The test seams (npu_adapt/seams.py): the one place production code reads what a test can
inject, and what each seam makes of its value."""

from __future__ import annotations

import ast

import pytest
from conftest import REPO

from npu_adapt import devices, seams

# A user setting, not a seam (the device pool's lock folder).
USER_SETTINGS = {"NPU_ADAPT_LOCK_DIR"}


def test_no_library_module_but_seams_names_a_test_hook():
    named = {}
    for path in sorted((REPO / "npu_adapt").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("NPU_ADAPT_"):
                named.setdefault(node.value, set()).add(path.relative_to(REPO).as_posix())
    hooks = {name: paths for name, paths in named.items() if name not in USER_SETTINGS}
    assert hooks == {
        seams.FAKE_DEVICE_COUNT: {"npu_adapt/seams.py"},
        seams.FAKE_OOM_BATCH: {"npu_adapt/seams.py"},
        seams.PERTURB_LAYER: {"npu_adapt/seams.py"},
    }


def test_each_seam_reads_its_value_and_names_itself_when_the_value_is_bad(monkeypatch):
    monkeypatch.setenv(seams.FAKE_DEVICE_COUNT, "npu:3")
    monkeypatch.delenv(devices.VISIBLE_DEVICES_ENV["npu"], raising=False)  # a scheduler's list would win
    assert (seams.fake_device_count("npu"), seams.fake_device_count("cuda")) == (3, None)
    assert devices.device_ids("npu") == ["0", "1", "2"] and devices.accelerator_kind("auto") == "npu"
    monkeypatch.setenv(seams.FAKE_DEVICE_COUNT, "npu:two")
    with pytest.raises(ValueError, match="NPU_ADAPT_FAKE_DEVICE_COUNT=npu:two"):
        seams.fake_device_count("npu")
    monkeypatch.delenv(seams.FAKE_DEVICE_COUNT)
    assert seams.fake_device_count("npu") is None

    monkeypatch.setenv(seams.FAKE_OOM_BATCH, "8")
    devices.check_fake_oom(7)
    with pytest.raises(devices.DeviceOutOfMemory, match=r"batch size 8 \(NPU_ADAPT_FAKE_OOM_BATCH=8\)"):
        devices.check_fake_oom(8)
    monkeypatch.setenv(seams.FAKE_OOM_BATCH, "big")
    with pytest.raises(ValueError, match="NPU_ADAPT_FAKE_OOM_BATCH=big"):
        seams.fake_oom_batch()
    monkeypatch.delenv(seams.FAKE_OOM_BATCH)
    devices.check_fake_oom(10**6)

    monkeypatch.setenv(seams.PERTURB_LAYER, "encoder.layer.0:1.5")
    assert seams.perturbed_layer() == "encoder.layer.0:1.5"
    monkeypatch.delenv(seams.PERTURB_LAYER)
    assert seams.perturbed_layer() is None
