"""Command line: ``python -m npu_adapt inspect ...`` (installed as ``npu-adapt``).

``inspect results/MODEL``           the model's tensors (inputs, reference, target: shape,
                                    dtype, stats) and its comparison (every metric, pass/fail,
                                    Ascend verdict); ``--layers`` adds the per-module table.
``inspect DIR``                     the tensors listed in DIR/index.json.
``inspect A.npy``                   one dump's shape, dtype and stats.
``inspect A.npy B.npy``             every metric of A (target) against B (reference); exit
                                    status 1 when A fails the criteria.
``inspect DIR_A DIR_B``             every tensor of DIR_A/index.json against DIR_B's, by name.

Everything shown comes from the files themselves: the workflow's JSON, or the metrics of
npu_adapt.metrics computed here on the .npy dumps (streamed, in float64). Every dump listed in
an index.json is first checked against the size and sha256 recorded there (npu_adapt.integrity);
a file that differs is reported as an integrity ERROR and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from npu_adapt.integrity import dump_problems, file_problem
from npu_adapt.io import read_json
from npu_adapt.metrics import DEFAULT_CRITERIA, compare_output, streamed_stats

STAT_COLUMNS = ["name", "shape", "dtype", "min", "max", "mean", "std", "nan", "inf"]
METRIC_COLUMNS = [
    ("output", "output"),
    ("kind", "kind"),
    ("pass", "pass"),
    ("rel_l2", "rel_l2"),
    ("cosine", "cosine"),
    ("max_abs_diff", "max_abs"),
    ("mean_abs_diff", "mean_abs"),
    ("rmse", "rmse"),
    ("max_rel_diff", "max_rel"),
    ("within_rtol_frac", "in_tol"),
    ("top1_match", "top1"),
    ("top5_match", "top5"),
    ("token_agreement", "tokens"),
    ("first_mismatch", "1st_diff"),
    ("nan_target", "nan_t"),
    ("inf_target", "inf_t"),
    ("ascend_verdict", "ascend"),
    ("reason", "reason"),
]
LAYER_COLUMNS = [
    ("order", "#"),
    ("name", "module"),
    ("type", "type"),
    ("shape", "shape"),
    ("rel_l2", "rel_l2"),
    ("cosine", "cosine"),
    ("max_abs_diff", "max_abs"),
    ("mean_abs_diff", "mean_abs"),
    ("nan_target", "nan_t"),
    ("pass", "pass"),
    ("reason", "reason"),
]


def cell(key: str, value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, list):
        return "x".join(str(item) for item in value) or "scalar"
    if isinstance(value, float):
        # Cosine near 1 needs its nines; everything else reads best with 4 digits.
        return f"{value:.8f}" if key == "cosine" else f"{value:.4g}"
    return str(value)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A plain aligned text table; the last column (usually the reason) is not padded."""
    cells = [[title for _, title in columns]] + [[cell(key, row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line[:-1], widths)) + "  " + line[-1] for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join("  " + line.rstrip() for line in lines)


def placement(index: dict) -> str:
    text = f"{index.get('device')} ({index.get('device_name')}), {index.get('dtype')}"
    if index.get("status") == "blocked":
        text += f"  BLOCKED: {index.get('reason')}"
    if index.get("test_perturbation"):
        text += f"  [TEST PERTURBATION {index['test_perturbation']}]"
    return text


def tensors_table(index: dict) -> str:
    return table(index.get("tensors", []), [(name, name) for name in STAT_COLUMNS])


def criteria_text(criteria: dict) -> str:
    text = f"rel_l2 < {criteria['rel_l2_max']}, cosine > {criteria['cosine_min']}"
    extras = [f"top{k}_match = 1 (class scores)" for k in (1, 5) if criteria.get(f"top{k}")]
    return ", ".join([text, *extras]) + f"; within tolerance: |t - r| <= {criteria['atol']} + {criteria['rtol']}*|r|"


def print_comparison(outputs: dict, out) -> None:
    """The metrics table; a metric that applies to none of the outputs (top-k without class
    scores, token agreement without generated ids) gets no column."""
    rows = [{"output": name, **metrics} for name, metrics in outputs.items()]
    optional = {"top1_match", "top5_match", "token_agreement", "first_mismatch"}
    columns = [(key, title) for key, title in METRIC_COLUMNS if key not in optional or any(row.get(key) is not None for row in rows)]
    print(table(rows, columns), file=out)


def print_layers(layers: dict, full: bool, out) -> None:
    first = layers.get("first_divergence")
    print(f"\nlayers: {layers.get('modules')} modules compared, {layers.get('diverged')} over the threshold", file=out)
    if first:
        print(f"  first divergence: #{first['order']} {first['name']} ({first['type']}): {first['reason']}", file=out)
    else:
        print(f"  first divergence: none ({layers.get('reason')})", file=out)
    if full and layers.get("rows"):
        print(table(layers["rows"], LAYER_COLUMNS), file=out)


def integrity_report(index_path: Path, index: dict, out) -> bool:
    """Print whether every file of a dump matches its index.json record; True when it does."""
    problems = dump_problems(index_path, index)
    if problems:
        print(f"  integrity ERROR: {'; '.join(problems.values())}", file=out)
    elif index.get("tensors"):
        count = len(index["tensors"])
        print(f"  integrity: {'all ' if count > 1 else ''}{count} file{'s match' if count > 1 else ' matches'} the size and sha256 recorded in {index_path.name}", file=out)
    return not problems


def inspect_model(model_dir: Path, show_layers: bool, out) -> int:
    compare = read_json(model_dir / "compare.json") if (model_dir / "compare.json").is_file() else None
    name = compare["model"] if compare else model_dir.name
    print(f"model {name}  ({model_dir})", file=out)
    intact = True
    for role in ("inputs", "reference", "target"):
        index_path = model_dir / role / "index.json"
        if not index_path.is_file():
            print(f"\n{role}: no {index_path}", file=out)
            continue
        index = read_json(index_path)
        heading = role if role == "inputs" else f"{role} outputs on {placement(index)}"
        print(f"\n{heading}", file=out)
        print(tensors_table(index), file=out)
        intact &= integrity_report(index_path, index, out)
    if compare is None:
        print(f"\ncomparison: no {model_dir / 'compare.json'} (run the compare rule)", file=out)
        return 0 if intact else 1
    if not intact and compare["status"] != "error":
        print("\nthe dumps changed after the comparison below was made: it no longer describes them", file=out)
    print(f"\ncomparison: {compare['status'].upper()}" + (f"  ({compare['reason']})" if compare.get("reason") else ""), file=out)
    print(f"  criteria: {criteria_text(compare['criteria'])}", file=out)
    if compare.get("outputs"):
        print_comparison(compare["outputs"], out)
    layers_json = model_dir / "layers" / "compare.json"
    if layers_json.is_file():
        print_layers(read_json(layers_json), show_layers, out)
        if not show_layers:
            print("  (--layers prints every module)", file=out)
    else:
        print(f"\nlayers: not captured ({(compare.get('layers') or {}).get('reason')})", file=out)
    return 0 if intact else 1


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


def inspect_files(paths: list[Path], criteria: dict, kind: str | None, out) -> int:
    problems = [problem for path in paths if (entry := _entry_from_index(path)) and (problem := file_problem(path, entry))]
    for problem in problems:
        print(f"integrity ERROR: {problem}", file=out)
    arrays = [np.load(path, mmap_mode="r", allow_pickle=False) for path in paths]
    rows = [{"name": str(path), "shape": list(a.shape), "dtype": str(a.dtype), **streamed_stats(a)} for path, a in zip(paths, arrays)]
    print(table(rows, [(name, name) for name in STAT_COLUMNS]), file=out)
    if len(arrays) == 1:
        return 1 if problems else 0
    kind = kind or _kind_from_index(paths[1]) or "hidden"
    metrics = compare_output(arrays[0], arrays[1], kind, criteria)
    print(f"\n{paths[0].name} (target) against {paths[1].name} (reference), float64", file=out)
    print(f"  criteria: {criteria_text(criteria)}", file=out)
    print_comparison({paths[0].name: metrics}, out)
    if problems:
        print("\nERROR: a dump differs from the sha256 its index.json records (the metrics above describe the changed file)", file=out)
        return 1
    print(f"\n{'PASS' if metrics['pass'] else 'FAIL'}" + (f": {metrics['reason']}" if metrics["reason"] else ""), file=out)
    return 0 if metrics["pass"] else 1


def inspect_indexes(target: Path, reference: Path, criteria: dict, out) -> int:
    from npu_adapt.compare import compare_indexes

    outputs, failures = compare_indexes(_index_path(reference), _index_path(target), criteria)
    print(f"{target} (target) against {reference} (reference), float64", file=out)
    print(f"  criteria: {criteria_text(criteria)}", file=out)
    print_comparison(outputs, out)
    verdict = "ERROR (integrity)" if any("integrity: " in failure for failure in failures) else "FAIL" if failures else "PASS"
    print(f"\n{verdict}: {len(outputs) - len(failures)} of {len(outputs)} tensors pass", file=out)
    return 0 if not failures else 1


def inspect(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    paths = [Path(path) for path in args.paths]
    for path in paths:
        if not path.exists():
            print(f"npu-adapt inspect: no such file or directory: {path}", file=sys.stderr)
            return 2
    criteria = {**DEFAULT_CRITERIA, **{key: value for key, value in vars(args).items() if key in DEFAULT_CRITERIA and value is not None}}
    if all(path.suffix == ".npy" for path in paths):
        return inspect_files(paths, criteria, args.kind, out)
    if len(paths) == 2:
        return inspect_indexes(paths[0], paths[1], criteria, out)
    path = paths[0]
    if path.is_dir() and not (path / "index.json").is_file():
        return inspect_model(path, args.layers, out)
    index = read_json(_index_path(path))
    print(f"{index.get('model')} {index.get('role')} on {placement(index)}", file=out)
    print(tensors_table(index), file=out)
    return 0 if integrity_report(_index_path(path), index, out) else 1


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="npu-adapt", description="npu-adapt: inspect the evidence a workflow run wrote.")
    commands = cli.add_subparsers(dest="command", required=True)
    inspect_cli = commands.add_parser(
        "inspect",
        help="print a model's tensors and comparison, or compare two dumps",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect_cli.add_argument("paths", nargs="+", help="results/MODEL | DIR | A.npy [B.npy] | DIR_A DIR_B (A is the target, B the reference)")
    inspect_cli.add_argument("--layers", action="store_true", help="with results/MODEL: print every module of the layer comparison")
    inspect_cli.add_argument("--kind", choices=["hidden", "class_scores", "token_ids"], help="with A.npy B.npy: what they hold (default: as B's index.json says, else hidden)")
    for key, kind in (("rel_l2_max", float), ("cosine_min", float), ("atol", float), ("rtol", float)):
        inspect_cli.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, help=f"criterion (default {DEFAULT_CRITERIA[key]})")
    inspect_cli.add_argument("--top5", action=argparse.BooleanOptionalAction, default=None, help="class scores must also agree on every top-5 set")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if len(args.paths) > 2:
        parser().error("inspect takes one or two paths")
    return inspect(args)


if __name__ == "__main__":
    sys.exit(main())
