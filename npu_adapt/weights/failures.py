"""Download failures: which exceptions are failures of a download (not bugs), which are worth
another try, retries with backoff, and the reason a manifest records, in plain words."""

from __future__ import annotations

import logging
import socket
import sys
import time
from typing import TYPE_CHECKING

from npu_adapt.weights.sources import SourceError
from npu_adapt.weights.verify import WeightsMismatch

if TYPE_CHECKING:
    from npu_adapt.config_types import DownloadSettings

log = logging.getLogger("npu_adapt")

MAX_BACKOFF_SECONDS = 60


class DownloadError(Exception):
    """A download failed (after its retries); the message says why in plain words."""


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
    # The ModelScope client's errors and its transport's, only where this process imported them:
    # an error whose module was never imported cannot be in flight, and importing modelscope
    # costs seconds (it imports torch) in every job that fails to download from the Hub.
    if modelscope_errors := sys.modules.get("modelscope.hub.errors"):
        classes += [
            value
            for value in vars(modelscope_errors).values()
            if isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == modelscope_errors.__name__
        ]
    if hub_errors := sys.modules.get("modelscope_hub.errors"):
        classes.append(hub_errors.HubError)  # modelscope >= 1.40 raises these (404, 5xx, network)
    if requests := sys.modules.get("requests"):
        classes.append(requests.RequestException)
    return tuple(classes)


def exception_chain(exc: BaseException):
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


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_kind(exc: BaseException) -> str:
    """What went wrong, as a person would say it (the exception follows in the reason)."""
    import httpx2

    for error in exception_chain(exc):
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


def _name_not_known(error: BaseException) -> bool:
    """The resolver's definite answer that the host name does not resolve (EAI_NONAME, "Name or
    service not known"), unlike EAI_AGAIN ("Temporary failure in name resolution"). A machine
    without a network or a DNS for the outside gets it at once, and every retry the same."""
    if isinstance(error, socket.gaierror):
        return error.errno == socket.EAI_NONAME
    return "name or service not known" in str(error).lower()


def is_transient(exc: BaseException) -> bool:
    """Worth another try: network errors, timeouts, 5xx/408/429, a transfer cut short.
    Not: 4xx (not found, auth required), a host name that does not resolve, missing packages,
    our own errors."""
    import httpx2

    if any(_name_not_known(error) for error in exception_chain(exc)):
        return False
    for error in exception_chain(exc):
        status = _status(error)
        if status:
            return status >= 500 or status in (408, 429)
        if isinstance(error, httpx2.TransportError) or "Consistency check failed" in str(error):
            return True
        if type(error).__name__ in ("NetworkError", "RequestTimeoutError", "ConnectionError", "Timeout"):
            return True  # the ModelScope client's (modelscope_hub, requests) transport failures
    return False


def with_retries(action, what: str, settings: DownloadSettings):
    """``action()``, retried on transient failures with exponential backoff
    (``download.backoff`` seconds, doubling, at most ``download.retries`` more times)."""
    attempts = settings.retries + 1
    backoff = float(settings.backoff)
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except download_errors() as exc:
            brief = f"{failure_kind(exc)}: {type(exc).__name__}: {one_line(exc)}"
            root = list(exception_chain(exc))[-1]
            if root is not exc and _status(exc) is None:  # e.g. "file not found locally" from a ConnectError
                brief += f" (cause: {type(root).__name__}: {one_line(root)})"
            if attempt < attempts and is_transient(exc):
                delay = min(backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
                log.warning("%s: attempt %d of %d %s; retrying in %.1f s", what, attempt, attempts, brief, delay)
                time.sleep(delay)
                continue
            tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
            raise DownloadError(f"{what}: {brief} [gave up after {tries}]") from exc


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

    for error in exception_chain(exc):
        if problem := disk_problem(error):
            return f"{problem} ({stage})"
    environment = ENVIRONMENT if failure_kind(exc).startswith(ENVIRONMENT_KINDS) else ""
    if isinstance(
        exc, (DownloadError, WeightsMismatch, FileNotFoundError, NotADirectoryError, ModuleNotFoundError, SourceError)
    ):
        return f"{environment}{stage}: {type(exc).__name__}: {one_line(exc, 2000)}"
    return environment + describe_exception(exc, stage)
