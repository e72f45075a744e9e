"""A real single-node SLURM cluster on 127.0.0.1 for tests: munge + slurmctld + slurmd from the
distribution's packages (Debian: `slurmctld slurmd slurm-client munge`), no accounting database.

The node has the machine's real CPUs and memory (``slurmd -C``), a count-only ``npu`` generic
resource (no device files: jobs only ask for it, nothing opens it) and two partitions, ``cpu``
(default) and ``npu``, as profiles/slurm expects. The configuration goes to
/etc/slurm/slurm.conf because the Snakemake job-step plugin drops ``SLURM_CONF`` before its
nested ``srun``; a file already there is put back on stop. Needs root (slurmd runs jobs as
their user).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
GRES_CONF = Path("/etc/slurm/gres.conf")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "srun")
PORTS = (6817, 6818)  # slurmctld, slurmd
NPUS = 4


def missing_reason() -> str | None:
    """Why no cluster can be started here, or None."""
    absent = [name for name in DAEMONS if shutil.which(name) is None]
    if absent:
        return (
            f"SLURM/munge not installed (no {', '.join(absent)}): apt-get install slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        return "a local SLURM cluster needs root (slurmd starts jobs as their user)"
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"port {port} is taken: a SLURM daemon already runs on this machine"
    return None


def node_hardware() -> dict[str, int]:
    """CPUs and RealMemory (MB) of this machine, as slurmd itself measures them."""
    fields = dict(
        item.split("=", 1)
        for item in subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.split()
        if "=" in item
    )
    return {"cpus": int(fields["CPUs"]), "memory_mb": int(fields["RealMemory"])}


def slurm_conf(state: Path, hostname: str, cpus: int, memory_mb: int) -> str:
    return f"""# Written by tests/slurm_cluster.py for a test run; put back on stop.
ClusterName=npuadapt-test
SlurmctldHost={hostname}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
SlurmctldPort={PORTS[0]}
SlurmdPort={PORTS[1]}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=npu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Finished jobs stay visible to squeue (the profile's status command without accounting) and
# scontrol this long: an hour, so the test sees every job of a slow run (the default is 300 s).
MinJobAge=3600
NodeName={hostname} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=npu:{NPUS} State=UNKNOWN
PartitionName=cpu Nodes={hostname} Default=YES MaxTime=INFINITE State=UP
PartitionName=npu Nodes={hostname} MaxTime=INFINITE State=UP
"""


class Cluster:
    """Start with ``start()``, stop with ``stop()`` (always: it kills only what it started)."""

    def __init__(self, state: Path):
        self.state = Path(state)
        self.hostname = socket.gethostname().split(".")[0]
        self.processes: list[subprocess.Popen] = []
        self.saved: dict[Path, bytes | None] = {}

    def _write_etc(self, path: Path, text: str) -> None:
        if path not in self.saved:
            self.saved[path] = path.read_bytes() if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _spawn(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        with open(self.state / f"{name}.out", "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.processes.append(process)
        return process

    def _munge_works(self) -> bool:
        encode = subprocess.run(["munge", "-n"], capture_output=True, check=False)
        return (
            encode.returncode == 0
            and subprocess.run(["unmunge"], input=encode.stdout, capture_output=True, check=False).returncode == 0
        )

    def start(self, timeout: float = 60) -> None:
        hardware = node_hardware()
        self.cpus, self.memory_mb = hardware["cpus"], hardware["memory_mb"]
        for directory in ("ctld", "spool"):
            (self.state / directory).mkdir(parents=True, exist_ok=True)
        if not self._munge_works():
            # munged refuses to run as root; it runs as the package's munge user.
            for directory in (
                MUNGE_SOCKET.parent,
                Path("/var/lib/munge"),
                Path("/var/log/munge"),
            ):
                directory.mkdir(parents=True, exist_ok=True)
                shutil.chown(directory, "munge", "munge")
            if not Path("/etc/munge/munge.key").exists():
                subprocess.run(["mungekey", "--create"], check=True)
                shutil.chown("/etc/munge/munge.key", "munge", "munge")
            self._spawn("munged", ["munged", "--foreground"], user="munge", group="munge")
            self._wait(self._munge_works, timeout, "munged to answer")
        self._write_etc(SLURM_CONF, slurm_conf(self.state, self.hostname, self.cpus, self.memory_mb))
        self._write_etc(GRES_CONF, f"NodeName={self.hostname} Name=npu Count={NPUS}\n")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-i"])
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.hostname])
        self._wait(self._node_idle, timeout, "the node to come up idle")

    def _node_idle(self) -> bool:
        done = subprocess.run(
            ["sinfo", "--noheader", "--format=%t", "--nodes", self.hostname],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.returncode == 0 and done.stdout.split()[:1] == ["idle"]

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [process.args[0] for process in self.processes if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "".join(
                    f"\n--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                    for path in sorted(self.state.glob("*.out")) + sorted(self.state.glob("*.log"))
                )
                ended = "exited: " + ", ".join(dead) if dead else f"{timeout} s passed"
                raise RuntimeError(f"SLURM test cluster: waited for {what}; {ended}{logs}")
            time.sleep(0.5)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge), as scontrol shows them."""
        out = subprocess.run(
            ["scontrol", "--oneliner", "show", "job"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        jobs = []
        for line in out.splitlines():
            if line.startswith("JobId="):
                fields = {}
                for item in line.split():
                    key, _, value = item.partition("=")
                    fields[key] = value
                jobs.append(fields)
        return jobs

    def stop(self) -> None:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, check=False)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        for path, content in self.saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        self.saved.clear()
