"""A loopback HTTP server that speaks the part of the Hugging Face Hub protocol ``hf_hub_download`` uses.

``HEAD`` and ``GET`` on ``/{repo_id}/resolve/{revision}/{filename}`` answer with the file and the headers the
client reads (``X-Repo-Commit``, ``ETag``, ``Content-Length``). Every request is recorded.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeHub:
    """Serve ``files[(repo_id, filename)] = bytes`` on 127.0.0.1; use as a context manager."""

    commit = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, files: dict[tuple[str, str], bytes]):
        self.files = files
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _serve(self, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = unquote(self.path.split("?")[0]).lstrip("/").split("/")
                # repo ids have one slash: org/name/resolve/rev/filename
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_error(404)
                    return
                repo, filename = "/".join(parts[:2]), "/".join(parts[4:])
                data = hub.files.get((repo, filename))
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gets(self) -> int:
        """Number of GET requests served so far (file bodies downloaded)."""
        return sum(1 for m, _ in self.requests if m == "GET")
