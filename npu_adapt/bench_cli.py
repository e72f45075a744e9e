"""``npu-adapt bench MODEL``: the benchmark of one configured model, without the workflow.

For quick iteration while porting: the same harness, settings and table as the workflow's
benchmark job and the model card, read from the same config files (``config.yaml`` in the
working directory, then each ``--configfile`` on top, as Snakemake merges them). Weights
come from ``weights/MODEL/manifest.json`` when the workflow already fetched them, otherwise
they are fetched (or materialised) as the workflow would. Nothing is written unless
``--out DIR`` is given (benchmark.json, benchmark.csv and benchmark_samples.csv there, as the
workflow's job writes them).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from npu_adapt.config_types import SCHEMA, ConfigError

if TYPE_CHECKING:
    from npu_adapt.config_types import BenchmarkSettings, ModelEntry, Placement

REPO = Path(__file__).resolve().parents[1]


def load_config(configfiles: list[Path]) -> dict:
    """config.yaml of the working directory (when present) with each configfile merged on
    top, validated against the schema with its defaults filled in."""
    from snakemake.utils import update_config

    paths = [path for path in [Path("config.yaml")] if path.is_file()] + list(configfiles)
    if not paths:
        raise ConfigError("no config.yaml in the working directory: name one with --configfile")
    from npu_adapt import config_check

    config: dict = {}
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"--configfile {path}: no such file")
        data = config_check.check_yaml_syntax(path) or {}  # a syntax error as the Snakefile says it
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not a mapping of config keys")
        update_config(config, data)
    try:  # the Snakefile's own check: one sentence naming the key, the schema's defaults filled in
        config_check.validate_config(config, SCHEMA)
    except ConfigError as exc:
        raise ConfigError(f"{', '.join(map(str, paths))}: {exc}") from None
    return config


def model_settings(
    config: dict, model: str, target: str | None = None
) -> tuple[ModelEntry, Placement, BenchmarkSettings]:
    """The model's entry, the placement of one of its targets (``target``, default its first)
    and its benchmark settings (globals with the model's overrides), or a ConfigError naming
    the closest configured models or targets."""
    from npu_adapt.config import benchmark_settings, model_entry, model_targets

    entry = model_entry(config, model)  # an unknown model or target: a ConfigError with the nearest names
    targets = model_targets(config, model)
    return entry, targets[target or next(iter(targets))], benchmark_settings(config, model)


def weights_manifest(config: dict, model: str, entry: ModelEntry) -> dict:
    from npu_adapt.config_types import DownloadSettings, from_mapping
    from npu_adapt.io import read_json
    from npu_adapt.weights import fetch

    recorded = Path(config["weights_dir"]) / model / "manifest.json"
    if recorded.is_file():
        manifest = read_json(recorded)
        if manifest.get("source") == entry.source:
            return manifest
    return fetch(
        model,
        entry,
        weights_root=Path(config["weights_dir"]),
        settings=from_mapping(DownloadSettings, config["download"], "download"),
        seed=config["seed"],
        base_dir=REPO,
    )


def options(args: argparse.Namespace, *keys: str) -> dict:
    """The command-line options among ``keys`` that were given (they replace the config's)."""
    return {key: getattr(args, key) for key in keys if getattr(args, key) is not None}


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def bench(args: argparse.Namespace, out=None) -> int:
    from npu_adapt import integrity
    from npu_adapt.benchmark import run_benchmark
    from npu_adapt.benchmark_stage import write_benchmark
    from npu_adapt.card_benchmark import benchmark_method, benchmark_table
    from npu_adapt.inspect_cli import EXIT_CODES  # one table of exit codes for both commands
    from npu_adapt.jobs import start_job

    out = out or sys.stdout
    try:
        config = load_config([Path(path) for path in args.configfile])
        entry, placement, settings = model_settings(config, args.model, args.target)
    except ConfigError as error:
        print(f"npu-adapt bench: {error}", file=sys.stderr)
        return EXIT_CODES["error"]  # as a bad command line: 2 would read as a failed verdict
    if args.batch_sizes:
        settings = replace(settings, batch_sizes=args.batch_sizes)
    settings = replace(settings, **options(args, "max_seconds", "threads"))
    placement = replace(placement, **options(args, "device", "dtype"))
    start_job(None)
    integrity.configure(config)  # the weights are checked against their sha256 before use, as in a job
    manifest = weights_manifest(config, args.model, entry)
    if manifest.get("status") == "blocked":
        print(f"npu-adapt bench: {args.model}: no weights: {manifest['reason']}", file=sys.stderr)
        return EXIT_CODES["blocked"]
    from npu_adapt.adapters import get_adapter
    from npu_adapt.jobs import ModelBlocked, model_step
    from npu_adapt.weights import verified_dir

    try:  # weights changed since their fetch, a tokenizer that cannot load: a reason, not a traceback
        with model_step("inputs"):
            arrays = get_adapter(entry, REPO).make_inputs(verified_dir(manifest), config["seed"])
    except ModelBlocked as blocked:
        print(f"npu-adapt bench: {args.model}: {blocked}", file=sys.stderr)
        return EXIT_CODES[blocked.status]
    result, samples = run_benchmark(args.model, entry, manifest, arrays, placement, settings, REPO)
    print(f"{args.model}: {result['status']}" + (f" ({result['reason']})" if result["reason"] else ""), file=out)
    print(benchmark_method(result), file=out)
    header, rows = benchmark_table(result)
    if rows:
        print(text_table(header, rows), file=out)
    if args.out:
        directory = Path(args.out)
        directory.mkdir(parents=True, exist_ok=True)
        names = ("benchmark.json", "benchmark.csv", "benchmark_samples.csv")
        write_benchmark(result, samples, *(directory / name for name in names))
        print(f"wrote {directory}/benchmark.json, benchmark.csv, benchmark_samples.csv", file=out)
    return 0 if result["status"] == "ok" else EXIT_CODES[result["status"]]  # blocked, error: 3


def add_parser(commands) -> None:
    """The ``bench`` subcommand of ``npu-adapt``."""
    cli = commands.add_parser(
        "bench", help="benchmark one configured model without the workflow", description=__doc__.split("\n\n")[1]
    )
    cli.add_argument("model", help="a key of models: in the config")
    cli.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="config files merged on top of ./config.yaml (as Snakemake's --configfile)",
    )
    cli.add_argument("--batch-sizes", type=int, nargs="+", help="instead of benchmark.batch_sizes")
    cli.add_argument("--max-seconds", type=float, help="instead of benchmark.max_seconds")
    cli.add_argument(
        "--threads", type=int, help="torch threads (default: benchmark.threads, else torch's default: every core)"
    )
    cli.add_argument("--target", help="one of the model's targets (default: its first in the config)")
    cli.add_argument("--device", choices=["auto", "npu", "cuda", "cpu"], help="instead of the target's device")
    cli.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="instead of the target's dtype")
    cli.add_argument(
        "--out", help="also write benchmark.json, benchmark.csv and benchmark_samples.csv to this directory"
    )
