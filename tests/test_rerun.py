"""Re-running only what changed (docs/design.md): each rule's params hold exactly the config slice
it uses, and the library code its script imports. Checked on dry-run job tables
(`snakemake results/all -n --quiet rules`) and `--summary`, against copies of one complete
run of the tiny config; plus a run killed during a dump that resumes with the same results."""

import base64
import csv
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, copy_of, load, run_snakemake

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models

MODELS = ("tiny-bert", "tiny-convnext")
DUMPS = ("reference", "fp32/dump")


def config_of(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config.yaml").read_text())


def snakemake(workdir: Path, *args: str, config: dict | None = None, snakefile: Path = REPO / "Snakefile") -> str:
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        SNAKEMAKE,
        "--configfile",
        str(workdir / "config.yaml"),
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--cores",
        "1",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def planned_jobs(workdir: Path, **kwargs) -> dict[str, int]:
    """The dry-run's job table: {rule: count} ({} when nothing is to be done)."""
    out = snakemake(workdir, "results/all", "-n", "--quiet", "rules", **kwargs)
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def pending_outputs(workdir: Path, **kwargs) -> set[str]:
    """Files that `snakemake --summary` plans to update."""
    lines = snakemake(workdir, "--summary", **kwargs).splitlines()
    header = lines.index(next(line for line in lines if line.startswith("output_file\t")))
    rows = [line.split("\t") for line in lines[header + 1 :] if "\t" in line]
    return {row[0] for row in rows if row[-1] == "update pending"}


def test_after_a_complete_run_there_is_nothing_to_do(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    assert planned_jobs(workdir) == {}
    assert pending_outputs(workdir) == set()


def test_one_models_accuracy_thresholds_rerun_only_its_compare_and_reports(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    config = config_of(workdir)
    config["models"]["tiny-bert"]["accuracy"] = {"rel_l2_max": 0.02, "cosine_min": 0.98}
    assert planned_jobs(workdir, config=config) == {"compare": 1, "summarize": 1, "leaderboard": 1, "all": 1}
    pending = pending_outputs(workdir)
    assert "results/tiny-bert/fp32/compare.json" in pending and "results/tiny-bert/summary.json" in pending
    assert not [path for path in pending if "tiny-convnext" in path]
    assert not [path for path in pending if re.search(r"/(inputs|reference|dump)/|benchmark", path)]


def test_global_benchmark_batch_sizes_rerun_every_benchmark_and_no_dump(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    config = config_of(workdir)
    config["benchmark"]["batch_sizes"] = [1, 3]
    assert planned_jobs(workdir, config=config) == {"benchmark": 2, "summarize": 2, "leaderboard": 1, "all": 1}


def test_a_new_model_runs_only_its_own_jobs_plus_the_leaderboard(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    config = config_of(workdir)
    config["models"]["tiny-bert-long"] = {**config["models"]["tiny-bert"], "inputs": {"seq_len": 24}}
    per_model = ("fetch_weights", "make_inputs", "dump_reference", "dump_target", "compare", "benchmark", "summarize")
    assert planned_jobs(workdir, config=config) == {**dict.fromkeys(per_model, 1), "leaderboard": 1, "all": 1}
    pending = pending_outputs(workdir)
    assert "results/tiny-bert-long/summary.json" in pending and "results/leaderboard.csv" in pending
    assert not [path for path in pending if re.search(r"tiny-(bert|convnext)/", path)]


def test_a_removed_model_leaves_the_leaderboard(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    config = config_of(workdir)
    del config["models"]["tiny-convnext"]
    # The leaderboard's input set changed: Snakemake re-runs it (and only it, and all).
    assert planned_jobs(workdir, config=config) == {"leaderboard": 1, "all": 1}
    run_snakemake(workdir, "results/all", config=config)
    with open(workdir / "results/leaderboard.csv") as handle:
        assert [row["model"] for row in csv.DictReader(handle)] == ["tiny-bert"]
    assert "tiny-convnext" not in (workdir / "results/leaderboard.md").read_text()


def test_a_new_target_runs_only_its_own_jobs_never_the_reference_nor_the_other_target(tiny_run, tmp_path):
    workdir = copy_of(tiny_run, tmp_path)
    config = config_of(workdir)
    config["targets"] = {"fp32": {}, "bf16": {"device": "cpu", "dtype": "bfloat16"}}
    assert planned_jobs(workdir, config=config) == {
        "dump_target": 2,
        "compare": 2,
        "benchmark": 2,
        "summarize": 2,
        "leaderboard": 1,
        "all": 1,
    }
    pending = pending_outputs(workdir)
    assert "results/tiny-bert/bf16/compare.json" in pending and "results/tiny-convnext/bf16/benchmark.json" in pending
    assert not [path for path in pending if re.search(r"/(inputs|reference|fp32)/", path)]
    # One target's dtype changed: that target's jobs again, the other's never.
    config["targets"]["bf16"]["dtype"] = "float16"
    assert planned_jobs(workdir, config=config)["dump_target"] == 2
    assert not [path for path in pending_outputs(workdir) if re.search(r"/(inputs|reference|fp32)/", path)]


def test_editing_library_code_reruns_exactly_the_rules_that_import_it(tiny_run, tmp_path):
    # A checkout of the workflow (timestamps kept) whose library code we may edit.
    checkout = tmp_path / "checkout"
    for part in ("Snakefile", "rules", "scripts", "npu_adapt", "schemas", "profiles", "tests/data"):
        source, target = REPO / part, checkout / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    workdir = copy_of(tiny_run, tmp_path)
    snakefile = checkout / "Snakefile"
    assert planned_jobs(workdir, snakefile=snakefile) == {}
    # timing.py is imported (through npu_adapt.benchmark) by the benchmark script alone.
    with open(checkout / "npu_adapt/timing.py", "a") as handle:
        handle.write("\n# an edit\n")
    assert planned_jobs(workdir, snakefile=snakefile) == {"benchmark": 2, "summarize": 2, "leaderboard": 1, "all": 1}
    # The default criteria live in the schema, not in library code: a changed default re-judges.
    schema = checkout / "schemas/config.schema.yaml"
    text = schema.read_text()
    assert text.count("criteria: {rel_l2_max: 1.0e-4,") == 1
    schema.write_text(text.replace("criteria: {rel_l2_max: 1.0e-4,", "criteria: {rel_l2_max: 2.0e-4,"))
    jobs = planned_jobs(workdir, snakefile=snakefile)
    assert jobs == {"benchmark": 2, "compare": 2, "summarize": 2, "leaderboard": 1, "all": 1}
    # The adapters are imported by every job that loads a model (and by fetch_weights).
    with open(checkout / "npu_adapt/adapters/timm_image.py", "a") as handle:
        handle.write("\n# an edit\n")
    jobs = planned_jobs(workdir, snakefile=snakefile)
    assert jobs.pop("check_env", None) is None
    assert jobs == {
        "fetch_weights": 2,
        "make_inputs": 2,
        "dump_reference": 2,
        "dump_target": 2,
        "compare": 2,
        "benchmark": 2,
        "summarize": 2,
        "leaderboard": 1,
        "all": 1,
    }


def incomplete_outputs(workdir: Path) -> list[str]:
    """Outputs Snakemake marked as being written (.snakemake/incomplete, base64 names)."""
    folder = workdir / ".snakemake/incomplete"
    return [base64.b64decode(marker.name).decode() for marker in folder.glob("*")] if folder.exists() else []


def test_a_run_killed_during_a_dump_resumes_with_the_same_results(tiny_run, tmp_path):
    # A run that has yet to produce tiny-bert's results (its weights are there already).
    workdir = copy_of(tiny_run, tmp_path)
    shutil.rmtree(workdir / "results/tiny-bert")
    for name in ("all", "leaderboard.csv", "leaderboard.md", "leaderboard.html"):
        (workdir / "results" / name).unlink(missing_ok=True)
    command = [
        SNAKEMAKE,
        "--configfile",
        str(workdir / "config.yaml"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "1",
        "results/all",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # kill Snakemake and its job (SIGKILL: no clean-up) as soon as a dump is under way
        deadline = time.monotonic() + 120
        while not any(re.search(r"/(reference|target)/index\.json$", path) for path in incomplete_outputs(workdir)):
            assert process.poll() is None and time.monotonic() < deadline, "no dump started"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    interrupted = incomplete_outputs(workdir)  # the dump job's outputs: its index.json and its layer index.json
    assert len(interrupted) == 2 and all(
        re.search(r"tiny-bert/((layers/)?reference|fp32/(layers/)?dump)/index\.json$", path) for path in interrupted
    )

    # A killed Snakemake leaves its lock: release it, then redo the incomplete dump.
    run_snakemake(workdir, "--unlock")
    run_snakemake(workdir, "results/all", "--rerun-incomplete")
    assert incomplete_outputs(workdir) == []
    for model in MODELS:
        for role in DUMPS:
            resumed, original = (load(run / f"results/{model}/{role}/index.json") for run in (workdir, tiny_run))
            assert resumed["status"] == "ok"
            assert [(t["name"], t["sha256"]) for t in resumed["tensors"]] == [
                (t["name"], t["sha256"]) for t in original["tensors"]
            ]
        resumed, original = (load(run / f"results/{model}/fp32/compare.json") for run in (workdir, tiny_run))
        assert resumed["status"] == original["status"] == "self-check"  # CPU float32 on both sides
        assert resumed["outputs"] == original["outputs"]
