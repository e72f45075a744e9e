"""A ModelScope hub look-alike on 127.0.0.1 for tests: serves model directories the way the
real ``modelscope`` client (1.40, through ``modelscope_hub``) downloads them, reached through
its endpoint setting ``MODELSCOPE_ENDPOINT`` (older clients read ``MODELSCOPE_DOMAIN``).

It answers the requests ``snapshot_download`` makes (read from the client's code and checked
against what it really sends; every request is recorded in ``requests``):

- ``GET /api/v1/models/{org}/{name}/repo/files?Revision=R&Recursive=True``: the file listing,
  ``{"Code": 200, "Data": {"Files": [{"Name", "Path", "Type": "blob", "Size", "Sha256",
  "Revision"}]}}`` (the client checks each downloaded file against ``Sha256`` and ``Size``);
  an unknown repository or revision answers 404;
- ``GET /api/v1/models/{org}/{name}/repo?Revision=R&FilePath=P``: the file's bytes
  (``Range: bytes=N-`` honoured).

Faults for tests: ``fail_listing[repo] = n`` answers the next n listings with 503;
``corrupt[(repo, path)] = n`` serves the next n downloads of a file with one byte changed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

REVISION = "master"


class Repo:
    """A directory served as the ``master`` revision of a model repository."""

    def __init__(self, directory: Path, revisions: tuple[str, ...] = (REVISION,)):
        self.files = {
            path.relative_to(directory).as_posix(): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        self.revisions = revisions

    def listing(self, revision: str) -> list[dict]:
        return [
            {
                "Name": name.rsplit("/", 1)[-1],
                "Path": name,
                "Type": "blob",
                "Size": len(data),
                "Sha256": hashlib.sha256(data).hexdigest(),
                "Revision": revision,
            }
            for name, data in self.files.items()
        ]


class ModelScopeServer:
    """``with ModelScopeServer() as hub: hub.add_repo("org/name", directory); hub.url``."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_listing: dict[str, int] = {}
        self.corrupt: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def add_repo(self, repo_id: str, directory: Path, revisions: tuple[str, ...] = (REVISION,)) -> Repo:
        self.repos[repo_id] = Repo(Path(directory), revisions)
        return self.repos[repo_id]

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def downloads(self, repo_id: str, name: str | None = None) -> int:
        """How many file downloads (of one file, or of any) the server answered."""
        prefix = f"/api/v1/models/{repo_id}/repo?"
        return sum(
            1 for _, path in self.requests if path.startswith(prefix) and (name is None or f"FilePath={name}" in path)
        )

    def listings(self, repo_id: str) -> int:
        return sum(1 for _, path in self.requests if path.startswith(f"/api/v1/models/{repo_id}/repo/files"))

    def __enter__(self) -> ModelScopeServer:
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
                except (BrokenPipeError, ConnectionResetError):
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
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        path = unquote(parts.path)
        with self._lock:
            self.requests.append(("HEAD" if head else "GET", f"{path}?{unquote(parts.query)}"))
        segments = path.strip("/").split("/")
        if segments[:3] != ["api", "v1", "models"] or len(segments) < 6 or segments[5] != "repo":
            self._send(handler, 404, {"Code": 10010205001, "Message": f"not a ModelScope endpoint: {path}"}, head)
            return
        repo_id = "/".join(segments[3:5])
        repo = self.repos.get(repo_id)
        revision = query.get("Revision") or REVISION
        if repo is None or revision not in repo.revisions:
            what = "model" if repo is None else "revision"
            self._send(handler, 404, {"Code": 10010205001, "Message": f"{what} not found: {repo_id}@{revision}"}, head)
        elif segments[6:] == ["files"]:
            with self._lock:
                failures = self.fail_listing.get(repo_id, 0)
                self.fail_listing[repo_id] = max(0, failures - 1)
            if failures:
                self._send(handler, 503, {"Code": 503, "Message": "Service temporarily unavailable"}, head)
            else:
                self._send(
                    handler, 200, {"Code": 200, "Data": {"Files": repo.listing(revision)}, "Success": True}, head
                )
        elif len(segments) == 6 and query.get("FilePath") in repo.files:
            self._file(handler, repo_id, repo, query["FilePath"], head)
        else:
            self._send(handler, 404, {"Code": 10010205001, "Message": f"file not found: {query.get('FilePath')}"}, head)

    def _file(self, handler, repo_id: str, repo: Repo, name: str, head: bool) -> None:
        data = repo.files[name]
        with self._lock:
            corrupt = self.corrupt.get((repo_id, name), 0)
            if corrupt and not head:
                self.corrupt[(repo_id, name)] = corrupt - 1
        if corrupt and not head:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        status, start, headers = 200, 0, {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        byte_range = handler.headers.get("Range", "")
        if byte_range.startswith("bytes=") and not head:
            start = int(byte_range[len("bytes=") :].split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._send_bytes(handler, status, data[start:], headers, head)

    def _send(self, handler, status: int, body: dict, head: bool = False) -> None:
        self._send_bytes(handler, status, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)

    @staticmethod
    def _send_bytes(handler, status: int, data: bytes, headers: dict, head: bool) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if not head:
            handler.wfile.write(data)
