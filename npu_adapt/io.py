"""Files the workflow writes: JSON documents, tensor dumps (.npy + index.json), hashes.

Every JSON file is written atomically (temp file + rename) so an interrupted job never
leaves a half-written target that a later run would mistake for a result.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from npu_adapt.metrics.stats import streamed_stats

CHUNK_BYTES = 1 << 24


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def clean_json(value: Any) -> Any:
    """JSON has no NaN/Inf: write them as null (the reason is stated beside them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: clean_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(item) for item in value]
    if isinstance(value, np.generic):
        return clean_json(value.item())
    return value


def write_json(path: str | Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(clean_json(data), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


# The CSV convention, one for every table the workflow writes (compare.csv, layers/compare.csv,
# benchmark.csv, leaderboard.csv), so each reads back with read_csv into proper dtypes:
# - a missing value, one that does not apply, or a non-finite float (NaN/Inf, null in the
#   JSON too) is the word ``null``, never a blank cell; the row's reason says why;
# - booleans are ``true`` / ``false``;
# - floats are written in full: the shortest text that reads back as the identical float64
#   (Python's repr, at most 17 significant digits), so a CSV number equals its JSON number.
#   Reports meant for people (cards, leaderboard.md/.html) round to 6 significant digits;
# - integers as integers; lists (shapes) as ``AxBxC``; text as it is (quoted where needed).
CSV_NULL = "null"


def csv_value(value):
    """A CSV cell under the convention above."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None  # written as CSV_NULL
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, list):
        return "x".join(str(item) for item in value)
    if isinstance(value, np.generic):
        return csv_value(value.item())
    return value


def write_csv(path: str | Path, rows: list[dict], columns: list[str]) -> None:
    """One row per dict, in ``columns`` order (other keys ignored), under the CSV convention.
    The standard library's writer: each cell keeps its Python type (an integer column with a
    null stays integers, a float keeps every digit), and no job pays for importing pandas."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            cells = (csv_value(row.get(column)) for column in columns)
            writer.writerow([CSV_NULL if cell is None else cell for cell in cells])


def read_csv(path: str | Path):
    """A CSV the workflow wrote, as a pandas DataFrame: ``null`` is missing (and only that:
    a reason reading "n/a" or "NA" stays text), true/false are booleans, numbers are numbers."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[CSV_NULL], true_values=["true"], false_values=["false"])


def write_run_manifest(results: Path, manifest: Path) -> int:
    """The run manifest ``manifest`` (results/all): when it was written, and every file under
    ``results`` but itself with its size and sha256. Returns how many files it lists."""
    artifacts = sorted(path for path in results.rglob("*") if path.is_file() and path != manifest)
    write_json(
        manifest,
        {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "artifacts": [
                {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256_file(path)} for path in artifacts
            ],
        },
    )
    return len(artifacts)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def to_numpy(tensor: Any) -> np.ndarray:
    """A torch tensor on any device, as a numpy array; bfloat16 widens to float32 (numpy has
    no bfloat16, and the widening is exact)."""
    import torch

    tensor = tensor.detach().to("cpu")
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.to(torch.float32)
    return tensor.numpy()


def save_tensor(path: str | Path, name: str, array: np.ndarray, kind: str = "hidden") -> dict:
    """Save one array as ``path`` (.npy); return its index entry (docs/design.md, index.json)."""
    path = Path(path)
    np.save(path, np.ascontiguousarray(array))
    stat = path.stat()
    entry = {
        "name": name,
        "file": path.name,
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": sha256_file(path),
        # Size and mtime let readers skip the full hash of a large unchanged file (integrity.py).
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "kind": kind,
    }
    entry.update(streamed_stats(array))
    return entry


def dump_tensors(
    directory: str | Path, tensors: dict[str, np.ndarray], kinds: dict[str, str] | None = None
) -> list[dict]:
    """Save each array as ``NAME.npy`` in ``directory``; return the index entries."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [
        save_tensor(directory / f"{name}.npy", name, array, (kinds or {}).get(name, "hidden"))
        for name, array in tensors.items()
    ]


def load_tensors(index_path: str | Path) -> dict[str, np.ndarray]:
    """The tensors listed in an index.json, by name, after checking each file against the
    size and sha256 the index records (integrity.IntegrityError when one differs)."""
    from npu_adapt.integrity import verify_dump

    index_path = Path(index_path)
    index = read_json(index_path)
    verify_dump(index_path, index)
    return {item["name"]: np.load(index_path.parent / item["file"]) for item in index["tensors"]}
