"""What every job shares: its log, and failure as data (docs/design.md "Failure is data").

A failure of the *model under test* (download, load, forward, out of memory) is expected:
the job writes its target with ``status: blocked`` and the reason, and the workflow goes on.
Code wraps those steps in :func:`model_step`. Any other exception is a bug in npu-adapt and
fails the job with its traceback in the log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

TRACEBACK_LINES = 6


class ModelBlocked(Exception):
    """The model under test cannot go through this stage; ``str(exc)`` is the reason."""


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
    return f"{stage}: {type(exc).__name__}: {message} | traceback tail: " + " / ".join(line.strip() for line in tail)


@contextmanager
def model_step(stage: str):
    """Turn any exception raised by the model under test into :class:`ModelBlocked`."""
    try:
        yield
    except ModelBlocked:
        raise
    except Exception as exc:
        raise ModelBlocked(describe_exception(exc, stage)) from exc


def upstream_reason(**documents: dict) -> str | None:
    """The reason of the first upstream document that is blocked, or None."""
    for role, document in documents.items():
        if document and document.get("status") == "blocked":
            return f"upstream {role} blocked: {document.get('reason')}"
    return None
