"""Integrity of the evidence: a job reads a dump (.npy) or a weight file only after checking
that it is still the file its writer recorded (size and sha256 in index.json / manifest.json).

What is checked when (the README says the same):

- the size, always (a stat);
- the sha256, recomputed when the mtime differs from the one recorded, when the record has
  no mtime, and always for a file smaller than ``integrity.full_hash_below_mb`` (config,
  default 64 MB). A same-size edit whose mtime was put back is therefore caught in every
  file under that size, and missed only in larger ones (where a full hash per read would
  cost seconds per GB on every job).

A mismatch raises :class:`IntegrityError` naming each file and what changed; the jobs turn it
into status ``error`` (the evidence itself is bad), never into a silent pass.
"""

from __future__ import annotations

from pathlib import Path

from npu_adapt.config_types import config_schema
from npu_adapt.io import sha256_file

MB = 1 << 20
_settings: dict[str, int] = {}


class IntegrityError(Exception):
    """A file differs from the record its writer left; the message names it and what changed."""


def configure(config: dict | None) -> None:
    """Take ``integrity.full_hash_below_mb`` from the workflow config (a job's ``smk.config``);
    without a config (``npu-adapt inspect``), or the key unset, the schema's default."""
    below_mb = ((config or {}).get("integrity") or {}).get("full_hash_below_mb")
    if below_mb is None:
        below_mb = config_schema()["properties"]["integrity"]["properties"]["full_hash_below_mb"]["default"]
    _settings["full_hash_below_bytes"] = int(float(below_mb) * MB)


def full_hash_below() -> int:
    """Files smaller than this many bytes are always hashed in full."""
    if not _settings:
        configure(None)
    return _settings["full_hash_below_bytes"]


def file_problem(path: str | Path, recorded: dict, always_hash: bool = False) -> str | None:
    """How ``path`` differs from ``recorded`` (``sha256``, optionally ``bytes`` and
    ``mtime_ns``), or None when it matches."""
    path = Path(path)
    if not recorded.get("sha256"):
        return None  # written before records had a sha256: nothing to check against
    if not path.is_file():
        return f"{path}: missing"
    stat = path.stat()
    expected_bytes = recorded.get("bytes")
    if expected_bytes is not None and stat.st_size != expected_bytes:
        return f"{path}: {stat.st_size} bytes, expected {expected_bytes} (truncated or changed)"
    unchanged_stat = expected_bytes is not None and recorded.get("mtime_ns") == stat.st_mtime_ns
    if unchanged_stat and not always_hash and stat.st_size >= full_hash_below():
        return None  # fast path: a large file whose size and mtime are as recorded
    digest = sha256_file(path)
    if digest != recorded["sha256"]:
        return f"{path}: sha256 {digest[:16]}..., expected {recorded['sha256'][:16]}... (changed)"
    return None


def dump_problems(index_path: str | Path, index: dict) -> dict[str, str]:
    """Tensor name -> problem for every file an index.json lists that is not as recorded."""
    directory = Path(index_path).parent
    problems = {}
    for entry in index.get("tensors", []):
        if problem := file_problem(directory / entry["file"], entry):
            problems[entry["name"]] = problem
    return problems


def verify_dump(index_path: str | Path, index: dict) -> None:
    """Raise :class:`IntegrityError` when any file of the dump differs from its record."""
    if problems := dump_problems(index_path, index):
        raise IntegrityError("integrity: " + "; ".join(problems.values()))
