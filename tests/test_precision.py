"""Precision modes (issue 13): what float32 means on the device is read, recorded and, with
`target.precision: strict`, set, all in npu_adapt.devices. The torch_npu branch is tested
through its seam (functions taking the backend module), since torch_npu cannot be
imported without CANN; the CPU/CUDA flags are torch's real ones."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from npu_adapt import devices


class NpuBackend(SimpleNamespace):
    """The attributes of ``torch.npu`` that the precision functions touch, as torch_npu
    ships them by default: HF32 on for convolutions, off for matmul, jit_compile off."""

    def __init__(self, jit_compile_false: bool = True):
        super().__init__(
            matmul=SimpleNamespace(allow_hf32=False),
            conv=SimpleNamespace(allow_hf32=True),
            config=SimpleNamespace(allow_internal_format=False),
        )
        self._jit_false = jit_compile_false

    def is_jit_compile_false(self):
        return self._jit_false


@pytest.fixture
def restore_torch_flags():
    saved = (
        torch.get_float32_matmul_precision(),
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    yield
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[1], saved[2]


def test_npu_flags_are_read_and_strict_turns_hf32_off():
    npu = NpuBackend()
    assert devices.npu_precision_modes(npu) == {
        "matmul_allow_hf32": False,
        "conv_allow_hf32": True,
        "jit_compile": False,
        "allow_internal_format": False,
    }
    devices.set_npu_strict(npu)
    assert devices.npu_precision_modes(npu)["conv_allow_hf32"] is False and npu.matmul.allow_hf32 is False


def test_a_flag_an_older_torch_npu_lacks_is_null():
    npu = SimpleNamespace(matmul=SimpleNamespace(allow_hf32=True), conv=SimpleNamespace(allow_hf32=True))
    assert devices.npu_precision_modes(npu) == {
        "matmul_allow_hf32": True,
        "conv_allow_hf32": True,
        "jit_compile": None,
        "allow_internal_format": None,
    }


def test_cpu_modes_name_why_npu_flags_are_null(restore_torch_flags):
    modes = devices.precision_modes("cpu")
    assert modes["npu"] is None and modes["npu_reason"] == "torch_npu is not installed"
    assert modes["float32_matmul_precision"] == "highest" and modes["reduced_float32"] is False
    # torch's CUDA default: cuDNN convolutions may use TF32. That makes a CUDA float32 target
    # reduced, but not a CPU one (no cuDNN there).
    torch.backends.cudnn.allow_tf32 = True
    assert devices.precision_modes("cuda")["reduced_float32"] is True
    assert devices.precision_modes("cpu")["reduced_float32"] is False


def test_strict_precision_sets_float32_everywhere(restore_torch_flags):
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    assert devices.precision_modes("cpu")["reduced_float32"] is True  # "high" allows bfloat16/TF32 matmuls
    devices.apply_precision("cuda", "default")  # the device's own modes stay
    assert torch.get_float32_matmul_precision() == "high"
    devices.apply_precision("cuda", "strict")
    modes = devices.precision_modes("cuda")
    assert (modes["float32_matmul_precision"], modes["cuda_matmul_allow_tf32"], modes["cudnn_allow_tf32"]) == (
        "highest",
        False,
        False,
    )
    assert modes["reduced_float32"] is False
    with pytest.raises(ValueError, match="unknown precision 'fast'"):
        devices.apply_precision("cpu", "fast")
