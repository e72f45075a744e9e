"""What every job shares: its log, and failure as data (docs/design.md "Failure is data").

A failure of the *model under test* (download, unknown architecture, unbuildable config,
load, forward, out of memory) is expected: the job writes its target with ``status:
blocked`` and the reason, and the workflow goes on. Code wraps those steps in
:func:`model_step`. So is a failure of the machine while one model's files are written
(disk full, quota: :func:`disk_step`): ``blocked`` with a reason that starts with
``environment:``, so a retry (``--config retry_blocked=true``) is the obvious next step.
Evidence that differs from what its writer recorded (integrity.IntegrityError) gives status
``error``. Any other exception is a bug in npu-adapt and fails the job with its traceback in
the log.
"""

from __future__ import annotations

import atexit
import errno
import gc
import logging
import re
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from npu_adapt.integrity import IntegrityError

TRACEBACK_LINES = 6
# Where a reason's traceback tail starts (reports.short_reason cuts it off for the reports).
TRACEBACK_MARK = " | traceback tail:"
# Errors of the machine, not of the model: no space left, quota exceeded, file size limit.
DISK_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit exceeded"}
ENVIRONMENT = "environment: "
# A model job imports torch and a model library: some 800,000 objects that live until it exits.
# At Python's default thresholds (700, 10, 10) the cyclic garbage collector walks all of them
# again and again while they are imported, and once more at exit: a fifth to a third of a
# model job's CPU time (bench/job_gc.py). A collection of the young objects every 100,000
# allocations still frees cyclic garbage within the job.
GC_THRESHOLDS = (100_000, 50, 100)


class ModelBlocked(Exception):
    """The model under test cannot go through this stage; ``str(exc)`` is the reason."""

    status = "blocked"


class EvidenceError(ModelBlocked):
    """A dump or weight file this stage reads differs from its record (status ``error``)."""

    status = "error"


def start_job(log_path: str | Path | None) -> logging.Logger:
    """What every job (and ``npu-adapt bench``) does first: log to its log file (Snakemake's
    ``log:``) and to stderr, and collect garbage at GC_THRESHOLDS."""
    gc.set_threshold(*GC_THRESHOLDS)
    atexit.register(gc.freeze)  # the collection at interpreter exit then walks nothing
    return setup_logging(log_path)


def setup_logging(log_path: str | Path | None, name: str = "npu_adapt") -> logging.Logger:
    """Log to the job's log file (Snakemake's ``log:``) and to stderr."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logging.captureWarnings(True)

    def log_crash(kind, value, tb):
        # A crash in npu-adapt's own code (not a model failure) still fails the job (exit
        # status 1), and the job's log keeps the traceback, not only Snakemake's stderr.
        if issubclass(kind, KeyboardInterrupt):
            return sys.__excepthook__(kind, value, tb)
        logger.critical("crash in npu-adapt (a bug, not a failure of the model):", exc_info=(kind, value, tb))

    sys.excepthook = log_crash
    return logger


def describe_exception(exc: BaseException, stage: str) -> str:
    """``stage: Type: message`` plus the last lines of the traceback."""
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    tail = "".join(lines).strip().splitlines()[-TRACEBACK_LINES:]
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{stage}: {type(exc).__name__}: {message}{TRACEBACK_MARK} " + " / ".join(line.strip() for line in tail)


def disk_problem(exc: BaseException) -> str | None:
    """``environment: disk full (ENOSPC) ...`` for an error the machine caused, else None:
    an OSError with a disk errno, or a library's report of one (safetensors writes through
    Rust: "I/O error: No space left on device (os error 28)")."""
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None and (match := re.search(r"\(os error (\d+)\)", str(exc))):
        code = int(match.group(1))
    if code not in DISK_ERRNOS:
        return None
    where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
    return f"{ENVIRONMENT}{DISK_ERRNOS[code]} ({errno.errorcode[code]}){where}: {detail}"


@contextmanager
def disk_step(stage: str):
    """Writing one model's files: a full disk or quota blocks the model (reason
    ``environment: ...``); any other error is ours and fails the job."""
    try:
        yield
    except Exception as exc:  # re-raised unless the disk caused it
        if problem := disk_problem(exc):
            raise ModelBlocked(f"{problem} ({stage})") from exc
        raise


@contextmanager
def model_step(stage: str):
    """Turn any exception raised by the model under test into :class:`ModelBlocked` (an
    integrity mismatch into :class:`EvidenceError`, a full disk into an ``environment:``
    reason)."""
    try:
        yield
    except ModelBlocked:
        raise
    except IntegrityError as exc:
        raise EvidenceError(f"{stage}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        from npu_adapt.weights.sources import SourceError

        if problem := disk_problem(exc):
            raise ModelBlocked(f"{problem} ({stage})") from exc
        if isinstance(exc, SourceError):  # our own message says it all (a typo and the nearest names)
            raise ModelBlocked(f"{stage}: {type(exc).__name__}: {exc}") from exc
        raise ModelBlocked(describe_exception(exc, stage)) from exc


def upstream_reason(**documents: dict) -> str | None:
    """The reason of the first upstream document that is blocked (or in error), or None."""
    for role, document in documents.items():
        if document and document.get("status") in ("blocked", "error"):
            return f"upstream {role} {document['status']}: {document.get('reason')}"
    return None


def upstream_status(**documents: dict) -> tuple[str, str] | None:
    """``(status, reason)`` of a stage whose upstream documents did not all go through:
    ``error`` when one of them is in error (bad evidence stays an error downstream, and
    ``retry_blocked`` leaves it), else ``blocked``; None when every one went through."""
    if (reason := upstream_reason(**documents)) is None:
        return None
    in_error = any(document and document.get("status") == "error" for document in documents.values())
    return ("error" if in_error else "blocked"), reason


def check_upstream(**documents: dict) -> None:
    """Raise when an upstream document is blocked (:class:`ModelBlocked`) or in error
    (:class:`EvidenceError`: bad evidence stays an error downstream, never a pass)."""
    for role, document in documents.items():
        if document and document.get("status") in ("blocked", "error"):
            kind = EvidenceError if document["status"] == "error" else ModelBlocked
            raise kind(f"upstream {role} {document['status']}: {document.get('reason')}")
