"""Weights from every source (docs/design.md "Weights"): fetched, verified, and described by a manifest.

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
moving is never cut off. Transient failures (connection, DNS, timeout, 5xx, 429, a transfer
cut short) are retried ``download.retries`` times, ``download.backoff`` seconds apart,
doubling; a 404 or 401 is not. Each file's progress goes to the job log.

Safe loading: safetensors are preferred (a ``.bin`` pickle is fetched only when the source
has no safetensors, and adapters load it with ``torch.load(weights_only=True)``); remote
code (``*.py``) is fetched only when the entry sets ``trust_remote_code``, and the manifest
records that flag and hashes the code files.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import logging
import os
import shutil
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tqdm.std import tqdm

from npu_adapt.integrity import IntegrityError, file_problem
from npu_adapt.io import CHUNK_BYTES, read_json, sha256_file, write_json

log = logging.getLogger("npu_adapt")

SCHEMES = ("hf", "modelscope", "timm", "local", "pkg")
HUB_SCHEMES = ("hf", "modelscope", "timm")
# What a model needs and nothing else: configs (and sharded-checkpoint indexes), safetensors,
# tokenizer files (tokenizer.json, vocab.txt, merges.txt, spiece.model, ...).
DEFAULT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
# Pickled checkpoints, fetched only when the source has no safetensors at all.
PICKLE_PATTERNS = ["pytorch_model*.bin"]
REMOTE_CODE_PATTERNS = ["*.py"]
RECORD = Path(".cache") / "npu-adapt" / "manifest.json"
IGNORED_PARTS = {".cache", "__pycache__"}  # client metadata and our record; bytecode
PROGRESS_SECONDS = 10
MAX_BACKOFF_SECONDS = 60


class WeightsMismatch(IntegrityError):
    """Weight files differ from the record they are checked against; the message names them."""


class DownloadError(Exception):
    """A download failed (after its retries); the message says why in plain words."""


class SourceError(ValueError):
    """A ``local:`` or ``pkg:`` source names something that cannot hold weights."""


def download_errors() -> tuple[type[BaseException], ...]:
    """What a failed download raises: the network (httpx2), the Hub and ModelScope clients'
    errors, the file system (OSError: no space left, a file missing offline), and ours
    (DownloadError, WeightsMismatch). Anything else is a bug and is not caught."""
    import httpx2
    from huggingface_hub import errors

    classes = [
        OSError,
        httpx2.HTTPError,
        DownloadError,
        WeightsMismatch,
        errors.HFValidationError,
        errors.EntryNotFoundError,
        errors.XetDownloadError,
    ]
    if importlib.util.find_spec("modelscope") is not None:
        from modelscope.hub import errors as modelscope_errors

        classes += [
            value
            for value in vars(modelscope_errors).values()
            if isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == modelscope_errors.__name__
        ]
    if importlib.util.find_spec("modelscope_hub") is not None:
        # modelscope >= 1.40 raises its hub client's errors (HubError: 404, 5xx, network).
        from modelscope_hub.errors import HubError

        classes.append(HubError)
    if importlib.util.find_spec("requests") is not None:
        import requests  # the ModelScope client's transport

        classes.append(requests.RequestException)
    return tuple(classes)


# Failures of the model's source that fetch records (with the fallback, if any) rather than crash on.
SOURCE_ERRORS = (SourceError, ModuleNotFoundError)


@dataclass
class Source:
    scheme: str  # hf, modelscope, timm, local, pkg
    name: str
    revision: str | None

    @classmethod
    def parse(cls, text: str) -> Source:
        scheme, sep, rest = text.partition(":")
        if not sep or scheme not in SCHEMES or not rest:
            raise ValueError(f"source {text!r}: expected hf:, modelscope:, timm:, local: or pkg: and a name")
        if scheme not in HUB_SCHEMES:
            return cls(scheme, rest, None)  # a path may contain '@'
        name, _, revision = rest.partition("@")
        parts = name.split("/")
        if not all(parts) or len(parts) != (1 if scheme == "timm" else 2):
            expected = "timm:ARCH.TAG" if scheme == "timm" else f"{scheme}:ORG/NAME"
            raise ValueError(f"source {text!r}: expected {expected}[@REVISION]")
        return cls(scheme, name, revision or None)


# -- files, hashes and their checks -------------------------------------------------------


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
        manifest_path = f"{manifest.get('weights_root', 'weights')}/{manifest.get('model', 'MODEL')}/manifest.json"
        raise WeightsMismatch(
            f"{exc}: the weights changed after fetch_weights hashed them; to download or verify this "
            f"model's weights again: snakemake --cores 1 results/all --forcerun {manifest_path}"
        ) from None
    return directory


def select_files(names: list[str], patterns: list[str]) -> list[str]:
    """The files to fetch: those matching ``patterns``; pickles only when no safetensors match."""
    chosen = [name for name in names if any(fnmatchcase(name, pattern) for pattern in patterns)]
    if not any(name.endswith(".safetensors") for name in chosen):
        chosen += [name for name in names if name not in chosen and any(fnmatchcase(name, p) for p in PICKLE_PATTERNS)]
    return sorted(chosen)


def patterns_of(entry: dict) -> list[str]:
    patterns = list(entry.get("allow_patterns") or DEFAULT_PATTERNS)
    if entry.get("trust_remote_code"):
        patterns += REMOTE_CODE_PATTERNS
    return patterns


# -- retries and failures in plain words ----------------------------------------------------


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a failed request: on the response (httpx2, requests), or on the
    error itself (the ModelScope hub client's APIError)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if status is not None else getattr(exc, "status_code", None)


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_kind(exc: BaseException) -> str:
    """What went wrong, as a person would say it (the exception follows in the reason)."""
    import httpx2

    for error in _chain(exc):
        status = _status(error)
        if status:
            words = {
                401: "authentication required",
                403: "access denied",
                404: "not found",
                408: "timed out",
                429: "rate limited",
            }
            return f"{words.get(status, 'server error' if status >= 500 else 'HTTP error')} (HTTP {status})"
        if isinstance(error, httpx2.TimeoutException):
            return "timed out"
        if isinstance(error, httpx2.ConnectError):
            text = str(error).lower()
            return (
                "DNS lookup failed"
                if "name" in text and ("resolution" in text or "not known" in text)
                else "connection failed"
            )
        if isinstance(error, httpx2.TransportError):
            return "connection broken"
    return "failed"


def is_transient(exc: BaseException) -> bool:
    """Worth another try: network errors, timeouts, 5xx/408/429, a transfer cut short.
    Not: 4xx (not found, auth required), missing packages, our own errors."""
    import httpx2

    for error in _chain(exc):
        status = _status(error)
        if status:
            return status >= 500 or status in (408, 429)
        if isinstance(error, httpx2.TransportError) or "Consistency check failed" in str(error):
            return True
        if type(error).__name__ in ("NetworkError", "RequestTimeoutError", "ConnectionError", "Timeout"):
            return True  # the ModelScope client's (modelscope_hub, requests) transport failures
    return False


def with_retries(action, what: str, settings: dict):
    """``action()``, retried on transient failures with exponential backoff
    (``download.backoff`` seconds, doubling, at most ``download.retries`` more times)."""
    attempts = int(settings.get("retries", 2)) + 1
    backoff = float(settings.get("backoff", 2))
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except download_errors() as exc:
            brief = f"{failure_kind(exc)}: {type(exc).__name__}: {_one_line(exc)}"
            root = list(_chain(exc))[-1]
            if root is not exc and _status(exc) is None:  # e.g. "file not found locally" from a ConnectError
                brief += f" (cause: {type(root).__name__}: {_one_line(root)})"
            if attempt < attempts and is_transient(exc):
                delay = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                log.warning("%s: attempt %d of %d %s; retrying in %.1f s", what, attempt, attempts, brief, delay)
                time.sleep(delay)
                continue
            tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
            raise DownloadError(f"{what}: {brief} [gave up after {tries}]") from exc


class LogProgress(tqdm):
    """Progress of one file in the job log, every PROGRESS_SECONDS and when done (a job's
    stderr is not its log, and a bar redrawn with carriage returns is unreadable in a file).
    huggingface_hub creates one per file through ``tqdm_class``."""

    def __init__(self, *args, label: str = "", **kwargs):
        kwargs.pop("name", None)
        known = "{desc}: {percentage:3.0f}% of {total_fmt}{unit} [{elapsed} elapsed, {remaining} left, {rate_fmt}]"
        kwargs.update(
            desc=label or kwargs.get("desc"),
            file=io.StringIO(),
            mininterval=PROGRESS_SECONDS,
            disable=False,
            bar_format=known if kwargs.get("total") else "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}]",
        )
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if self.n:  # not the empty bar drawn on creation
            log.info("download %s", self)
        return True


# -- sources --------------------------------------------------------------------------------


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")


def hub_repo(source: Source) -> str:
    """The Hub repository of an hf: or timm: source (timm's own pretrained config names it)."""
    if source.scheme != "timm":
        return source.name
    import timm

    cfg = timm.models.get_pretrained_cfg(source.name)  # None when unknown to this timm version
    return (cfg.hf_hub_id if cfg else None) or f"timm/{source.name}"  # else the Hub's convention


def source_problem(described: dict, sibling, path: Path) -> str | None:
    """How a downloaded file differs from the source's listing, or None."""
    lfs = sibling.lfs
    size = lfs.size if lfs is not None else sibling.size
    if size is not None and size != described["bytes"]:
        return f"{described['bytes']} bytes, the source lists {size} (truncated or changed)"
    if lfs is not None and lfs.sha256 and lfs.sha256 != described["sha256"]:
        return f"sha256 {described['sha256'][:16]}..., the source lists {lfs.sha256[:16]}... (changed)"
    if lfs is None and sibling.blob_id and git_blob_id(path) != sibling.blob_id:
        return f"git blob id differs from the source's {sibling.blob_id[:16]}... (changed)"
    return None


def fetch_hub(source: Source, dest: Path, entry: dict, settings: dict) -> dict:
    """Download the selected files of an hf:/timm: source into ``dest``, verified against the
    Hub's listing; return the manifest fields (commit, endpoint, files, verification)."""
    from huggingface_hub import HfApi, constants, hf_hub_download

    timeout = float(settings.get("timeout", 30))
    # Seconds without data before a transfer counts as stalled (it is then retried and resumed);
    # a slow transfer that keeps moving is never cut off: large files on slow links must finish.
    constants.HF_HUB_DOWNLOAD_TIMEOUT = timeout
    endpoint, repo = hub_endpoint(), hub_repo(source)
    revision = source.revision or "main"
    api = HfApi(endpoint=endpoint)
    info = with_retries(
        lambda: api.model_info(repo, revision=revision, files_metadata=True, timeout=timeout),
        f"{repo}@{revision} from {endpoint}",
        settings,
    )
    listing = {sibling.rfilename: sibling for sibling in info.siblings or []}
    wanted = select_files(list(listing), patterns_of(entry))
    if not wanted:
        raise FileNotFoundError(f"{repo}@{info.sha}: no file matches {patterns_of(entry)} (it has {sorted(listing)})")
    _remove_unwanted(dest, wanted)
    total = sum((listing[name].lfs.size if listing[name].lfs else listing[name].size) or 0 for name in wanted)
    log.info(
        "%s@%s = commit %s from %s: %d files, %.1f MB", repo, revision, info.sha, endpoint, len(wanted), total / 1e6
    )

    def download(name: str, force: bool) -> None:
        with_retries(
            lambda: hf_hub_download(
                repo,
                name,
                revision=info.sha,
                local_dir=dest,
                endpoint=endpoint,
                etag_timeout=timeout,
                force_download=force,
                tqdm_class=functools.partial(LogProgress, label=name),
            ),
            f"{repo}/{name}",
            settings,
        )

    files = []
    for position, name in enumerate(wanted, 1):
        started = time.monotonic()
        download(name, force=False)
        described = describe_file(dest, name)
        if problem := source_problem(described, listing[name], dest / name):
            log.warning("%s: %s; downloading it again", dest / name, problem)
            (dest / name).unlink()
            download(name, force=True)
            described = describe_file(dest, name)
            if problem := source_problem(described, listing[name], dest / name):
                raise WeightsMismatch(f"{dest / name}: {problem}, even freshly downloaded from {endpoint}")
        log.info(
            "[%d/%d] %s: %d bytes, sha256 %s, matches the source (%.1f s)",
            position,
            len(wanted),
            name,
            described["bytes"],
            described["sha256"],
            time.monotonic() - started,
        )
        files.append(described)
    checked = "sha256 (LFS) or git blob id" if all(listing[n].lfs or listing[n].blob_id for n in wanted) else "size"
    return {
        "commit": info.sha,
        "endpoint": endpoint,
        "files": files,
        "verification": f"every file's {checked} matches the source's listing",
    }


def modelscope_endpoint() -> str:
    """The ModelScope hub the client talks to: ``MODELSCOPE_ENDPOINT`` (older clients read
    ``MODELSCOPE_DOMAIN``), else modelscope.cn, resolved as the client does, but read anew
    each time (the client's default configuration is built once per process)."""
    from modelscope_hub import HubConfig

    return HubConfig().endpoint.rstrip("/")


def modelscope_progress():
    """The ModelScope client's per-file progress callback class, writing to the job log
    through :class:`LogProgress` (the client's own bars go to stderr, which is not the log)."""
    from modelscope_hub import ProgressCallback

    class LogProgressCallback(ProgressCallback):
        def __init__(self, filename: str, file_size: int):
            super().__init__(filename, file_size)
            self.bar = LogProgress(total=file_size or None, unit="B", unit_scale=True, label=filename)

        def update(self, size: int) -> None:
            self.bar.update(size)

        def end(self) -> None:
            self.bar.close()

    return LogProgressCallback


def fetch_modelscope(source: Source, dest: Path, entry: dict, settings: dict, _record: dict | None = None) -> dict:
    """Download the selected files of a modelscope: source into ``dest`` with the ModelScope
    client (``snapshot_download``: revision, allow patterns), verified against the hub's
    listing (its sha256 and size per file); return the manifest fields."""
    if importlib.util.find_spec("modelscope") is None:
        raise ModuleNotFoundError("modelscope is not installed (pip install modelscope, see requirements/cpu.txt)")
    from modelscope import snapshot_download
    from modelscope_hub import HubApi

    endpoint, revision = modelscope_endpoint(), source.revision or "master"
    listing = with_retries(
        lambda: {
            item.path: item
            for item in HubApi(endpoint=endpoint).list_repo_files(source.name, "model", revision=revision)
            if not item.is_dir
        },
        f"modelscope {source.name}@{revision} from {endpoint}",
        settings,
    )
    wanted = select_files(list(listing), patterns_of(entry))
    if not wanted:
        raise FileNotFoundError(
            f"modelscope {source.name}@{revision}: no file matches {patterns_of(entry)} (it has {sorted(listing)})"
        )
    _remove_unwanted(dest, wanted)
    # The client keeps a file it already has when its size matches: drop a changed one first.
    for name in wanted:
        path, listed = dest / name, listing[name]
        if path.is_file() and listed.sha256 and sha256_file(path) != listed.sha256:
            log.warning("%s differs from the source's sha256; downloading it again", path)
            path.unlink()
    log.info(
        "modelscope %s@%s from %s: %d files, %.1f MB",
        source.name,
        revision,
        endpoint,
        len(wanted),
        sum(listing[n].size or 0 for n in wanted) / 1e6,
    )
    started = time.monotonic()
    with_retries(
        lambda: snapshot_download(
            source.name,
            revision=revision,
            local_dir=str(dest),
            cache_dir=str(dest / ".cache" / "modelscope"),  # its locks and metadata, beside our record
            allow_patterns=wanted,
            endpoint=endpoint,
            progress_callbacks=[modelscope_progress()],
        ),
        f"modelscope {source.name}@{revision}",
        settings,
    )
    files, problems = [], []
    for name in wanted:
        if not (dest / name).is_file():
            problems.append(f"{dest / name}: missing after the download")
            continue
        described, listed = describe_file(dest, name), listing[name]
        if listed.size is not None and described["bytes"] != listed.size:
            problems.append(f"{dest / name}: {described['bytes']} bytes, the source lists {listed.size}")
        elif listed.sha256 and described["sha256"] != listed.sha256:
            problems.append(
                f"{dest / name}: sha256 {described['sha256'][:16]}..., the source lists {listed.sha256[:16]}..."
            )
        files.append(described)
    if problems:
        raise WeightsMismatch("; ".join(problems) + f" (freshly downloaded from {endpoint})")
    log.info("%d files, every sha256 matches the source's listing (%.1f s)", len(files), time.monotonic() - started)
    checked = "sha256" if all(listing[n].sha256 for n in wanted) else "size"
    return {
        "commit": None,
        "endpoint": endpoint,
        "files": files,
        "verification": f"every file's {checked} matches the source's listing",
    }


def _remove_unwanted(dest: Path, wanted: list[str]) -> None:
    """A download directory holds exactly the selected files of one source (a stale pickle or
    another source's file beside them would be listed and possibly loaded)."""
    if dest.is_dir():
        for item in file_names(dest):
            if item not in wanted:
                log.info("removing %s (not part of this source's selection)", dest / item)
                (dest / item).unlink()


def use_cache(dest: Path, record: dict | None, entry: dict, why: str) -> dict:
    """The weights already in ``dest``, checked against the last fetch's record."""
    if record is None:
        if not (dest.is_dir() and file_names(dest)):
            raise FileNotFoundError(
                f"{why}, and {dest} holds no weights of {entry['source']} (fetch them where the source "
                f"is reachable, then copy {dest.parent} here)"
            )
        log.warning("%s: no record of an earlier fetch in %s; hashing the files as found", why, dest)
        return {
            "commit": None,
            "endpoint": None,
            "files": list_files(dest),
            "verification": "none: no record of an earlier fetch (cache prepared elsewhere); files hashed as found",
        }
    if record.get("source") != entry["source"]:
        raise WeightsMismatch(f"{why}, and {dest} holds weights of {record.get('source')}, not {entry['source']}")
    files = verify_files(dest, record["files"], always_hash=True)
    log.info(
        "%s: using %d cached files of %s, sha256 verified against the last fetch's record",
        why,
        len(files),
        entry["source"],
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


def fetch_download(source: Source, dest: Path, entry: dict, settings: dict) -> dict:
    """A download source's files in ``dest``: downloaded and verified, or, offline or when the
    download fails, the cache of an earlier fetch verified against its record."""
    from huggingface_hub import constants

    record = read_record(dest)
    if settings.get("offline"):
        return use_cache(dest, record, entry, "download.offline is true: no download attempted")
    if source.scheme != "modelscope" and constants.is_offline_mode():
        return use_cache(dest, record, entry, "HF_HUB_OFFLINE is set (offline): no download attempted")
    try:
        if source.scheme == "modelscope":
            return fetch_modelscope(source, dest, entry, settings, record)
        return fetch_hub(source, dest, entry, settings)
    except download_errors() as exc:
        if record is None or record.get("source") != entry["source"]:
            raise
        log.warning("%s; falling back to the files of the last fetch", exc)
        try:
            return use_cache(dest, record, entry, f"the download failed: {_one_line(exc)}")
        except WeightsMismatch as cache_error:
            raise WeightsMismatch(f"{cache_error} (and the download failed: {_one_line(exc)})") from exc


def resolve_installed(source: Source) -> tuple[Path, dict]:
    """The directory a ``local:`` or ``pkg:`` source names, and its provenance.

    ``local:PATH``: ``~`` is expanded, a relative path is taken from the working directory
    (where results/ and weights/ are), symlinks are resolved; it must be an existing directory.
    ``pkg:PACKAGE/SUBDIR``: a directory inside the installed package, never outside it."""
    if source.scheme == "local":
        path = Path(source.name).expanduser().resolve()
        if not path.exists():
            raise FileNotFoundError(f"local:{source.name}: {path} does not exist")
        if not path.is_dir():
            raise NotADirectoryError(
                f"local:{source.name}: {path} is a file; name the directory holding config.json and the weights"
            )
        return path, {}
    package, _, subdir = source.name.partition("/")
    spec = importlib.util.find_spec(package) if all(p.isidentifier() for p in package.split(".")) else None
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"pkg:{source.name}: no installed Python package {package!r}")
    root = Path(list(spec.submodule_search_locations)[0]).resolve()
    path = (root / subdir).resolve()
    if not path.is_relative_to(root):
        raise SourceError(f"pkg:{source.name}: {path} is outside the package {root}")
    if not path.is_dir():
        raise FileNotFoundError(f"pkg:{source.name}: the package has no directory {subdir!r} ({path})")
    distributions = importlib.metadata.packages_distributions().get(package) or [package]
    try:
        version = importlib.metadata.version(distributions[0])
    except importlib.metadata.PackageNotFoundError:
        version = None
    return path, {"package": {"name": distributions[0], "version": version}}


def materialise_random_init(entry: dict, dest: Path, seed: int, base_dir: Path) -> list[dict]:
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
            log.info("building %s architecture with seed %d (random init)", entry["family"], seed)
            model = adapter.random_init(seed)
            if dest.exists():
                shutil.rmtree(dest)
            adapter.save(model, dest)
            return list_files(dest)
    except Exception:
        shutil.rmtree(dest, ignore_errors=True)  # frees the space a full disk needs back
        raise


def fetch(model: str, entry: dict, weights_root: Path, settings: dict, seed: int, base_dir: Path) -> dict:
    """Make the model's weights available locally and verified; return its manifest."""
    source = Source.parse(entry["source"])
    manifest = {
        "model": model,
        "source": entry["source"],
        "revision": source.revision,
        "commit": None,
        "endpoint": None,
        "pretrained": True,
        "reason": None,
        "status": "ok",
        "trust_remote_code": bool(entry.get("trust_remote_code", False)),
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
        log.warning("no weights from %s: %s", entry["source"], reason)
        if entry.get("fallback") != "random-init":
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


ENVIRONMENT_KINDS = (
    "timed out",
    "connection failed",
    "DNS lookup failed",
    "connection broken",
    "server error",
    "rate limited",
)


def failure_reason(exc: Exception, stage: str) -> str:
    """Our own errors say everything in their message; anything else keeps its traceback tail.
    A failure of the machine or the network (disk full, timeout, no connection, 5xx) starts
    with ``environment:``: retrying later may well succeed."""
    from npu_adapt.jobs import ENVIRONMENT, describe_exception, disk_problem

    for error in _chain(exc):
        if problem := disk_problem(error):
            return f"{problem} ({stage})"
    environment = ENVIRONMENT if failure_kind(exc).startswith(ENVIRONMENT_KINDS) else ""
    if isinstance(
        exc, (DownloadError, WeightsMismatch, FileNotFoundError, NotADirectoryError, ModuleNotFoundError, SourceError)
    ):
        return f"{environment}{stage}: {type(exc).__name__}: {_one_line(exc, 2000)}"
    return environment + describe_exception(exc, stage)
