"""Shared fixtures: run the real workflow (real Snakemake, real torch models) on tiny
configs in temporary directories."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from npu_adapt.jobs import GC_THRESHOLDS

# A test process imports torch and the model libraries as a job does, and runs the same
# library code: it collects garbage as a job does (npu_adapt.jobs.start_job).
gc.set_threshold(*GC_THRESHOLDS)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# The workflow's runs take up to two cores (CI has two): jobs of different models overlap, and
# a CPU benchmark job still runs alone in its run, taking every core it has (rules/common.smk
# benchmark_threads); `make test`'s other worker may run beside it.
# A test that passes its own `--cores N` after these arguments overrides it (the last one wins).
CORES = str(min(2, os.cpu_count() or 1))


# The module the perturbed run scales in its target (tests/test_accuracy.py, tests/test_layers.py).
PERTURBED = "encoder.layer.1.intermediate.dense"


def tiny_config(**overrides) -> dict:
    """The tiny test config (two random-init models), with top-level keys replaced."""
    config = yaml.safe_load((DATA / "tiny.yaml").read_text())
    config.update(overrides)
    return config


# The modules with the longest runs, longest first. `make test` runs two pytest-xdist workers,
# each taking whole modules (--dist loadfile) in collection order (--no-loadscope-reorder):
# started first, a long module runs beside the short ones instead of alone at the end.
LONGEST_FIRST = (
    "test_failures.py",
    "test_slurm.py",
    "test_readme_commands.py",
    "test_layers.py",
    "test_causal_lm.py",
    "test_rerun.py",
    "test_benchmark.py",
    "test_weights.py",
    "test_accuracy.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order


_running: list[pytest.Item] = []  # the test being set up or run


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before the test's fixtures, session ones included: a fixture's Snakemake run is
    # charged to the first test that asks for it.
    _running[:] = [item]


def run_snakemake(
    workdir: Path,
    *args: str,
    config: dict | None = None,
    env: dict | None = None,
    check: bool = True,
    max_file_bytes: int | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow of this repository in ``workdir`` (its results/, weights/, logs/).
    ``max_file_bytes``: no process of the run may write a larger file (RLIMIT_FSIZE: the
    write fails with EFBIG, as a full disk fails with ENOSPC)."""
    if _running and _running[0].get_closest_marker("e2e") is None:
        # The fast tier (`pytest -m "not e2e"`) stays fast only if every Snakemake run is e2e.
        raise pytest.UsageError(f"{_running[0].nodeid} runs Snakemake: mark it @pytest.mark.e2e")
    workdir.mkdir(parents=True, exist_ok=True)
    command = [SNAKEMAKE]
    if config is not None:
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        # --configfile takes several values: keep it before the other options and targets.
        command += ["--configfile", str(config_path)]
    command += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", CORES]

    def limit_file_size():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    done = subprocess.run(
        command + list(args),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=1800,
        preexec_fn=limit_file_size if max_file_bytes else None,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
        )
    return done


def copy_of(run: Path, parent: Path, name: str = "run") -> Path:
    """A copy of a complete run in ``parent/name`` (timestamps kept, so Snakemake sees it
    complete: a test that changes or re-runs something leaves the shared run as it was)."""
    return Path(shutil.copytree(run, parent / name, symlinks=True))


def load(path: Path):
    return json.loads(Path(path).read_text())


def shared_run(tmp_path_factory, name: str, make) -> Path:
    """The directory ``name`` where ``make(directory)`` ran once in this test session. Under
    pytest-xdist (`make test` runs two workers) each worker has a session of its own: the first
    to ask makes it in the folder the workers share, the others wait for it, and all only read
    it. A failed ``make`` leaves it unmade: the next worker to ask tries again (and fails alike)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # basetemp is the worker's own folder below the run's
    workdir, made = root / name, root / f"{name}.made"
    with FileLock(f"{workdir}.lock"):
        if not made.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            make(workdir)
            made.touch()
    return workdir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One complete run of the tiny config (CPU float32 target); tests only read it."""
    return shared_run(
        tmp_path_factory, "tiny_run", lambda workdir: run_snakemake(workdir, "results/all", config=tiny_config())
    )


@pytest.fixture(scope="session")
def perturbed_run(tmp_path_factory) -> Path:
    """One run of three copies of tiny-bert in float32 on both sides (CPU), PERTURBED's output
    scaled by 1.5 in every target (the test seam); they differ in how their layers are captured:
    - ``tiny-bert``: every leaf module (``layers: true``), limited to the encoder by
      layer_pattern (tests/test_accuracy.py);
    - ``bert-auto``: ``auto`` above a (lowered) parameter threshold, so statistics with inputs;
    - ``bert-big``: ``tensors`` under a size limit that refuses it (both tests/test_layers.py).
    Each test reads its own model's results (one job chain per model: the models share no job,
    and the run writes no leaderboard); tests only read it."""
    config = tiny_config(targets={"fp32": {"device": "cpu", "dtype": "float32"}})
    bert = config["models"]["tiny-bert"]
    config["models"] = {
        "tiny-bert": {**bert, "layers": True, "layer_pattern": r"^encoder\."},
        "bert-auto": {**bert, "layers_auto_params": 1000, "layer_inputs": True},
        "bert-big": {**bert, "layers": "tensors", "layers_max_bytes": 100_000},
    }
    targets = (
        "results/tiny-bert/fp32/compare.json",
        "results/bert-auto/summary.json",  # the card of one model is enough
        "results/bert-big/fp32/compare.json",
    )
    env = {"NPU_ADAPT_PERTURB_LAYER": f"{PERTURBED}:1.5"}
    return shared_run(
        tmp_path_factory, "perturbed_run", lambda workdir: run_snakemake(workdir, *targets, config=config, env=env)
    )


@pytest.fixture(scope="session")
def broken_run(tmp_path_factory) -> Path:
    """One run of tests/broken_models.py (`snakemake --cores 2 results/all`, offline, the device
    refusing batch size 4 and up, no file over MAX_FILE_BYTES); tests only read it."""
    from broken_models import FAKE_OOM, MAX_FILE_BYTES, broken_config

    def make(workdir: Path) -> None:
        # check=True: the run exits 0 although most of its models are blocked or fail.
        run_snakemake(
            workdir, "results/all", "--cores", "2", config=broken_config(), env=FAKE_OOM, max_file_bytes=MAX_FILE_BYTES
        )

    return shared_run(tmp_path_factory, "broken_run", make)
