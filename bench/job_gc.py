"""What the garbage collector costs a model job, at Python's default thresholds and at the
jobs' (``npu_adapt.jobs.start_job``: GC_THRESHOLDS, and a frozen heap at exit).

A model job is a Python process that imports torch and a model library, builds the model
once and runs it. This script runs that process per family three ways, interleaved round by
round (the order rotates, so drift in the machine's load hits all alike):

- ``jobs``: as a job starts (``start_job``);
- ``default``: the logging alone (``setup_logging``), Python's default collector;
- ``off``: the collector disabled, the floor: no collection at all, none at exit either.

It prints the CPU seconds (user + system of the process, from its rusage) and the wall
seconds per variant, their medians, and the collector's share of the job: CPU / CPU(off) - 1.

    .venv/bin/python bench/job_gc.py [--rounds 7]

Target: the jobs' settings leave at most half of what the collector costs at the defaults,
(jobs - off) / (default - off) <= 0.5, with the medians. Exit status 0 when every family
meets it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.5

START = {
    "default": "from npu_adapt.jobs import setup_logging; setup_logging(None)",
    "jobs": "from npu_adapt.jobs import start_job; start_job(None)",
    # gc.disable() alone would still leave the collection at interpreter exit (it runs regardless).
    "off": (
        "from npu_adapt.jobs import setup_logging; setup_logging(None)\n"
        "import atexit, gc; gc.disable(); atexit.register(gc.freeze)"
    ),
}
# What a dump job does with a tiny model of the family: import, build, one forward.
JOB = {
    "timm": (
        "import torch, timm\n"
        "model = timm.create_model('test_convnext', pretrained=False).eval()\n"
        "with torch.inference_mode(): model(torch.randn(1, 3, 64, 64))\n"
    ),
    "transformers": (
        "import torch, transformers\n"
        "config = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,"
        " intermediate_size=37, vocab_size=100)\n"
        "model = transformers.BertModel(config).eval()\n"
        "with torch.inference_mode(): model(input_ids=torch.ones(1, 12, dtype=torch.long))\n"
    ),
}


def run(code: str) -> tuple[float, float]:
    """CPU seconds (user + system) and wall seconds of ``python -c code``."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"python -c failed ({status}):\n{code}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"load average at the start: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    met = True
    for family, job in JOB.items():
        print("| family | variant | CPU s (median) | wall s (median) | collector's share | CPU s per round |")
        print("|---|---|---:|---:|---:|---|")
        times: dict[str, list[tuple[float, float]]] = {variant: [] for variant in START}
        for round_ in range(args.rounds):
            shift = round_ % len(START)
            for variant in list(START)[shift:] + list(START)[:shift]:
                times[variant].append(run(START[variant] + "\n" + job))
        cpu = {variant: statistics.median(cpu for cpu, _ in rows) for variant, rows in times.items()}
        for variant, rows in times.items():
            wall = statistics.median(wall for _, wall in rows)
            share = cpu[variant] / cpu["off"] - 1
            per_round = ", ".join(f"{cpu_s:.2f}" for cpu_s, _ in rows)
            print(f"| {family} | {variant} | {cpu[variant]:.2f} | {wall:.2f} | {share:+.0%} | {per_round} |")
        left = (cpu["jobs"] - cpu["off"]) / (cpu["default"] - cpu["off"])
        met &= left <= TARGET
        print(
            f"\n{family}: the collector costs {cpu['default'] / cpu['off'] - 1:+.0%} of the job at the defaults, "
            f"{cpu['jobs'] / cpu['off'] - 1:+.0%} at the jobs' settings: {left:.2f} of its cost left "
            f"(target <= {TARGET}: {left <= TARGET}); jobs / default: {cpu['jobs'] / cpu['default']:.2f}x\n"
        )
    print(f"load average at the end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
