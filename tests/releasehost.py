"""A loopback HTTP server standing in for a release host (GitHub release assets, object storage).

Serves ``files[path] = bytes`` with ``Content-Length`` and HTTP range requests (206). ``cut`` makes the
first GET of a path send only part of the body and drop the connection, as an interrupted download.
Every request is recorded as (method, path, Range header).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ReleaseHost:
    """Use as a context manager; ``url(path)`` is the file's address."""

    def __init__(self, files: dict[str, bytes], *, cut: dict[str, int] | None = None, ranges: bool = True):
        self.files, self.cut, self.ranges = files, dict(cut or {}), ranges
        self.requests: list[tuple[str, str, str | None]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                host.requests.append(("GET", self.path, rng))
                data = host.files.get(self.path)
                if data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                if rng and host.ranges and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in host.cut:  # an interrupted transfer: part of the body, then the connection drops
                    self.wfile.write(body[: host.cut.pop(self.path)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of ``path``."""
        return [r for m, p, r in self.requests if m == "GET" and p == path]

    def __enter__(self) -> ReleaseHost:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
