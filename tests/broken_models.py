"""The broken run's models (tests/conftest.py ``broken_run``; read by tests/test_failures.py and
tests/test_reports.py): one healthy model beside models that cannot be had, whose architecture
is unknown, whose forward raises, that run out of memory or out of disk, and one whose port
fails its criteria. Offline and with a file size limit, as `snakemake --cores 2 results/all`."""

from __future__ import annotations

from conftest import tiny_config

HEALTHY = "tiny-convnext"
NO_WEIGHTS = "no-weights"
BAD_FORWARD = "bad-forward"
OUT_OF_MEMORY = "out-of-memory"
TYPO_ARCH = "typo-arch"
DISK_FULL = "disk-full"
FAILS = "fails-bf16"
# Bigger than any file of the other models, smaller than CoaT's 23 MB of weights.
MAX_FILE_BYTES = 4 << 20
# The device refuses batch size 4 and up (the device module's seam).
FAKE_OOM = {"NPU_ADAPT_FAKE_OOM_BATCH": "4"}


def broken_config() -> dict:
    config = tiny_config()
    healthy, bert = config["models"][HEALTHY], config["models"]["tiny-bert"]
    config["models"] = {
        HEALTHY: healthy,
        # Offline, no fallback: the weights cannot be had.
        NO_WEIGHTS: {"source": "hf:npu-adapt/not-downloadable", "family": "hf_encoder", "fallback": "none"},
        # 100 tokens for a model with 64 positions: its forward raises.
        BAD_FORWARD: {**bert, "inputs": {"seq_len": 100}},
        # FAKE_OOM refuses its only batch sizes.
        OUT_OF_MEMORY: {**healthy, "benchmark": {"batch_sizes": [4, 8]}},
        # A typo in the timm architecture: nothing to download, nothing to build.
        TYPO_ARCH: {"source": "timm:convnxt_atto.fcmae_ft_in1k", "family": "timm_image", "fallback": "random-init"},
        # CoaT (modules sharing weights), whose 23 MB of weights do not fit in MAX_FILE_BYTES.
        DISK_FULL: {
            "source": "timm:coat_lite_tiny",
            "family": "timm_image",
            "task": "image-classification",
            "fallback": "random-init",
            "benchmark": {"batch_sizes": [1]},
        },
        # Runs through every stage, and its bfloat16 target fails a criterion no bfloat16 run meets.
        FAILS: {
            **healthy,
            "targets": {"fp32": False, "bf16": {"device": "cpu", "dtype": "bfloat16"}},
            "accuracy": {"rel_l2_max": 1.0e-6, "rel_l2_fail": 1.0e-6},
            "benchmark": {"batch_sizes": [1]},
        },
    }
    return config
