"""``npu-adapt inspect``: the evidence a workflow run wrote, read back and checked.

``inspect results/MODEL/TARGET``    one target's tensors (inputs, reference, target: shape,
                                    dtype, stats) and its comparison (every metric, pass/fail,
                                    Ascend verdict, error budget), the layer localisation (first
                                    divergence and its neighbours); ``--layers`` adds the whole
                                    layer table; ``--export-msprobe DIR`` writes the layer dumps
                                    in msprobe's dump.json layout (``msprobe compare`` reads them).
``inspect results/MODEL``           every target of the model in turn (exit status: the worst).
``inspect DIR``                     the tensors listed in DIR/index.json.
``inspect A.npy``                   one dump's shape, dtype and stats.
``inspect A.npy B.npy``             every metric of A (target) against B (reference).
``inspect DIR_A DIR_B``             every tensor of DIR_A/index.json against DIR_B's, by name.

Exit status: 0 pass (or self-check), 1 warn, 2 fail, 3 error (unreadable or missing
evidence, a blocked model, a bad command line). Criteria default to the target's compute
dtype (its index.json, else the .npy dtype, else --dtype); options override single keys.

Everything shown comes from the files themselves: the workflow's JSON, or the metrics of
npu_adapt.metrics computed here on the .npy dumps (streamed, in float64), printed as tables by
npu_adapt.inspect_text. Every dump listed in an index.json is first checked against the size
and sha256 recorded there (npu_adapt.integrity); a file that differs is reported as an
integrity ERROR and the exit status is 3 (error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from npu_adapt.inspect_text import (
    STAT_COLUMNS,
    criteria_text,
    placement,
    print_comparison,
    print_layers,
    table,
    tensors_table,
)
from npu_adapt.integrity import dump_problems, file_problem
from npu_adapt.io import read_json
from npu_adapt.metrics import (
    compare_output,
    criteria_class,
    criteria_classes,
    dtype_criteria,
    streamed_stats,
    worst_status,
)

# The exit status of each verdict (scripts and CI act on it).
EXIT_CODES = {"pass": 0, "self-check": 0, "warn": 1, "fail": 2, "error": 3, "blocked": 3}
NUMBER_CRITERIA = ("rel_l2_max", "rel_l2_fail", "cosine_min", "cosine_floor", "atol", "rtol", "within_min")


def export_layers(path: Path, out_dir: Path, out) -> int:
    from npu_adapt.layers.msprobe import export_msprobe

    targets = [path] if (path / "layers").is_dir() and (path / "compare.json").is_file() else target_dirs(path)
    if len(targets) != 1:
        named = ", ".join(str(t) for t in targets) or f"none under {path}"
        print(
            f"npu-adapt inspect --export-msprobe: name one target directory (results/MODEL/TARGET): {named}",
            file=sys.stderr,
        )
        return EXIT_CODES["error"]  # 1 would read as a warn verdict
    try:
        written = export_msprobe(targets[0], out_dir)
    except (OSError, ValueError) as exc:
        print(f"npu-adapt inspect --export-msprobe: {exc}", file=sys.stderr)
        return EXIT_CODES["error"]
    for role in ("reference", "target"):
        info = written[role]
        print(f"{role}: {info['path']} ({info['task']}, level {info['level']}, {info['entries']} entries)", file=out)
    print(f"compare with msprobe: {written['command']}", file=out)
    return 0


def integrity_report(index_path: Path, index: dict, out) -> bool:
    """Print whether every file of a dump matches its index.json record; True when it does."""
    problems = dump_problems(index_path, index)
    if problems:
        print(f"  integrity ERROR: {'; '.join(problems.values())}", file=out)
    elif index.get("tensors"):
        count = len(index["tensors"])
        print(
            f"  integrity: {'all ' if count > 1 else ''}{count} file{'s match' if count > 1 else ' matches'} "
            f"the size and sha256 recorded in {index_path.name}",
            file=out,
        )
    return not problems


def target_dirs(model_dir: Path) -> list[Path]:
    """The model's target directories (results/MODEL/TARGET/, each with its compare.json)."""
    return sorted(path.parent for path in model_dir.glob("*/compare.json"))


def inspect_model(model_dir: Path, show_layers: bool, out) -> int:
    """``results/MODEL``: every target in turn (the exit code of the worst);
    ``results/MODEL/TARGET``: that target."""
    if (model_dir / "compare.json").is_file() or (model_dir / "dump" / "index.json").is_file():
        return inspect_target(model_dir.parent, model_dir.name, show_layers, out)
    targets = target_dirs(model_dir)
    if not targets:
        print(f"model {model_dir.name}  ({model_dir})", file=out)
        print(f"\ncomparison: no {model_dir}/TARGET/compare.json (run the compare rule); no verdict", file=out)
        return EXIT_CODES["error"]
    codes = []
    for number, target_dir in enumerate(targets):
        if number:
            print("\n" + "=" * 72 + "\n", file=out)
        codes.append(inspect_target(model_dir, target_dir.name, show_layers, out))
    return max(codes)


def inspect_target(model_dir: Path, target: str, show_layers: bool, out) -> int:
    target_dir = model_dir / target
    compare = read_json(target_dir / "compare.json") if (target_dir / "compare.json").is_file() else None
    name = compare["model"] if compare else model_dir.name
    print(f"model {name}, target {target}  ({target_dir})", file=out)
    intact = True
    for role, index_path in (
        ("inputs", model_dir / "inputs" / "index.json"),
        ("reference", model_dir / "reference" / "index.json"),
        ("target", target_dir / "dump" / "index.json"),
    ):
        if not index_path.is_file():
            print(f"\n{role}: no {index_path}", file=out)
            continue
        index = read_json(index_path)
        heading = role if role == "inputs" else f"{role} outputs on {placement(index)}"
        print(f"\n{heading}", file=out)
        print(tensors_table(index), file=out)
        intact &= integrity_report(index_path, index, out)
    if compare is None:
        print(f"\ncomparison: no {target_dir / 'compare.json'} (run the compare rule); no verdict", file=out)
        return EXIT_CODES["error"]
    if not intact and compare["status"] != "error":
        print("\nthe dumps changed after the comparison below was made: it no longer describes them", file=out)
    print(
        f"\ncomparison: {compare['status'].upper()}" + (f"  ({compare['reason']})" if compare.get("reason") else ""),
        file=out,
    )
    if compare.get("criteria"):
        criteria = {**dtype_criteria(compare.get("criteria_class", "float32")), **compare["criteria"]}
        print(f"  criteria: {criteria_text(criteria, compare.get('criteria_class'))}", file=out)
    budget = compare.get("error_budget") or {}
    if budget.get("cpu_same_dtype"):
        print(f"  error budget: against the CPU run in the same dtype, {budget['cpu_same_dtype']}", file=out)
    elif budget:
        print(f"  error budget: none ({budget.get('reason')})", file=out)
    if compare.get("outputs"):
        print_comparison(compare["outputs"], out)
    layers_json = target_dir / "layers" / "compare.json"
    if layers_json.is_file():
        layers = read_json(layers_json)
        print_layers(layers, show_layers, out)
        if not show_layers and layers.get("enabled", True):
            print("  (--layers prints every row)", file=out)
    else:
        print(f"\nlayers: not captured ({(compare.get('layers') or {}).get('reason')})", file=out)
    if not intact:
        return EXIT_CODES["error"]
    return EXIT_CODES.get(compare["status"], EXIT_CODES["error"])


def _entry_from_index(path: Path) -> dict | None:
    """The index.json entry that lists a dump file, when an index.json beside it does."""
    index_path = path.parent / "index.json"
    if index_path.is_file():
        for entry in read_json(index_path).get("tensors", []):
            if entry.get("file") == path.name:
                return entry
    return None


def _kind_from_index(path: Path) -> str | None:
    """The kind the workflow declared for a dump, when an index.json beside it lists it."""
    return (_entry_from_index(path) or {}).get("kind")


def _index_path(path: Path) -> Path:
    return path / "index.json" if path.is_dir() else path


def _compute_dtype(path: Path, array: np.ndarray, given: str | None) -> str:
    """What a dump computed in: --dtype, else what the index.json beside it records, read as
    the workflow's comparison reads it (the tensor's own compute_dtype, else the dump's: a
    bfloat16 output is stored as float32), else the .npy dtype."""
    from npu_adapt.compare import compute_dtype

    if given:
        return given
    entry = _entry_from_index(path)
    if entry is None:
        return str(array.dtype)
    return compute_dtype(read_json(path.parent / "index.json"), entry) or str(array.dtype)


def inspect_files(paths: list[Path], overrides: dict, kind: str | None, given_dtype: str | None, out) -> int:
    problems = [
        problem for path in paths if (entry := _entry_from_index(path)) and (problem := file_problem(path, entry))
    ]
    for problem in problems:
        print(f"integrity ERROR: {problem}", file=out)
    try:
        arrays = [np.load(path, mmap_mode="r", allow_pickle=False) for path in paths]
    except (OSError, ValueError) as exc:
        print(f"ERROR: cannot read dump: {type(exc).__name__}: {exc}", file=out)
        return EXIT_CODES["error"]
    rows = [
        {"name": str(path), "shape": list(a.shape), "dtype": str(a.dtype), **streamed_stats(a)}
        for path, a in zip(paths, arrays)
    ]
    print(table(rows, [(name, name) for name in STAT_COLUMNS]), file=out)
    if len(arrays) == 1:
        return EXIT_CODES["error"] if problems else 0
    kind = kind or _kind_from_index(paths[1]) or "hidden"
    compute = _compute_dtype(paths[0], arrays[0], given_dtype)
    klass = criteria_class(compute)
    criteria = {**dtype_criteria(klass), **overrides}
    metrics = compare_output(arrays[0], arrays[1], kind, criteria, (compute, None))
    print(f"\n{paths[0].name} (target, {compute}) against {paths[1].name} (reference), float64", file=out)
    if not given_dtype and compute == str(arrays[0].dtype) == "float32":
        print(
            "  (compute dtype read from the .npy: numpy stores bfloat16 as float32, "
            "so pass --dtype bfloat16 if it ran in bfloat16)",
            file=out,
        )
    print(f"  criteria: {criteria_text(criteria, klass)}", file=out)
    print_comparison({paths[0].name: metrics}, out)
    if problems:
        print(
            "\nERROR: a dump differs from the sha256 its index.json records "
            "(the metrics above describe the changed file)",
            file=out,
        )
        return EXIT_CODES["error"]
    print(f"\n{metrics['status'].upper()}" + (f": {metrics['reason']}" if metrics["reason"] else ""), file=out)
    return EXIT_CODES[metrics["status"]]


def inspect_indexes(target: Path, reference: Path, overrides: dict, given_dtype: str | None, out) -> int:
    from npu_adapt.compare import compare_indexes, target_criteria_class

    target_index = read_json(_index_path(target))
    klass = criteria_class(given_dtype) if given_dtype else target_criteria_class(target_index)
    criteria = {**dtype_criteria(klass), **overrides}
    outputs, problems = compare_indexes(_index_path(reference), _index_path(target), criteria)
    print(f"{target} (target) against {reference} (reference), float64", file=out)
    print(f"  criteria: {criteria_text(criteria, klass)}", file=out)
    print_comparison(outputs, out)
    status = worst_status(m["status"] for m in outputs.values())
    if any("integrity: " in problem for problem in problems):
        status = "error"
    passed = sum(m["status"] == "pass" for m in outputs.values())
    print(
        f"\n{status.upper()}: {passed} of {len(outputs)} tensors pass"
        + "".join(f"\n  {problem}" for problem in problems),
        file=out,
    )
    return EXIT_CODES[status]


def inspect(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    paths = [Path(path) for path in args.paths]
    for path in paths:
        if not path.exists():
            # A model's name alone is the likeliest slip: point at its results directory.
            results = Path("results") / path
            hint = f"; did you mean {results}?" if not path.is_absolute() and results.is_dir() else ""
            print(f"npu-adapt inspect: no such file or directory: {path}{hint}", file=sys.stderr)
            return EXIT_CODES["error"]
    overrides = {
        key: value for key, value in vars(args).items() if key in (*NUMBER_CRITERIA, "top5") and value is not None
    }
    if all(path.suffix == ".npy" for path in paths):
        return inspect_files(paths, overrides, args.kind, args.dtype, out)
    if len(paths) == 2:
        for path in paths:
            if not _index_path(path).is_file():
                print(
                    f"npu-adapt inspect: {path} holds no index.json: compare two dumps "
                    "(results/MODEL/TARGET/dump results/MODEL/reference) or two .npy files",
                    file=sys.stderr,
                )
                return EXIT_CODES["error"]
        return inspect_indexes(paths[0], paths[1], overrides, args.dtype, out)
    path = paths[0]
    if args.export_msprobe:
        return export_layers(path, Path(args.export_msprobe), out)
    if path.is_dir() and not (path / "index.json").is_file():
        return inspect_model(path, args.layers, out)
    index = read_json(_index_path(path))
    print(f"{index.get('model')} {index.get('role')} on {placement(index)}", file=out)
    print(tensors_table(index), file=out)
    return 0 if integrity_report(_index_path(path), index, out) else EXIT_CODES["error"]


def add_parser(commands) -> None:
    """The ``inspect`` subcommand of ``npu-adapt``."""
    cli = commands.add_parser(
        "inspect",
        help="print a model's tensors and comparison, or compare two dumps",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument(
        "paths",
        nargs="+",
        help="results/MODEL | results/MODEL/TARGET | DIR | A.npy [B.npy] | DIR_A DIR_B "
        "(A is the target, B the reference)",
    )
    cli.add_argument("--layers", action="store_true", help="with results/MODEL: print every row of the layer table")
    cli.add_argument(
        "--export-msprobe",
        metavar="DIR",
        help="with results/MODEL/TARGET (or a model with one target): "
        "write its layer dumps in msprobe's dump.json layout under DIR",
    )
    cli.add_argument(
        "--kind",
        choices=["hidden", "class_scores", "token_ids"],
        help="with A.npy B.npy: what they hold (default: as B's index.json says, else hidden)",
    )
    cli.add_argument(
        "--dtype",
        choices=criteria_classes(),
        help="the target's compute dtype class, for its default criteria "
        "(default: its index.json's, else the .npy dtype)",
    )
    for key in NUMBER_CRITERIA:
        cli.add_argument(
            f"--{key.replace('_', '-')}", dest=key, type=float, help="criterion (default: the compute dtype's)"
        )
    cli.add_argument(
        "--top5",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="class scores must also agree on every top-5 set",
    )
