"""A Hugging Face Hub look-alike on 127.0.0.1 for tests: serves model directories in the
layout huggingface_hub expects, so the real client downloads from it through ``HF_ENDPOINT``.

It answers the requests huggingface_hub 2.4 makes for ``HfApi.model_info(files_metadata=True)``
and ``hf_hub_download`` (read from the client's code, not guessed):

- ``GET /api/models/{repo}[/revision/{rev}][?blobs=true]``: ``{"id", "sha", "siblings"}``, each
  sibling with ``size``, ``blobId`` and, for LFS files, ``lfs: {sha256, size, pointerSize}``;
  unknown repositories answer 404 with ``X-Error-Code: RepoNotFound``, unknown revisions
  ``RevisionNotFound`` (the headers the client turns into its typed errors);
- ``HEAD|GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (sha256 for LFS files,
  the git blob id otherwise, as on the Hub), ``Content-Length``; ``Range: bytes=N-`` is honoured.

Faults for tests: ``fail_downloads[(repo, path)] = n`` answers the next n GETs of that file
with 503; ``api_delay[repo] = seconds`` stalls the API answer (to trip the client's timeout).
Every request is recorded in ``requests`` as ``(method, path)``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (what the Hub lists as ``blobId``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    """A directory served as one commit of a model repository."""

    def __init__(self, directory: Path):
        self.files = {
            path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        listing = "".join(f"{name}:{hashlib.sha256(data).hexdigest()}\n" for name, data in self.files.items())
        self.sha = hashlib.sha1(listing.encode()).hexdigest()

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)

    def etag(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(name) else git_blob_id(data)

    def sibling(self, name: str, with_metadata: bool) -> dict:
        entry = {"rfilename": name}
        if with_metadata:
            data = self.files[name]
            entry.update(size=len(data), blobId=git_blob_id(data))
            if self.is_lfs(name):
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry


class HubServer:
    """``with HubServer() as hub: hub.add_repo("org/name", directory); hub.url``."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_downloads: dict[tuple[str, str], int] = {}
        self.api_delay: dict[str, float] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def add_repo(self, repo_id: str, directory: Path) -> Repo:
        self.repos[repo_id] = Repo(Path(directory))
        return self.repos[repo_id]

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def downloads(self, repo_id: str, name: str) -> int:
        """How many GETs of one file the server answered (successful or not)."""
        prefix = f"/{repo_id}/resolve/"
        return sum(
            1
            for method, path in self.requests
            if method == "GET" and path.startswith(prefix) and path.split("/", 5)[-1] == name
        )

    def __enter__(self) -> HubServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean; requests are recorded instead
                pass

            def do_HEAD(self):
                server._answer(self, head=True)

            def do_GET(self):
                server._answer(self, head=False)

            def handle_one_request(self):
                try:
                    super().handle_one_request()
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- request handling -------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        with self._lock:
            self.requests.append(("HEAD" if head else "GET", path))
        segments = path.strip("/").split("/")
        if segments[:2] == ["api", "models"] and (len(segments) == 4 or segments[4:5] == ["revision"]):
            revision = "/".join(segments[5:]) or "main"
            self._model_info(handler, "/".join(segments[2:4]), revision, "blobs" in parse_qs(parts.query))
        elif len(segments) >= 5 and segments[2] == "resolve":
            self._resolve(handler, "/".join(segments[:2]), segments[3], "/".join(segments[4:]), head)
        else:
            self._send(handler, 404, {"error": "not a Hub endpoint"}, head=head)

    def _find(self, handler, repo_id: str, revision: str, head: bool) -> Repo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._send(handler, 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}, head)
        elif revision not in ("main", repo.sha):
            self._send(
                handler, 404, {"error": f"Invalid rev id: {revision}"}, {"X-Error-Code": "RevisionNotFound"}, head
            )
            repo = None
        return repo

    def _model_info(self, handler, repo_id: str, revision: str, with_metadata: bool) -> None:
        time.sleep(self.api_delay.get(repo_id, 0))
        repo = self._find(handler, repo_id, revision, head=False)
        if repo is not None:
            body = {
                "_id": repo.sha[:24],
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.sha,
                "private": False,
                "siblings": [repo.sibling(name, with_metadata) for name in repo.files],
            }
            self._send(handler, 200, body)

    def _resolve(self, handler, repo_id: str, revision: str, name: str, head: bool) -> None:
        repo = self._find(handler, repo_id, revision, head)
        if repo is None:
            return
        if name not in repo.files:
            self._send(
                handler,
                404,
                {"error": "Entry not found"},
                {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.sha},
                head,
            )
            return
        with self._lock:
            failures = self.fail_downloads.get((repo_id, name), 0)
            if not head and failures:
                self.fail_downloads[(repo_id, name)] = failures - 1
        if not head and failures:
            self._send(handler, 503, {"error": "Service temporarily unavailable"}, head=head)
            return
        data = repo.files[name]
        headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{repo.etag(name)}"', "Accept-Ranges": "bytes"}
        if repo.is_lfs(name):
            headers.update({"X-Linked-Etag": f'"{repo.etag(name)}"', "X-Linked-Size": str(len(data))})
        status, start = 200, 0
        byte_range = handler.headers.get("Range", "")
        if byte_range.startswith("bytes=") and not head:
            start = int(byte_range[len("bytes=") :].split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send_bytes(handler, status, data[start:], headers, head)

    def _send(self, handler, status: int, body: dict, headers: dict | None = None, head: bool = False) -> None:
        headers = {"Content-Type": "application/json", **(headers or {})}
        self._send_bytes(handler, status, json.dumps(body).encode(), headers, head)

    @staticmethod
    def _send_bytes(handler, status: int, data: bytes, headers: dict, head: bool) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if not head:
            handler.wfile.write(data)
