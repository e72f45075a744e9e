"""Every command the README shows works as written.

The commands are taken from the README itself (its ```bash blocks, and inline code that
starts with `snakemake` or `python -m npu_adapt`) and run in a copy of the workflow whose
config.yaml is the tiny test config, with the model names the README uses, after one real
run of it. A snakemake command whose dry run (`-n`) has nothing to do runs as written; one
that would re-run jobs is checked by its dry run (the plan must be valid). Commands with
`&&` run as written. Skipped, with the reason: `make` (builds the venv this suite runs in;
`make test` is this suite) and `pip install` (changes the environment)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import DATA, REPO, tiny_config

README = REPO / "README.md"
WORKFLOW = ["Snakefile", "rules", "scripts", "npu_adapt", "schemas", "envs", "profiles"]
EXECUTOR_PLUGINS = {
    "profiles/slurm": "snakemake_executor_plugin_slurm",
    "profiles/donau": "snakemake_executor_plugin_donau",
}
BIN = str(Path(sys.executable).parent)
RUN_FILES = {"all", "env.json", "env.log", "leaderboard.csv", "leaderboard.md", "leaderboard.html", "report.html"}


def readme_commands() -> list[str]:
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.strip().startswith("#"):
                commands.append(line.strip())
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    # Inline code that is a whole command (not a mention such as `python -m npu_adapt inspect`).
    commands += [
        span
        for span in re.findall(r"`([^`\n]+)`", prose)
        if span.startswith(("snakemake ", "python -m npu_adapt inspect "))
    ]
    return list(dict.fromkeys(commands))


def without_comment(command: str) -> str:
    return re.sub(r"\s+#.*$", "", command)


def skip_reason(command: str) -> str | None:
    if command.startswith("make "):
        return "make builds the venv these tests run in (and `make test` is this suite)"
    if command.startswith("pip "):
        return "pip install changes the environment the suite runs in"
    if command.startswith(("squeue ", "scancel ")):
        return "needs a running SLURM cluster (tests/test_slurm.py runs the cluster path and its interruption)"
    for profile, plugin in EXECUTOR_PLUGINS.items():
        if profile in command and importlib.util.find_spec(plugin) is None:
            return f"needs {plugin.replace('_', '-')} (not installed here)"
    return None


def readme_models() -> list[str]:
    """Every model name the README's commands use (results/NAME/..., weights/NAME/...)."""
    names = set()
    for command in readme_commands():
        names.update(re.findall(r"(?:results|weights)/([A-Za-z0-9][\w.-]*)(?=/|\s|$)", without_comment(command)))
    return sorted(names - RUN_FILES)


def run(command: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(cwd)}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the workflow with the README's model names on tiny models, run once."""
    directory = tmp_path_factory.mktemp("readme")
    for name in WORKFLOW:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, directory / name)
    shutil.copytree(DATA, directory / "tests" / "data")
    config = tiny_config(
        targets={"fp32": {"dtype": "float32"}, "bf16": {"dtype": "bfloat16"}},  # the default config's two
        benchmark={"batch_sizes": [1], "warmup": 1, "min_runs": 2, "max_runs": 3, "max_seconds": 0.2},
    )
    tiny = list(config["models"].values())
    config["models"] = {name: tiny[position % len(tiny)] for position, name in enumerate(readme_models())}
    # The commands use bf16 of convnextv2-atto alone: the other model keeps fp32 (three jobs fewer).
    for name, entry in config["models"].items():
        if name != "convnextv2-atto":
            config["models"][name] = {**entry, "targets": {"bf16": False}}
    (directory / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Placeholders the README's commands name: a small config, and two dumps to compare.
    (directory / "small.yaml").write_text(
        yaml.safe_dump({**config, "models": dict(list(config["models"].items())[:1])}, sort_keys=False)
    )
    done = run("snakemake --cores 2 results/all", directory, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    for name, dump in (("A.npy", "bf16/dump"), ("B.npy", "reference")):
        first = sorted((directory / f"results/convnextv2-atto/{dump}").glob("*.npy"))[0]
        np.save(directory / name, np.load(first))
    return directory


@pytest.mark.e2e
def test_the_readme_has_the_failure_and_resume_commands():
    commands = readme_commands()
    assert (
        "snakemake --unlock && snakemake --cores 1 results/all --rerun-incomplete   # resume after a hard kill"
        in commands
    )
    assert any("--config retry_blocked=true" in command for command in commands)
    assert any("--replace-workflow-config" in command for command in commands)
    assert not any(
        re.search(r"--forcerun fetch_weights\b", command) for command in commands
    )  # would re-fetch every model


@pytest.mark.e2e
@pytest.mark.parametrize("command", readme_commands())
def test_a_readme_command_works_as_written(checkout, command):
    if reason := skip_reason(command):
        pytest.skip(reason)
    command = without_comment(command)
    if command.startswith("snakemake ") and "&&" not in command and " -n" not in f"{command} ":
        dry = run(f"{command} -n", checkout)
        assert dry.returncode == 0, f"{command} -n failed:\n{dry.stdout[-2000:]}\n{dry.stderr[-3000:]}"
        if "Nothing to be done" not in dry.stdout + dry.stderr:
            planned = set(re.findall(r"wildcards: model=([\w.-]+)", dry.stdout + dry.stderr))
            if "--forcerun weights/" in command or "--forcerun results/" in command:
                forced = re.search(r"--forcerun (?:weights|results)/([\w.-]+)/", command).group(1)
                assert planned == {forced}, f"{command} plans jobs of {planned}, not only {forced}"
            return  # it would re-run jobs: its valid plan is the check
    done = run(command, checkout)
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
