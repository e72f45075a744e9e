"""One device per job: the lock-file pool of npu_adapt.devices and the rules' device
resources, on the CPU with a fake device count (NPU_ADAPT_FAKE_DEVICE_COUNT)."""

import os
import re
import select
import subprocess
import sys
import time
from importlib.util import find_spec

import pytest
from conftest import REPO, copy_of, load, run_snakemake, tiny_config

from npu_adapt import devices

# A job in miniature: take a device, report it and what the process sees, hold it until
# told to go (a line on stdin), release it.
HOLDER = """
import logging, os, sys
from npu_adapt import devices
logging.basicConfig(level=logging.INFO, format="%(message)s")  # the pool's log lines, on stderr
with devices.acquire_device("npu") as device:
    print(device, os.environ["ASCEND_RT_VISIBLE_DEVICES"], flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def pool_env(tmp_path):
    env = {**os.environ, "NPU_ADAPT_FAKE_DEVICE_COUNT": "npu:2", "NPU_ADAPT_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("ASCEND_RT_VISIBLE_DEVICES", None)
    return env


def start_holder(env):
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen([sys.executable, "-c", HOLDER], **pipes, text=True, env=env)


def wait_for_line(stream, text: str, timeout: float = 60) -> str:
    """The first line of ``stream`` containing ``text``; fails after ``timeout`` seconds or at
    the end of the stream (never blocks past the deadline, whatever the process does). Reads
    the pipe itself, unbuffered, so select() sees every byte not yet consumed."""
    deadline, received = time.monotonic() + timeout, ""
    while (left := deadline - time.monotonic()) > 0 and select.select([stream], [], [], left)[0]:
        chunk = os.read(stream.fileno(), 4096).decode()
        if not chunk:
            break
        received += chunk
        if line := next((line for line in received.splitlines() if text in line), None):
            return line
    raise AssertionError(f"no line with {text!r} within {timeout} s; got {received!r}")


def test_parallel_jobs_take_different_devices_and_a_third_waits_for_a_free_one(pool_env):
    first, second = start_holder(pool_env), start_holder(pool_env)
    third = None
    try:
        taken = [first.stdout.readline().split(), second.stdout.readline().split()]
        # Each process holds a different device and sees only that one.
        assert sorted(device for device, _ in taken) == ["0", "1"]
        assert all(device == visible for device, visible in taken)

        third = start_holder(pool_env)
        # The third job reached the pool and found both devices taken (no sleep to guess how
        # long its start takes) ...
        wait_for_line(third.stderr, "are taken by other jobs; waiting")
        # ... and holds none while they stay taken.
        assert not select.select([third.stdout], [], [], 1.0)[0] and third.poll() is None

        first.communicate("go\n", timeout=30)  # the first job ends: its device is free again
        device, visible = third.stdout.readline().split()
        assert device == visible == taken[0][0]
    finally:
        for process in (first, second, third):
            if process and process.poll() is None:
                process.communicate("go\n", timeout=30)


def test_a_killed_job_frees_its_device(pool_env):
    first = start_holder(pool_env)
    device = first.stdout.readline().split()[0]
    first.kill()  # no clean exit: the kernel drops the flock with the process
    first.wait()
    pool_env["NPU_ADAPT_FAKE_DEVICE_COUNT"] = "npu:1"  # one device only: it must be free now
    second = start_holder(pool_env)
    assert second.stdout.readline().split() == [device, device] == ["0", "0"]
    second.communicate("go\n", timeout=30)


def test_devices_listed_by_a_scheduler_are_the_pool(monkeypatch, tmp_path):
    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "4,6")
    monkeypatch.setenv("NPU_ADAPT_LOCK_DIR", str(tmp_path))
    monkeypatch.delenv("NPU_ADAPT_FAKE_DEVICE_COUNT", raising=False)
    assert devices.device_ids("npu") == ["4", "6"]
    with devices.acquire_device("npu") as device:
        assert device == 4 and os.environ["ASCEND_RT_VISIBLE_DEVICES"] == "4"
    assert os.environ["ASCEND_RT_VISIBLE_DEVICES"] == "4,6"  # restored for whoever follows


def test_the_cpu_and_missing_devices_are_not_pooled(monkeypatch):
    monkeypatch.setenv("NPU_ADAPT_FAKE_DEVICE_COUNT", "npu:0")
    monkeypatch.delenv("ASCEND_RT_VISIBLE_DEVICES", raising=False)
    before = dict(os.environ)
    for kind in ("cpu", "npu"):
        with devices.acquire_device(kind) as device:
            assert device is None and dict(os.environ) == before


def test_the_device_kind_is_decided_without_importing_torch(pool_env):
    probe = (
        "import sys; from npu_adapt import devices; print(devices.accelerator_kind('auto'), "
        "devices.accelerator_kind('cpu'), devices.accelerator_kind('cuda'), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=pool_env, check=True)
    assert done.stdout.split() == ["npu", "cpu", "cuda", "False"]


@pytest.mark.e2e
def test_device_jobs_declare_the_resource_and_each_records_its_own_device(tiny_run, tmp_path):
    """Two models on `--cores 2 --resources npu=2` with two (fake) NPUs: each target dump
    declares npu=1 and records the device it held. Without torch_npu the NPU target is
    then blocked, as on any machine without one. The plan is a dry run in an empty directory
    (every job); the run goes on in a copy of the tiny run, whose weights and inputs it reuses."""
    env = {"NPU_ADAPT_FAKE_DEVICE_COUNT": "npu:2", "NPU_ADAPT_LOCK_DIR": str(tmp_path / "locks")}
    config = tiny_config(targets={"fp16": {"device": "npu", "dtype": "float16"}})
    targets = [f"results/{model}/fp16/dump/index.json" for model in ("tiny-bert", "tiny-convnext")]

    plan = run_snakemake(
        tmp_path / "plan", "-n", *targets, "results/tiny-bert/reference/index.json", config=config, env=env
    ).stdout
    declared = dict(re.findall(r"rule (\w+):(?:\n    .*)*?\n    resources: .*?npu=(\d)", plan))
    assert declared == {"dump_target": "1", "dump_reference": "0"}  # the reference runs on the CPU

    workdir = copy_of(tiny_run, tmp_path)
    run_snakemake(workdir, *targets, "--cores", "2", "--resources", "npu=2", config=config, env=env)
    for model in ("tiny-bert", "tiny-convnext"):
        index = load(workdir / f"results/{model}/fp16/dump/index.json")
        assert index["device_index"] in (0, 1) and index["requested_device"] == "npu"
        log = (workdir / f"logs/{model}/fp16/dump_target.log").read_text()
        assert (
            f"took npu device {index['device_index']} of 0,1 (ASCEND_RT_VISIBLE_DEVICES={index['device_index']})" in log
        )
        assert f"released npu device {index['device_index']}" in log
        if find_spec("torch_npu") is None:
            assert index["status"] == "blocked" and "torch_npu is not installed" in index["reason"]


@pytest.mark.e2e
@pytest.mark.parametrize(("profile", "device_job_resource"), [("slurm", "gres=npu:1"), ("donau", "queue=npu")])
def test_cluster_profiles_parse_and_send_device_jobs_to_device_nodes(tmp_path, profile, device_job_resource):
    path = str(REPO / "profiles" / profile)
    for how in ("--profile", "--workflow-profile"):  # as a global profile and as the workflow's
        plan = run_snakemake(tmp_path, "results/all", "-n", how, path, config=tiny_config()).stdout
        assert re.search(r"^dump_target\s+2$", plan, re.M) and re.search(r"^benchmark\s+2$", plan, re.M)
        resources = dict(re.findall(r"rule (\w+):(?:\n    .*)*?\n    resources: (.*)", plan))
        assert device_job_resource in resources["dump_target"] and device_job_resource in resources["benchmark"]
        assert device_job_resource not in resources["compare"]
