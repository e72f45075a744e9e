"""The shipped profiles/slurm, unedited, on a real single-node SLURM cluster (munge + slurmctld +
slurmd on 127.0.0.1, no accounting database; tests/slurm_cluster.py): one model of the tiny
config, without --cores, interrupted with SIGINT while a device job runs, resumed, then re-run
as a no-op."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, load, tiny_config
from slurm_cluster import Cluster, missing_reason

PROFILE = REPO / "profiles" / "slurm"
PER_MODEL_RULES = ("fetch_weights", "make_inputs", "dump_reference", "summarize")
# Jobs of one model and target (the tiny config's one target, fp32): SLURM's comment names both.
PER_TARGET_RULES = ("dump_target", "compare", "benchmark")
TARGET = "fp32"
DEVICE_RULES = ("dump_target", "benchmark")
# Test-only speed-up: the plugin's first status check after 1 s instead of 40 s. --verbose logs
# each sbatch call, asserted on below. Nothing else is added to the shipped profile.
TEST_ARGS = ("--slurm-init-seconds-before-status-checks", "1", "--verbose")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip(
        "snakemake_executor_plugin_slurm",
        reason="snakemake-executor-plugin-slurm is not installed",
    )
    cluster = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def snakemake_command(workdir: Path) -> list[str]:
    """The README's cluster command: the shipped workflow profile and no --cores."""
    return [
        SNAKEMAKE,
        "--configfile",
        str(workdir / "config.yaml"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--workflow-profile",
        str(PROFILE),
        *TEST_ARGS,
        "results/all",
    ]


def default_sigint() -> None:
    # A suite started in the background (`make test &`, nohup) inherits SIGINT ignored, and a
    # Python started so never turns it into KeyboardInterrupt: the interruption below would be lost.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(workdir: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = workdir / f"{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            snakemake_command(workdir), stdout=out, stderr=subprocess.STDOUT, text=True, preexec_fn=default_sigint
        )
    return process, log


def finish(process: subprocess.Popen, log: Path, timeout: float = 900) -> str:
    process.wait(timeout=timeout)
    text = log.read_text()
    assert process.returncode == 0, f"{log.name} failed ({process.returncode}):\n{text[-6000:]}"
    return text


def run_id(text: str) -> str:
    match = re.search(r"SLURM run ID: (\S+)", text)
    assert match, f"no SLURM run ID in the log:\n{text[-3000:]}"
    return match.group(1)


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert process.poll() is None, (
            f"snakemake ended ({process.returncode}) before {what}:\n{log.read_text()[-4000:]}"
        )
        time.sleep(0.5)
    raise AssertionError(f"waited {timeout} s for {what}:\n{log.read_text()[-4000:]}")


@pytest.mark.e2e
def test_a_tiny_model_runs_on_slurm_with_the_shipped_profile(slurm, tmp_path):
    started = time.monotonic()
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = tiny_config()
    # One model: every rule still runs as a SLURM job, and each job costs a Snakemake start there.
    config["models"] = {name: entry for name, entry in config["models"].items() if name == "tiny-convnext"}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    models = sorted(config["models"])

    # 1. Interrupted: SIGINT while a device job runs in SLURM; Snakemake cancels its jobs.
    process, first_log = start(workdir, "interrupted")
    first = wait_for(
        lambda: "SLURM run ID" in first_log.read_text() and run_id(first_log.read_text()),
        120,
        "the SLURM run ID",
        process,
        first_log,
    )

    def running_device_job():
        return next(
            (
                job
                for job in slurm.jobs()
                if job["JobName"] == first
                and job["JobState"] == "RUNNING"
                and job["Comment"].startswith("rule_dump_target")
            ),
            None,
        )

    victim = wait_for(running_device_job, 600, "a running dump_target SLURM job", process, first_log)
    # Held there (SIGSTOP through SLURM): a tiny model's job may otherwise end before the
    # interruption reaches SLURM on a loaded machine. It stays the run's job, for Snakemake to cancel.
    subprocess.run(["scontrol", "suspend", victim["JobId"]], check=True, capture_output=True, text=True)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    assert process.returncode != 0
    # Snakemake's scancel is asynchronous in slurmctld: the states settle within seconds.
    deadline = time.monotonic() + 60
    while True:
        jobs = {job["JobId"]: job for job in slurm.jobs()}
        left = [
            (job["Comment"], job["JobState"])
            for job in jobs.values()
            if job["JobName"] == first and job["JobState"] in ("PENDING", "RUNNING", "SUSPENDED", "COMPLETING")
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"the interrupted run left SLURM jobs behind: {left}"
    assert jobs[victim["JobId"]]["JobState"] == "CANCELLED", jobs[victim["JobId"]]
    assert not list((workdir / ".snakemake" / "locks").glob("*")), "the interrupted run left its lock"

    # 2. Resumed: the same command finishes the run; nothing that completed is submitted again.
    process, second_log = start(workdir, "resumed")
    second_text = finish(process, second_log)
    second = run_id(second_text)
    steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", second_text)
    assert steps, second_text[-3000:]
    resumed_jobs = int(steps[-1][1])

    jobs = [job for job in slurm.jobs() if job["JobName"] in (first, second)]
    completed = [job for job in jobs if job["JobState"] == "COMPLETED"]
    assert {job["JobState"] for job in jobs} <= {"COMPLETED", "CANCELLED"}, [
        (job["Comment"], job["JobState"]) for job in jobs
    ]
    comments = Counter(job["Comment"] for job in completed)
    assert max(comments.values()) == 1, f"jobs run twice: {[c for c, n in comments.items() if n > 1]}"
    expected = (
        {"rule_check_env", "rule_leaderboard", "rule_all"}
        | {f"rule_{rule}_wildcards_{model}" for rule in PER_MODEL_RULES for model in models}
        | {f"rule_{rule}_wildcards_{model}_{TARGET}" for rule in PER_TARGET_RULES for model in models}
    )
    assert expected <= set(comments), f"not run as SLURM jobs: {expected - set(comments)}"
    # Every Snakemake job was a SLURM job: the resumed run's own job count plus what the first run
    # completed is what SLURM completed, and every submission Snakemake logged is a SLURM job.
    completed_first = sum(job["JobName"] == first for job in completed)
    assert completed_first + resumed_jobs == len(completed)
    logged = set(re.findall(r"submitted with SLURM jobid (\d+)", first_log.read_text() + second_text))
    assert logged == {job["JobId"] for job in jobs}
    assert "localrule" not in first_log.read_text() + second_text

    # What the profile asks SLURM for, as slurmctld recorded it (and as the sbatch calls said).
    settings = profile()
    for job in completed:
        rule = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
        device_job = rule in DEVICE_RULES
        assert job["Partition"] == ("npu" if device_job else "cpu"), job
        assert bool(re.fullmatch(r"gres[:/]npu:1", job.get("TresPerNode", ""))) == device_job, job
        assert job["MinMemoryNode"] == f"{settings['default-resources']['mem_mb']}M", job
        threads = settings["set-threads"]["benchmark"] if rule == "benchmark" else 1
        assert job["NumCPUs"] == str(threads), job
    sbatch = re.findall(r"sbatch call: (.*)", first_log.read_text() + second_text)
    assert sbatch and all("--account" not in line and " -A " not in line for line in sbatch)
    device_calls = [line for line in sbatch if re.search(r"rule_(dump_target|benchmark)_wildcards", line)]
    assert device_calls and all("-p npu" in line and "--gres=npu:1" in line for line in device_calls), device_calls

    # A complete leaderboard, from jobs that ran in SLURM; the benchmark ran on the profile's threads.
    with open(workdir / "results" / "leaderboard.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert sorted(row["model"] for row in rows) == models
    for row in rows:
        assert row["status"] not in ("blocked", "error", "fail"), row
        assert all(value != "" for value in row.values()), row
    for model in models:
        assert (
            load(workdir / "results" / model / "fp32" / "benchmark.json")["threads"]
            == settings["set-threads"]["benchmark"]
        )

    # 3. A no-op re-run: nothing planned, nothing submitted.
    before = len(slurm.jobs())
    process, third_log = start(workdir, "noop")
    third_text = finish(process, third_log)
    assert "Nothing to be done" in third_text, third_text[-3000:]
    assert "submitted with SLURM jobid" not in third_text
    assert len(slurm.jobs()) == before
    print(
        f"SLURM test: {len(jobs)} SLURM jobs, {time.monotonic() - started:.0f} s; sbatch calls:\n" + "\n".join(sbatch)
    )


@pytest.mark.e2e
def test_a_cluster_run_without_benchmark_threads_stops_before_any_job(tmp_path):
    """profiles/slurm without its set-threads line and a CPU target with benchmark.threads null:
    no thread count for the benchmark; the run stops after planning, before it submits any
    job (so no scheduler is needed here), naming both ways to set it."""
    pytest.importorskip(
        "snakemake_executor_plugin_slurm",
        reason="snakemake-executor-plugin-slurm is not installed",
    )
    settings = profile()
    del settings["set-threads"]
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(settings))
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    command = snakemake_command(workdir)
    command[command.index(str(PROFILE))] = str(tmp_path / "profile")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "models.tiny-bert: a CPU target's benchmark needs its thread count on a cluster executor" in done.stderr, (
        done.stderr[-3000:]
    )
    assert "benchmark.threads" in done.stderr and "set-threads" in done.stderr
    assert "submitted with SLURM" not in done.stdout + done.stderr
    assert not (workdir / "results").exists() and not (workdir / ".snakemake" / "slurm_logs").exists()
