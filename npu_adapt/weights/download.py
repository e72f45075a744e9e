"""Downloads from the Hugging Face Hub (``hf:``, ``timm:``) and ModelScope (``modelscope:``):
the files a model needs, each verified against the source's listing, progress in the job log."""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import os
import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.std import tqdm

from npu_adapt.io import sha256_file
from npu_adapt.weights.failures import download_errors, one_line, with_retries
from npu_adapt.weights.sources import Source
from npu_adapt.weights.verify import (
    WeightsMismatch,
    describe_file,
    file_names,
    git_blob_id,
    read_record,
    use_cache,
)

if TYPE_CHECKING:
    from npu_adapt.config_types import DownloadSettings, ModelEntry

log = logging.getLogger("npu_adapt")
# The download clients' own loggers: their warnings (resumed transfers, retries) belong in the job log.
CLIENT_LOGGERS = ("huggingface_hub", "modelscope")

# What a model needs and nothing else: configs (and sharded-checkpoint indexes), safetensors,
# tokenizer files (tokenizer.json, vocab.txt, merges.txt, spiece.model, ...).
DEFAULT_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
# Pickled checkpoints, fetched only when the source has no safetensors at all.
PICKLE_PATTERNS = ["pytorch_model*.bin"]
REMOTE_CODE_PATTERNS = ["*.py"]

PROGRESS_SECONDS = 10


def log_clients_to(handlers: list[logging.Handler]) -> None:
    """Send the download clients' warnings to ``handlers`` (the job log's)."""
    for name in CLIENT_LOGGERS:
        client_log = logging.getLogger(name)
        client_log.setLevel(logging.WARNING)
        for handler in handlers:
            client_log.addHandler(handler)


def select_files(names: list[str], patterns: list[str]) -> list[str]:
    """The files to fetch: those matching ``patterns``; pickles only when no safetensors match."""
    chosen = [name for name in names if any(fnmatchcase(name, pattern) for pattern in patterns)]
    if not any(name.endswith(".safetensors") for name in chosen):
        chosen += [name for name in names if name not in chosen and any(fnmatchcase(name, p) for p in PICKLE_PATTERNS)]
    return sorted(chosen)


def patterns_of(entry: ModelEntry) -> list[str]:
    patterns = list(entry.allow_patterns or DEFAULT_PATTERNS)
    if entry.trust_remote_code:
        patterns += REMOTE_CODE_PATTERNS
    return patterns


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


def fetch_hub(source: Source, dest: Path, entry: ModelEntry, settings: DownloadSettings) -> dict:
    """Download the selected files of an hf:/timm: source into ``dest``, verified against the
    Hub's listing; return the manifest fields (commit, endpoint, files, verification)."""
    from huggingface_hub import HfApi, constants, hf_hub_download

    timeout = float(settings.timeout)
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


def fetch_modelscope(source: Source, dest: Path, entry: ModelEntry, settings: DownloadSettings) -> dict:
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


def fetch_download(source: Source, dest: Path, entry: ModelEntry, settings: DownloadSettings) -> dict:
    """A download source's files in ``dest``: downloaded and verified, or, offline or when the
    download fails, the cache of an earlier fetch verified against its record."""
    from huggingface_hub import constants

    record = read_record(dest)
    if settings.offline:
        return use_cache(dest, record, entry, "download.offline is true: no download attempted")
    if source.scheme != "modelscope" and constants.is_offline_mode():
        return use_cache(dest, record, entry, "HF_HUB_OFFLINE is set (offline): no download attempted")
    try:
        if source.scheme == "modelscope":
            return fetch_modelscope(source, dest, entry, settings)
        return fetch_hub(source, dest, entry, settings)
    except download_errors() as exc:
        if record is None or record.get("source") != entry.source:
            raise
        log.warning("%s; falling back to the files of the last fetch", exc)
        try:
            return use_cache(dest, record, entry, f"the download failed: {one_line(exc)}")
        except WeightsMismatch as cache_error:
            raise WeightsMismatch(f"{cache_error} (and the download failed: {one_line(exc)})") from exc
