"""A run's layer dumps in msprobe's dump layout, so Ascend's own tools read them:
``msprobe compare`` (statistics or tensors) and its graph visualiser.

Layout written (what msprobe's PyTorch dump writes, one rank, one step)::

    DIR/{target,reference}/step0/rank0/dump.json       task, level, framework, data
                                      /construct.json  every key -> the module it ran in
                                      /stack.json      (no call stacks recorded: {})
                                      /dump_tensor_data/{key}.{input|output}.{i}.pt  (tensors mode)

``data`` keys follow msprobe: ``Module.{name}.{Class}.forward.{call}`` for a module,
``{API}.{call}.forward`` for an API call (``Functional.linear.0.forward``); each holds
``input_args`` and ``output`` lists of ``{type, dtype, shape, Max, Min, Mean, Norm,
requires_grad}`` (plus ``data_name`` with tensors). ``dtype`` is the compute dtype
(``torch.bfloat16``); a tensors dump's .pt holds the exact float32 widening of it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from npu_adapt.io import read_json, write_json

LEVELS = {("module",): "L0", ("api",): "L1"}


def msprobe_key(entry: dict) -> str:
    if entry.get("layer_kind", "module") == "api":
        return f"{entry['type']}.{entry['call']}.forward"
    return f"Module.{entry['module']}.{entry['type']}.forward.{entry['call']}"


def _norm(entry: dict) -> float | None:
    """The L2 norm: recorded by stats; for a tensors entry, from its finite values' mean and
    std (‖x‖² = n·(std² + mean²))."""
    if "norm" in entry:
        return entry["norm"]
    if entry.get("mean") is None:
        return None
    finite = math.prod(entry["shape"]) - entry.get("nan", 0) - entry.get("inf", 0)
    return math.sqrt(finite * (entry["std"] ** 2 + entry["mean"] ** 2))


def export_side(index_path: Path, out_dir: Path) -> dict:
    """One side's layer dump as msprobe's rank directory; returns dump.json's header."""
    import torch

    index = read_json(index_path)
    if index.get("status") == "blocked" or not index.get("mode"):
        raise ValueError(
            f"{index_path}: no layer capture to export ({index.get('reason') or index.get('mode_reason')})"
        )
    tensors = index["mode"] == "tensors"
    data_dir = out_dir / "dump_tensor_data"
    if tensors:
        data_dir.mkdir(parents=True, exist_ok=True)
    data, construct = {}, {}
    for entry in index["tensors"]:
        key = msprobe_key(entry)
        record = data.setdefault(key, {"input_args": [], "input_kwargs": {}, "output": []})
        construct[key] = entry.get("parent")
        side = record["input_args" if entry.get("io") == "input" else "output"]
        item = {
            "type": "torch.Tensor",
            "dtype": f"torch.{entry.get('compute_dtype') or entry.get('dtype')}",
            "shape": entry["shape"],
        }
        item.update(
            Max=entry.get("max"), Min=entry.get("min"), Mean=entry.get("mean"), Norm=_norm(entry), requires_grad=False
        )
        if tensors:
            item["data_name"] = f"{key}.{'input' if entry.get('io') == 'input' else 'output'}.{len(side)}.pt"
            torch.save(torch.from_numpy(np.load(index_path.parent / entry["file"])), data_dir / item["data_name"])
        side.append(item)
    header = {
        "task": "tensor" if tensors else "statistics",
        "level": LEVELS.get(tuple(index.get("layer_kinds") or ()), "mix"),
        "framework": "pytorch",
    }
    header["dump_data_dir"] = str(data_dir.resolve()) if tensors else None
    write_json(out_dir / "dump.json", {**header, "data": data})
    write_json(out_dir / "construct.json", construct)
    write_json(out_dir / "stack.json", {})
    return {**header, "entries": len(data)}


def export_msprobe(target_dir: str | Path, out_dir: str | Path) -> dict:
    """Both sides of a target's layer dumps (``results/{model}/layers/reference`` and
    ``results/{model}/{target}/layers/dump``) under ``out_dir``; returns what was written and
    the msprobe command that compares them."""
    target_dir, out_dir = Path(target_dir), Path(out_dir)
    sides = {
        "reference": target_dir.parent / "layers" / "reference" / "index.json",
        "target": target_dir / "layers" / "dump" / "index.json",
    }
    written = {}
    for role, index in sides.items():
        rank_dir = out_dir / role / "step0" / "rank0"
        written[role] = {"path": str(rank_dir / "dump.json"), **export_side(index, rank_dir)}
    written["command"] = (
        f"msprobe compare --target_path {out_dir / 'target' / 'step0'} "
        f"--golden_path {out_dir / 'reference' / 'step0'} --output_path {out_dir / 'compare'}"
    )
    return written
