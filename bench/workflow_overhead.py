"""The workflow's own cost around the model work, at 1 model and at 500 (issue 8).

Measures, side by side in one run on this machine, and prints Markdown tables (for
bench/RESULTS.md) with a verdict per target:

1. per-job fixed cost: every job of complete runs of the tiny config (one transformers and
   one timm model, random-init, CPU; the CPU baseline on), each job's wall time as
   Snakemake's own ``benchmark:`` directive records it (benchmarks/{model}/{rule}.tsv: the
   job from start to end, its script process included), minus the model work the job
   logged (``forward_seconds`` of the dump index.json; ``elapsed_s`` of every benchmark.json
   row, the CPU baseline's included), against a bare ``python -c "import torch"`` timed
   before each run. Target: <= 1.5x the bare import for the jobs that import timm or
   transformers;
2. planning: ``snakemake results/all -n`` on generated configs of 100 and 500 models
   (synthetic entries, nothing run). Targets: < 5 s and < 15 s;
3. no-op: ``snakemake results/all`` after a complete run of 100 tiny models (kept in the
   work directory between invocations; completed first where it is not). Target: < 5 s;
4. model loads: per job, how often each model's weight files are opened for reading and
   how many bytes come through read(2) and through mmap(2), from an ``strace -f`` of one
   complete tiny run; a model is built from its weights at most once per job;
5. where the fixed cost of a model job goes: ``python -X importtime`` of one dump_target
   job per family (the job's own generated script, Snakemake preamble included), and which
   model libraries each job imports.

Why Snakemake's ``benchmark:`` directive for the per-job times: a timer outside Snakemake
sees only whole invocations (DAG building and scheduling included); the directive times
each job, costs nothing, and leaves the same figures after every real run.

    .venv/bin/python bench/workflow_overhead.py [--repeats 3] [--plan-sizes 100 500]
        [--noop-models 100] [--workdir DIR] [--only jobs plan noop loads imports]

The first run with ``noop`` runs 100 tiny models end to end (about half an hour on 2 cores);
later runs reuse that work directory and only re-run what changed.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
TARGET = "fp32"  # the tiny config's one target (the schema's default targets:)
TINY = REPO / "tests" / "data" / "tiny.yaml"
SECTIONS = ("jobs", "plan", "noop", "loads", "imports")

JOB_RATIO_MAX = 1.5  # fixed cost of a timm / transformers job, in bare `import torch`s
PLAN_MAX_S = {100: 5.0, 500: 15.0}
NOOP_MAX_S = 5.0
# Jobs that build the model (they import its family's library: timm or transformers).
MODEL_RULES = ("fetch_weights", "dump_reference", "dump_target", "benchmark")
RULE_ORDER = (
    "check_env",
    "fetch_weights",
    "make_inputs",
    "dump_reference",
    "dump_target",
    "compare",
    "benchmark",
    "summarize",
    "leaderboard",
    "all",
)
FAMILY_LIBRARIES = {"timm_image": "timm", "hf_encoder": "transformers", "hf_seq2seq": "transformers"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# Imports worth naming in the profile: the family libraries and what they pull in.
NOTABLE_IMPORTS = (
    "torch",
    "timm",
    "transformers",
    "torchvision",
    "torch._dynamo",
    "scipy",
    "sympy",
    "huggingface_hub",
    "safetensors",
    "PIL",
    "matplotlib",
    "numpy",
    "snakemake",
    "npu_adapt",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return elapsed, done


def snakemake(workdir: Path, config: Path, *args: str, cores: int = 1) -> list[str]:
    return [
        SNAKEMAKE,
        "--configfile",
        str(config),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        *args,
    ]


def import_seconds(statement: str = "import torch") -> float:
    return timed([sys.executable, "-c", statement])[0]


def library_import(entry: dict) -> str:
    """The statement importing exactly what a job of this model's family needs: torch and
    timm, or torch and the transformers model class (its module, loaded lazily)."""
    if entry["family"] == "timm_image":
        return "import torch, timm"
    architectures = json.loads((REPO / entry["arch_config"]).read_text()).get("architectures") or ["AutoModel"]
    return f"import torch, transformers; transformers.{architectures[0]}"


def write_config(path: Path, config: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tiny_config(baseline: str = "cpu") -> dict:
    config = yaml.safe_load(TINY.read_text())
    config["benchmark"] = {**config.get("benchmark", {}), "baseline": baseline}
    return config


def synthetic_config(models: int) -> dict:
    """``models`` tiny random-init entries, alternating the transformers and the timm model
    of the tiny config, with the cheapest benchmark settings the schema allows."""
    base = yaml.safe_load(TINY.read_text())
    kinds = [(name, entry) for name, entry in base["models"].items()]
    entries = {}
    for index in range(models):
        name, entry = kinds[index % len(kinds)]
        entries[f"m{index:04d}-{name}"] = dict(entry)
    benchmark = {"batch_sizes": [1], "warmup": 0, "min_runs": 2, "max_runs": 2, "max_seconds": 0.1}
    return {**base, "benchmark": benchmark, "models": entries}


# -- 1. per-job fixed cost ------------------------------------------------------------------


def model_work(workdir: Path, model: str, rule: str) -> float:
    """Seconds of model work a job logged: forward passes (dump) or timed phases (benchmark)."""
    results = workdir / "results" / model
    if rule in ("dump_reference", "dump_target"):
        dump = "reference" if rule == "dump_reference" else f"{TARGET}/dump"
        index = json.loads((results / dump / "index.json").read_text())
        return index.get("forward_seconds") or 0.0
    if rule == "benchmark":
        document = json.loads((results / TARGET / "benchmark.json").read_text())
        rows = document["results"] + ((document.get("baseline") or {}).get("results") or [])
        return sum(row.get("elapsed_s") or 0.0 for row in rows)
    return 0.0


def job_walls(workdir: Path) -> dict[tuple[str, str], float]:
    """(model or "", rule) -> wall seconds of the job, from Snakemake's benchmark files."""
    walls = {}
    for path in (workdir / "benchmarks").rglob("*.tsv"):
        with open(path) as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        parts = path.relative_to(workdir / "benchmarks").parts  # [model, [target,]] rule.tsv
        model = parts[0] if len(parts) > 1 else ""
        walls[(model, path.stem)] = float(row["s"])
    return walls


def measure_jobs(root: Path, repeats: int) -> dict:
    config = tiny_config()
    families = {name: entry["family"] for name, entry in config["models"].items()}
    config_path = write_config(root / "tiny.yaml", config)
    workdir = root / "tiny"
    shutil.rmtree(workdir, ignore_errors=True)
    statements = {name: library_import(entry) for name, entry in config["models"].items()}
    imports, library_imports, runs, totals = [], defaultdict(list), [], []
    for repeat in range(repeats):
        imports += [import_seconds() for _ in range(3)]
        for statement in set(statements.values()):
            library_imports[statement].append(import_seconds(statement))
        log(f"jobs: complete tiny run {repeat + 1}/{repeats}")
        elapsed, _ = timed(snakemake(workdir, config_path, "--forceall", "results/all"))
        totals.append(elapsed)
        walls = job_walls(workdir)
        runs.append({key: (wall, model_work(workdir, key[0], key[1])) for key, wall in walls.items()})
    imports += [import_seconds() for _ in range(3)]
    bare = median(imports)
    floors = {statement: median(times) for statement, times in library_imports.items()}
    rows = []
    for key in sorted(runs[0], key=lambda key: (key[0], RULE_ORDER.index(key[1]) if key[1] in RULE_ORDER else 99)):
        model, rule = key
        walls = [run[key][0] for run in runs if key in run]
        works = [run[key][1] for run in runs if key in run]
        fixed = median([wall - work for wall, work in zip(walls, works)])
        family = families.get(model)
        builds = rule in MODEL_RULES and family is not None
        rows.append(
            {
                "model": model or "(all models)",
                "library": FAMILY_LIBRARIES.get(family, "-") if family else "-",
                "rule": rule,
                "wall_s": median(walls),
                "work_s": median(works),
                "fixed_s": fixed,
                "ratio": fixed / bare,
                "target": builds,
                "library_import_s": floors[statements[model]] if builds else None,
            }
        )
    return {
        "bare_import_s": bare,
        "bare_import_runs": imports,
        "library_imports_s": floors,
        "rows": rows,
        "run_totals_s": totals,
        "sum_of_jobs_s": median([sum(w for w, _ in run.values()) for run in runs]),
    }


def print_jobs(result: dict) -> None:
    bare = result["bare_import_s"]
    print(
        f"\n### Per-job fixed cost (tiny config, medians of {len(result['run_totals_s'])} complete runs, `--cores 1`)\n"
    )
    print(
        f'Bare `python -c "import torch"`: **{bare:.2f} s** '
        f"(median of {len(result['bare_import_runs'])}, timed between the runs).  "
    )
    for statement, seconds in sorted(result["library_imports_s"].items()):
        print(
            f'What a model job needs, `python -c "{statement}"`: **{seconds:.2f} s** '
            f"({seconds / bare:.2f}x the bare import).  "
        )
    print(
        "\nFixed cost = job wall - model work. Beyond its libraries = fixed cost - the import of what the job needs.\n"
    )
    print(
        "| model | library | rule | job wall (s) | model work (s) | fixed cost (s) | x bare import "
        "| target (<= 1.5x) | beyond its libraries (s) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    for row in result["rows"]:
        verdict = ("ok" if row["ratio"] <= JOB_RATIO_MAX else "**over**") if row["target"] else "-"
        beyond = "-" if row["library_import_s"] is None else f"{row['fixed_s'] - row['library_import_s']:.2f}"
        print(
            f"| {row['model']} | {row['library']} | {row['rule']} | {row['wall_s']:.2f} | {row['work_s']:.3f} "
            f"| {row['fixed_s']:.2f} | {row['ratio']:.2f} | {verdict} | {beyond} |"
        )
    total, jobs = median(result["run_totals_s"]), result["sum_of_jobs_s"]
    print(
        f"\nWhole run: {total:.1f} s wall, of which the jobs {jobs:.1f} s; "
        f"Snakemake's own start, DAG and scheduling {total - jobs:.1f} s."
    )


# -- 2. planning ------------------------------------------------------------------------------


def measure_plan(root: Path, sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        config_path = write_config(root / f"plan{size}.yaml", synthetic_config(size))
        workdir = root / f"plan{size}"
        workdir.mkdir(parents=True, exist_ok=True)
        times, jobs = [], None
        for repeat in range(repeats):
            log(f"plan: {size} models, dry run {repeat + 1}/{repeats}")
            elapsed, done = timed(snakemake(workdir, config_path, "-n", "results/all"))
            times.append(elapsed)
            jobs = planned_jobs(done.stdout)
        rows.append({"models": size, "jobs": jobs, "seconds": median(times), "runs": times})
    return rows


def planned_jobs(output: str) -> int | None:
    match = re.search(r"^total\s+(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else None


def print_plan(rows: list[dict]) -> None:
    print("\n### Planning: `snakemake results/all -n` (synthetic tiny models, nothing run)\n")
    print("| models | jobs planned | seconds (median) | runs | target |")
    print("|---:|---:|---:|---|---|")
    for row in rows:
        limit = PLAN_MAX_S.get(row["models"])
        verdict = "-" if limit is None else ("ok" if row["seconds"] < limit else "**over**") + f" (< {limit:g} s)"
        print(
            f"| {row['models']} | {row['jobs']} | {row['seconds']:.2f} "
            f"| {', '.join(f'{t:.2f}' for t in row['runs'])} | {verdict} |"
        )


# -- 3. no-op ---------------------------------------------------------------------------------


def measure_noop(root: Path, models: int, repeats: int, cores: int) -> dict:
    config_path = write_config(root / f"noop{models}.yaml", synthetic_config(models))
    workdir = root / f"noop{models}"
    _, dry = timed(snakemake(workdir, config_path, "-n", "results/all"))
    pending = planned_jobs(dry.stdout)
    if pending:
        log(
            f"noop: completing the run of {models} tiny models ({pending} jobs to run, --cores {cores}); "
            "this takes a while"
        )
        elapsed, _ = timed(snakemake(workdir, config_path, "--keep-going", "results/all", cores=cores))
        log(f"noop: complete run took {elapsed:.0f} s")
    times = []
    for _ in range(repeats):
        elapsed, done = timed(snakemake(workdir, config_path, "results/all"))
        text = done.stdout + done.stderr
        if "Nothing to be done" not in text:
            raise RuntimeError(f"the no-op run of {models} models ran jobs:\n{text[-3000:]}")
        times.append(elapsed)
    return {"models": models, "seconds": median(times), "runs": times, "completed_jobs": pending or 0}


def print_noop(result: dict) -> None:
    verdict = ("ok" if result["seconds"] < NOOP_MAX_S else "**over**") + f" (< {NOOP_MAX_S:g} s)"
    print(f"\n### No-op: `snakemake results/all` with all outputs of {result['models']} tiny models up to date\n")
    print("| models | seconds (median) | runs | target |")
    print("|---:|---:|---|---|")
    print(
        f"| {result['models']} | {result['seconds']:.2f} "
        f"| {', '.join(f'{t:.2f}' for t in result['runs'])} | {verdict} |"
    )


# -- 4. model loads ---------------------------------------------------------------------------

TRACE_LINE = re.compile(r"^(\d+)\s+(.*)$")
CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(\S+)")
UNFINISHED = re.compile(r"^(\w+)\((.*) <unfinished \.\.\.>$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(\S+)")
FD_PATH = re.compile(r"^(\d+)<([^>]*)>")
LOG_PATH = re.compile(r'"(?:[^"]*/)?logs/(?:([^"/]+)/)?([^"/]+)\.log"')


def trace_calls(path: Path):
    """(pid, syscall, arguments, return value) of every complete call in an strace -f log,
    interrupted calls joined with their resumption."""
    pending = {}
    with open(path, errors="replace") as handle:
        for line in handle:
            match = TRACE_LINE.match(line.rstrip("\n"))
            if not match:
                continue
            pid, rest = int(match.group(1)), match.group(2)
            if unfinished := UNFINISHED.match(rest):
                pending[pid] = (unfinished.group(1), unfinished.group(2))
                continue
            if resumed := RESUMED.match(rest):
                name, head = pending.pop(pid, (resumed.group(1), ""))
                yield pid, name, head + resumed.group(2), resumed.group(3)
                continue
            if call := CALL.match(rest):
                yield pid, call.group(1), call.group(2), call.group(3)


def weight_reads(trace: Path, weights_root: Path) -> dict:
    """Per (model, rule) job: opens of weight files for reading, bytes read, bytes mapped."""
    parent, job_of_pid = {}, {}
    usage = defaultdict(lambda: {"opens": 0, "read_bytes": 0, "mmap_bytes": 0, "mmaps": 0, "files": set()})
    root = str(weights_root) + os.sep

    def is_weight_file(path: str) -> bool:
        return path.startswith(root) and path.endswith(WEIGHT_SUFFIXES)

    def model_of(path: str) -> str:
        return path[len(root) :].split(os.sep, 1)[0]

    for pid, name, args, result in trace_calls(trace):
        if name in ("clone", "clone3", "fork", "vfork") and result.isdigit():
            parent[int(result)] = pid
        elif name == "openat" and (opened := FD_PATH.match(result)):  # -y: "3</absolute/path>"
            path = opened.group(2)
            if (found := LOG_PATH.search(f'"{path}"')) and ("O_WRONLY" in args or "O_APPEND" in args):
                job_of_pid.setdefault(pid, (found.group(1) or "", found.group(2)))
            elif is_weight_file(path) and "O_RDONLY" in args:
                usage[(pid, model_of(path))]["opens"] += 1
                usage[(pid, model_of(path))]["files"].add(path)
        elif name in ("read", "pread64"):
            fd = FD_PATH.match(args)
            if fd and is_weight_file(fd.group(2)) and result.isdigit():
                usage[(pid, model_of(fd.group(2)))]["read_bytes"] += int(result)
        elif name == "mmap":
            fields = [field.strip() for field in args.split(",")]
            fd = FD_PATH.match(fields[4]) if len(fields) > 4 else None
            if fd and is_weight_file(fd.group(2)) and result.startswith("0x"):
                usage[(pid, model_of(fd.group(2)))]["mmap_bytes"] += int(fields[1])
                usage[(pid, model_of(fd.group(2)))]["mmaps"] += 1

    def job(pid: int):
        seen = set()
        while pid not in job_of_pid and pid in parent and pid not in seen:
            seen.add(pid)
            pid = parent[pid]
        return job_of_pid.get(pid, ("", "snakemake (not a job)"))

    jobs = defaultdict(lambda: {"opens": 0, "read_bytes": 0, "mmap_bytes": 0, "mmaps": 0, "files": set()})
    for (pid, model), counts in usage.items():
        _, rule = job(pid)
        entry = jobs[(model, rule)]
        for key in ("opens", "read_bytes", "mmap_bytes", "mmaps"):
            entry[key] += counts[key]
        entry["files"] |= counts["files"]
    return jobs


def measure_loads(root: Path) -> dict:
    strace = shutil.which("strace")
    if strace is None:
        return {"error": "strace is not installed: the weight reads cannot be traced here"}
    config_path = write_config(root / "loads.yaml", tiny_config())
    workdir = root / "loads"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    trace = root / "loads.strace"
    log("loads: complete tiny run under strace -f")
    command = [
        strace,
        "-f",
        "-qq",
        "-y",
        "-s",
        "0",
        "-e",
        "signal=none",
        "-o",
        str(trace),
        "-e",
        "trace=openat,read,pread64,mmap,clone,clone3,fork,vfork",
    ]
    timed(command + snakemake(workdir, config_path, "results/all"))
    weights_root = (workdir / "weights").resolve()
    jobs = weight_reads(trace, weights_root)
    sizes = {}
    for model_dir in weights_root.iterdir():
        manifest = json.loads((model_dir / "manifest.json").read_text())
        sizes[model_dir.name] = sum(
            item["bytes"] for item in manifest["files"] if item["path"].endswith(WEIGHT_SUFFIXES)
        )
    # Builds from the weights: the line npu_adapt.runner.LoadedModel logs for each.
    for log_path in (workdir / "logs").glob("*/*.log"):
        builds = log_path.read_text().count(" from its weights in ")
        if builds or (log_path.parent.name, log_path.stem) in jobs:
            jobs[(log_path.parent.name, log_path.stem)]["builds"] = builds
    return {
        "jobs": {
            f"{model}|{rule}": {**counts, "files": sorted(counts["files"])} for (model, rule), counts in jobs.items()
        },
        "weight_bytes": sizes,
    }


def print_loads(result: dict) -> None:
    print("\n### Model loads: weight files read per complete tiny run (CPU baseline on)\n")
    if "error" in result:
        print(result["error"])
        return
    print("Builds: the line each build from the weights logs (npu_adapt.runner.LoadedModel). Opens, read(2)")
    print("and mmap(2): every such call on a weight file in the job's processes, from `strace -f -y`.\n")
    print(
        "| model | weight bytes | job | builds from weights | opened for reading | read(2) bytes "
        "| mmap(2) calls | bytes mapped | target |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    totals = defaultdict(lambda: [0, 0])
    for key in sorted(
        result["jobs"],
        key=lambda key: (
            key.split("|")[0],
            RULE_ORDER.index(key.split("|")[1]) if key.split("|")[1] in RULE_ORDER else 99,
        ),
    ):
        model, rule = key.split("|")
        counts = result["jobs"][key]
        builds = counts.get("builds", 0)
        size = result["weight_bytes"].get(model, 0)
        totals[model][0] += builds
        totals[model][1] += counts["read_bytes"] + builds * size
        verdict = (
            "ok"
            if builds <= 1 and (not builds or counts["mmaps"])
            else ("**built more than once**" if builds > 1 else "**not memory-mapped**")
        )
        print(
            f"| {model} | {size} | {rule} | {builds} | {counts['opens']} | {counts['read_bytes']} "
            f"| {counts['mmaps']} | {counts['mmap_bytes']} | {verdict} |"
        )
    print()
    for model, (builds, read) in sorted(totals.items()):
        size = result["weight_bytes"].get(model, 0)
        print(
            f"- {model}: built from its {size} weight bytes {builds} times in the run; {read} bytes read in all "
            "(read(2) bytes, plus the weight bytes once per build, paged in through the mapping)."
        )


# -- 5. where a model job's fixed cost goes ----------------------------------------------------


def import_profile(text: str) -> list[tuple[int, int, str]]:
    """(depth, cumulative microseconds, module) per line of ``-X importtime`` output, in
    the order printed (a module's own imports come before it, one level deeper)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, int(cumulative), name.strip()))
    return rows


def importers(rows) -> list[int | None]:
    """For each row, the index of the row that imported it (None at depth 0)."""
    parents, stack = [None] * len(rows), []
    for index in range(len(rows) - 1, -1, -1):  # reversed, the output reads top-down
        depth = rows[index][0]
        while stack and rows[stack[-1]][0] >= depth:
            stack.pop()
        parents[index] = stack[-1] if stack else None
        stack.append(index)
    return parents


def in_namespace(name: str, namespace: str) -> bool:
    return name == namespace or name.startswith(namespace + ".")


def namespace_cost(rows, parents, namespace: str) -> tuple[float, list[str]]:
    """Seconds spent importing ``namespace`` wherever it was imported from (the entries into
    it from outside), and the chain of importers of the largest entry."""
    entries = [
        index
        for index, (_, _, name) in enumerate(rows)
        if in_namespace(name, namespace)
        and (parents[index] is None or not in_namespace(rows[parents[index]][2], namespace))
    ]
    if not entries:
        return 0.0, []
    largest = max(entries, key=lambda index: rows[index][1])
    chain, index = [], parents[largest]
    while index is not None and len(chain) < 4:
        chain.append(rows[index][2])
        index = parents[index]
    return sum(rows[index][1] for index in entries) / 1e6, chain


def profile_job(workdir: Path, config_path: Path, model: str) -> dict:
    """``-X importtime`` of the model's dump_target job: its own generated script, rerun."""
    scripts = workdir / ".snakemake" / "scripts"
    before = set(scripts.glob("*.py")) if scripts.exists() else set()
    timed(
        snakemake(
            workdir,
            config_path,
            "--forcerun",
            "dump_target",
            "--skip-script-cleanup",
            f"results/{model}/{TARGET}/dump/index.json",
        )
    )
    script = max(set(scripts.glob("*dump_outputs.py")) - before, key=lambda path: path.stat().st_mtime)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script)], cwd=workdir, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    for leftover in set(scripts.glob("*.py")) - before:
        leftover.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"profiling {model}'s dump_target failed:\n{done.stderr[-3000:]}")
    rows = import_profile(done.stderr)
    parents = importers(rows)
    top = defaultdict(int)
    for depth, cumulative, name in rows:
        if depth == 0:
            top[name.split(".")[0]] += cumulative
    nested = {}
    for namespace in NOTABLE_IMPORTS:
        if namespace not in top:
            seconds, chain = namespace_cost(rows, parents, namespace)
            if seconds:
                nested[namespace] = {"seconds": seconds, "imported_by": chain}
    return {
        "wall_s": wall,
        "imports_s": sum(top.values()) / 1e6,
        "top": {name: us / 1e6 for name, us in sorted(top.items(), key=lambda item: -item[1]) if us >= 5000},
        "nested": dict(sorted(nested.items(), key=lambda item: -item[1]["seconds"])),
        "modules": [name for _, _, name in rows],
    }


def measure_imports(root: Path) -> dict:
    """Import profiles of the dump_target jobs, and which family libraries every job loads."""
    config = tiny_config()
    config_path = write_config(root / "tiny.yaml", config)
    workdir = root / "tiny"
    if not (workdir / "results" / "all").exists():
        log("imports: complete tiny run first")
        timed(snakemake(workdir, config_path, "results/all"))
    profiles = {}
    for model, entry in config["models"].items():
        log(f"imports: profiling {model}'s dump_target")
        profiles[model] = {"family": entry["family"], **profile_job(workdir, config_path, model)}
    return profiles


def print_imports(profiles: dict) -> None:
    print("\n### Where a model job's fixed cost goes: `python -X importtime` of dump_target\n")
    print("Cumulative import times under `-X importtime` (which adds overhead of its own). The")
    print("nested modules' times are part of the top-level import that pulled them in.\n")
    for model, profile in profiles.items():
        library = FAMILY_LIBRARIES[profile["family"]]
        other = ({"timm", "transformers"} - {library}).pop()
        libraries = {name.split(".")[0] for name in profile["modules"]} & {
            "timm",
            "transformers",
            "torchvision",
            "matplotlib",
        }
        print(
            f"**{model}** ({library}): job wall {profile['wall_s']:.2f} s under importtime, "
            f"of which imports {profile['imports_s']:.2f} s. "
            f"Model libraries imported: {', '.join(sorted(libraries)) or 'none'}; "
            f"{other} imported: {'**yes**' if other in libraries else 'no'}.\n"
        )
        print("| import | seconds | imported by |")
        print("|---|---:|---|")
        for name, seconds in profile["top"].items():
            print(f"| {name} | {seconds:.2f} | the job |")
        for name, item in profile["nested"].items():
            print(f"| &nbsp;&nbsp;{name} | {item['seconds']:.2f} | {' < '.join(item['imported_by'])} |")
        print()


# -- the machine and the report ---------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    from importlib.metadata import PackageNotFoundError, version

    for package in ("torch", "timm", "torchvision", "transformers", "snakemake"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {', '.join(versions)}"


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="complete tiny runs, dry runs and no-op runs per figure (medians)"
    )
    parser.add_argument("--plan-sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--noop-models", type=int, default=100)
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count(), help="cores for completing the no-op run (the timed runs use 1)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "npu-adapt-workflow-overhead",
        help="kept between runs (the no-op run's 100 models)",
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    root = args.workdir.resolve()
    root.mkdir(parents=True, exist_ok=True)

    started = datetime.datetime.now().astimezone()
    load_before = load_average()
    figures = {}
    if "jobs" in args.only:
        figures["jobs"] = measure_jobs(root, args.repeats)
    if "plan" in args.only:
        figures["plan"] = measure_plan(root, args.plan_sizes, args.repeats)
    if "noop" in args.only:
        figures["noop"] = measure_noop(root, args.noop_models, args.repeats, args.cores)
    if "loads" in args.only:
        figures["loads"] = measure_loads(root)
    if "imports" in args.only:
        figures["imports"] = measure_imports(root)

    print(f"## Workflow overhead, {started:%Y-%m-%d %H:%M %Z}\n")
    print(f"Machine: {machine()}.  ")
    print(f"Load average (1/5/15 min) at the start: {load_before}; at the end: {load_average()}.")
    if "jobs" in figures:
        print_jobs(figures["jobs"])
    if "plan" in figures:
        print_plan(figures["plan"])
    if "noop" in figures:
        print_noop(figures["noop"])
    if "loads" in figures:
        print_loads(figures["loads"])
    if "imports" in figures:
        print_imports(figures["imports"])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
