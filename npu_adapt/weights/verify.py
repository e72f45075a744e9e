"""Weight files described, hashed and checked: against a manifest (:func:`verified_dir`, every
job that loads weights), and against the record of the last fetch (:func:`use_cache`, offline
or when a download fails)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from npu_adapt.integrity import IntegrityError, file_problem
from npu_adapt.io import CHUNK_BYTES, read_json, sha256_file

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry

log = logging.getLogger("npu_adapt")

RECORD = Path(".cache") / "npu-adapt" / "manifest.json"
IGNORED_PARTS = {".cache", "__pycache__"}  # client metadata and our record; bytecode


class WeightsMismatch(IntegrityError):
    """Weight files differ from the record they are checked against; the message names them."""


def describe_file(directory: Path, name: str) -> dict:
    path = directory / name
    stat = path.stat()
    return {"path": name, "bytes": stat.st_size, "sha256": sha256_file(path), "mtime_ns": stat.st_mtime_ns}


def file_names(directory: Path) -> list[str]:
    """Every regular file under ``directory``, as sorted paths relative to it (without the
    download clients' metadata, our record and bytecode)."""
    directory = Path(directory)
    return sorted(
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() and not IGNORED_PARTS.intersection(path.relative_to(directory).parts)
    )


def list_files(directory: Path) -> list[dict]:
    """Every file under ``directory`` with its size, sha256 and mtime."""
    return [describe_file(Path(directory), name) for name in file_names(directory)]


def git_blob_id(path: Path) -> str:
    """The id git (and the Hub's ``blobId``) gives a file's content."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def verify_files(directory: Path, expected: list[dict], always_hash: bool) -> list[dict]:
    """Check ``directory`` against ``expected`` manifest entries; return the files as they are.

    Sizes are always compared. The sha256 is recomputed when ``always_hash`` is set, for a
    file whose mtime differs from the one recorded when it was hashed, and for every file
    under ``integrity.full_hash_below_mb`` (npu_adapt.integrity).
    Raises :class:`WeightsMismatch` naming every file that is missing or differs."""
    directory = Path(directory)
    problems, found = [], []
    for item in expected:
        path = directory / item["path"]
        if problem := file_problem(path, item, always_hash=always_hash):
            problems.append(problem)
            continue
        found.append({**item, "mtime_ns": path.stat().st_mtime_ns})
    if problems:
        raise WeightsMismatch("; ".join(problems))
    return found


def verified_dir(manifest: dict) -> Path:
    """The weights directory of a manifest, after a cheap check that its files are still the
    ones fetch_weights hashed (for the jobs that load weights)."""
    directory = Path(manifest["dir"])
    try:
        verify_files(directory, manifest["files"], always_hash=False)
    except WeightsMismatch as exc:
        # fetch records where it wrote the manifest (config weights_dir); a manifest of an older
        # run may not say, and then it is the default weights_dir's.
        manifest_path = manifest.get("manifest_path") or f"weights/{manifest.get('model', 'MODEL')}/manifest.json"
        raise WeightsMismatch(
            f"{exc}: the weights changed after fetch_weights hashed them; to download or verify this "
            f"model's weights again: snakemake --cores 1 results/all --forcerun {manifest_path}"
        ) from None
    return directory


def use_cache(dest: Path, record: dict | None, entry: ModelEntry, why: str) -> dict:
    """The weights already in ``dest``, checked against the last fetch's record."""
    if record is None:
        if not (dest.is_dir() and file_names(dest)):
            raise FileNotFoundError(
                f"{why}, and {dest} holds no weights of {entry.source} (fetch them where the source "
                f"is reachable, then copy {dest.parent} here)"
            )
        log.warning("%s: no record of an earlier fetch in %s; hashing the files as found", why, dest)
        return {
            "commit": None,
            "endpoint": None,
            "files": list_files(dest),
            "verification": "none: no record of an earlier fetch (cache prepared elsewhere); files hashed as found",
        }
    if record.get("source") != entry.source:
        raise WeightsMismatch(f"{why}, and {dest} holds weights of {record.get('source')}, not {entry.source}")
    files = verify_files(dest, record["files"], always_hash=True)
    log.info(
        "%s: using %d cached files of %s, sha256 verified against the last fetch's record",
        why,
        len(files),
        entry.source,
    )
    return {
        "commit": record.get("commit"),
        "endpoint": record.get("endpoint"),
        "files": files,
        "verification": f"every file's sha256 matches the record of the last fetch ({why})",
    }


def read_record(dest: Path) -> dict | None:
    path = dest / RECORD
    return read_json(path) if path.is_file() else None
