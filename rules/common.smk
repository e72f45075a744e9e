# Config access for the rules: merged per-model settings, the exact config slice each rule
# depends on (so editing one model re-runs only that model), and library code fingerprints.

import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.settings.types import ExecMode

from npu_adapt import devices
from npu_adapt.config import (
    MODEL_KEY,
    TARGET_KEY,
    ConfigError,
    benchmark_settings,
    by_model,
    model_targets,
    run_config,
)
from npu_adapt.config import merged as merged_section
from npu_adapt.config_types import config_schema
from npu_adapt.weights.sources import Source

WORKFLOW_DIR = Path(workflow.basedir)
# The default accuracy criteria per compute dtype, defined in the schema alone: the schema is
# not library code, so the compare rule carries them as a param of their own.
DTYPE_CRITERIA = config_schema()["$defs"]["dtype_criteria"]
WEIGHTS_DIR = config["weights_dir"]
MODELS = sorted(config["models"])

# Jobs import the npu_adapt library from this checkout, also in a conda env (--use-conda)
# where it is not installed: Snakemake's script preamble only adds scripts/ to sys.path.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [str(WORKFLOW_DIR), os.environ.get("PYTHONPATH")])
    )
)
# Each model's entry, and its targets by name (config order): the global targets: with the
# model's own changes. A name that is not configured (a typo in a requested path) is a
# ConfigError naming the nearest ones (npu_adapt.config.ByName).
MODEL_ENTRIES = by_model(config["models"])
TARGETS = by_model({model: model_targets(config, model) for model in MODELS})


def target_kind(model, target):
    """npu, cuda or cpu: the device kind the target runs on here (auto detected torch-free)."""
    return devices.accelerator_kind(TARGETS[model][target].device)


def per_target(pattern):
    """``pattern`` (with {model} and {target}) for every model and each of its targets."""
    return [
        pattern.format(model=model, target=target)
        for model in MODELS
        for target in TARGETS[model]
    ]


def model_target_files(pattern):
    """An input function: ``pattern`` for each of the model's targets, in config order (the
    summarize script pairs them with params.targets)."""

    def files(wildcards):
        return [
            pattern.format(model=wildcards.model, target=target)
            for target in TARGETS[wildcards.model]
        ]

    return files


# With --use-conda, a run with an NPU target runs in envs/npu.yaml (the torch that torch_npu
# was built for), anything else in envs/cpu.yaml.
CONDA_ENV = str(
    WORKFLOW_DIR
    / "envs"
    / (
        "npu.yaml"
        if any(target_kind(m, t) == "npu" for m in MODELS for t in TARGETS[m])
        else "cpu.yaml"
    )
)


def check_models():
    """Config errors that a JSON schema cannot express, raised before any job runs."""
    for model, entry in config["models"].items():
        try:  # the schema checks the scheme; the name's shape is Source's to say
            Source.parse(entry["source"])
        except ValueError as exc:
            raise ConfigError(f"config.yaml: models.{model}.source: {exc}") from None
        needs_arch = (
            entry["family"] != "timm_image" and entry["fallback"] == "random-init"
        )
        if needs_arch and "arch_config" not in entry:
            raise ConfigError(
                f"config.yaml: models.{model}.arch_config is required with fallback: random-init"
            )
        arch = entry.get("arch_config")
        if arch and not (WORKFLOW_DIR / arch).is_file():
            raise ConfigError(
                f"config.yaml: models.{model}.arch_config: no file {WORKFLOW_DIR / arch}"
            )
        try:
            re.compile(entry.get("layer_pattern", ""))
        except re.error as exc:
            raise ConfigError(
                f"config.yaml: models.{model}.layer_pattern: not a regular expression: {exc}"
            )
        try:
            benchmark_settings(config, model)
        except ConfigError as exc:
            raise ConfigError(f"config.yaml: {exc}") from None


check_models()


def status_documents(model):
    """The outputs that record whether one of a model's stages went through (``status``)."""
    yield f"{WEIGHTS_DIR}/{model}/manifest.json"
    for stage in ("inputs/index.json", "reference/index.json"):
        yield f"results/{model}/{stage}"
    for dtype in cpu_same_dtypes(model):
        yield f"results/{model}/cpu-same-dtype/{dtype}/index.json"
    for target in TARGETS[model]:
        for stage in (
            "dump/index.json",
            "compare.json",
            "benchmark.json",
            "layers/compare.json",
        ):
            yield f"results/{model}/{target}/{stage}"
    # summary.json too: Snakemake re-makes a missing file only for a job that must run.
    yield f"results/{model}/summary.json"


def dry_run_requested():
    """Snakemake chooses its executor (dry-run or not) after reading the Snakefile, so the
    command line is the only way to know here."""
    flags = ("--dry-run", "--dryrun", "--just-print")
    return any(
        arg in flags or re.fullmatch(r"-[A-Za-z]*n[A-Za-z]*", arg)
        for arg in sys.argv[1:]
    )


def retry_blocked():
    """``--config retry_blocked=true``: move every blocked stage's output aside (to
    ``NAME.blocked``, keeping its reason readable) and remove the run manifest results/all
    before Snakemake plans the run, so those jobs and the ones after them run again (for
    the target results/all) and nothing else does. Only in the main
    process (cluster jobs read this file too), and never in a dry run (it lists them).
    """
    blocked = [
        path
        for model in MODELS
        for path in status_documents(model)
        if os.path.isfile(path)
        and json.loads(Path(path).read_text()).get("status") == "blocked"
    ]
    if not blocked:
        logger.info("retry_blocked: no blocked stage to re-run")
    elif dry_run_requested():
        logger.info(
            f"retry_blocked: a real run re-runs {len(blocked)} blocked stages: {' '.join(blocked)}"
        )
    else:
        logger.info(
            f"retry_blocked: re-running {len(blocked)} blocked stages: {' '.join(blocked)}"
        )
        for path in blocked:
            os.replace(path, f"{path}.blocked")
        # Snakemake re-makes missing files only for jobs that must run: without the run
        # manifest, the default target results/all must, and so must the moved stages.
        if os.path.isfile("results/all"):
            os.remove("results/all")


def canonical(value):
    """JSON with sorted keys: a stable params value whose change triggers a re-run."""
    return json.dumps(value, sort_keys=True)


def merged(model, section):
    """A global section (accuracy, benchmark, reference) with the model's overrides
    (npu_adapt.config.merged: the one place the merge is written)."""
    return merged_section(config, model, section)


def target_placement(wildcards):
    """The dump_target / benchmark params: the target's placement (device, dtype, precision)."""
    return canonical(TARGETS[wildcards.model][wildcards.target].as_dict())


def cpu_same_dtype_reason(model, target):
    """Why a target has no CPU same-dtype yardstick (its error budget), or None when it has one:
    only a target on an accelerator does, and not where that CPU run is the reference itself.
    """
    placement, reference = TARGETS[model][target], merged(model, "reference")
    if target_kind(model, target) == "cpu":
        return "the target runs on the CPU: it is itself the CPU run in its dtype"
    if (
        devices.accelerator_kind(reference["device"]) == "cpu"
        and reference["dtype"] == placement.dtype
    ):
        return f"the reference is the CPU run in {placement.dtype}: the target's rel_l2 is its error budget"
    return None


def cpu_same_dtypes(model):
    """The dtypes of the model's CPU same-dtype runs: one per dtype, shared by its targets."""
    return sorted(
        {
            TARGETS[model][target].dtype
            for target in TARGETS[model]
            if cpu_same_dtype_reason(model, target) is None
        }
    )


def cpu_same_dtype_dump(wildcards):
    """compare's yardstick input: the CPU run in the target's dtype, when the target has one."""
    if cpu_same_dtype_reason(wildcards.model, wildcards.target) is not None:
        return []
    dtype = TARGETS[wildcards.model][wildcards.target].dtype
    return [f"results/{wildcards.model}/cpu-same-dtype/{dtype}/index.json"]


# The model keys of the layer capture (npu_adapt.layers.settings), params of both dump rules.
LAYER_KEYS = (
    "layers",
    "layer_pattern",
    "layer_kinds",
    "layer_inputs",
    "layers_max_bytes",
    "layers_auto_params",
)


def model_entry(model, *keys):
    entry = MODEL_ENTRIES[model]
    return {key: entry[key] for key in keys if key in entry}


@functools.cache  # three rules run dump_outputs.py: its files are followed once per parse
def library_code(script):
    """Fingerprint of the library code that ``scripts/{script}`` reaches, module by module
    and name by name (npu_adapt.fingerprints). A param, so editing a module re-runs exactly
    the rules whose scripts use it (Snakemake itself tracks the script file)."""
    from npu_adapt import fingerprints

    return fingerprints.library_code(WORKFLOW_DIR, WORKFLOW_DIR / "scripts" / script)


def file_digest(relative_path):
    """sha256 of a file of the workflow (e.g. a model's arch_config), or None when unset."""
    if not relative_path:
        return None
    return hashlib.sha256((WORKFLOW_DIR / relative_path).read_bytes()).hexdigest()[:16]


def device_slots(role, kind):
    """A job's ``resources:`` value for the devices of ``kind`` (npu, cuda): 1 when the
    job's placement (``role``: the model's reference, or the job's {target}) runs on that
    kind, else 0. So `--resources npu=8` runs eight NPU jobs at once, each on a device of its
    own (devices.acquire_device in the job). For ``device: auto`` the kind is detected
    without importing torch (devices.accelerator_kind): torch_npu installed and
    /dev/davinci* present means npu, /dev/nvidia* means cuda, else the CPU: no device
    resource."""

    def slots(wildcards):
        if role == "target":
            return int(target_kind(wildcards.model, wildcards.target) == kind)
        device = merged(wildcards.model, role)["device"]
        return int(devices.accelerator_kind(device) == kind)

    return slots


def benchmark_threads(wildcards):
    """The benchmark job's threads (Snakemake's OMP_NUM_THREADS, torch's thread count, SLURM's
    --cpus-per-task): `benchmark.threads` when set. Unset (null), an accelerator target takes
    one host thread, so `--resources npu=8` benchmarks eight models at once, one per device,
    and a CPU target every core given to the run (`--cores`), so no other job shares them
    while it is timed. A cluster executor has no such number (`--cores`, if given at all,
    counts cores over the whole cluster, not of one node): there the profile's
    `set-threads: benchmark: N`, which Snakemake applies in place of this function, or
    `benchmark.threads` say it; without either the run stops before any job is submitted
    (benchmark_threads_checked)."""
    threads = merged(wildcards.model, "benchmark").get("threads")
    if threads is not None:
        return threads
    if target_kind(wildcards.model, wildcards.target) != "cpu":
        return 1
    if not workflow.local_exec or workflow.resource_settings.cores is None:
        raise ConfigError(benchmark_threads_missing(wildcards.model))
    return workflow.cores


def benchmark_threads_missing(model):
    return (
        f"models.{model}: a CPU target's benchmark needs its thread count on a cluster executor: "
        "set benchmark.threads in the config, or `set-threads: {benchmark: N}` in the profile "
        "(N: the cores of one CPU node the job may use)"
    )


def benchmark_threads_checked():
    """Under a cluster executor, stop before the first job is submitted when a CPU-target
    model has no thread count for its benchmark, rather than at its first benchmark job,
    hours in. Called on start: the executor is not known while the Snakefile is read."""
    if (
        workflow.local_exec
        or "benchmark" in workflow.resource_settings.overwrite_threads
    ):
        return
    for model in MODELS:
        cpu_target = any(
            target_kind(model, target) == "cpu" for target in TARGETS[model]
        )
        if cpu_target and merged(model, "benchmark").get("threads") is None:
            raise ConfigError(benchmark_threads_missing(model))


# The workflow's only onstart handler (Snakemake keeps one): runs in a real run, after
# planning and before any job; not in a dry run, nor in the cluster jobs (--no-hooks).
onstart:
    benchmark_threads_checked()


# Last: retry_blocked reads the stage files that status_documents names, which needs every
# function above (the targets and their CPU same-dtype runs).
if (
    str(config["retry_blocked"]).lower() == "true"
    and workflow.exec_mode == ExecMode.DEFAULT
):
    retry_blocked()
