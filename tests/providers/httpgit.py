"""A real git smart-HTTP server for tests: `git http-backend` behind a small HTTP wrapper.

It can require a token (HTTP Basic, any user name, as GitHub and GitLab take tokens: a fixed one, or
any that a check accepts, e.g. an identity provider's userinfo) and counts the
requests it answers per repository, so tests can see how often bindery really asked.
"""

from __future__ import annotations

import base64
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class HttpGitServer:
    def __init__(self, root: Path, token: str | Callable[[str], bool] | None = None) -> None:
        self.root = root
        self.token = token
        self.requests: Counter[str] = Counter()  # "<repo path> <service>" -> count
        self.authorization_seen: list[str] = []
        self.refused = 0
        # Moved repositories, as GitHub keeps a renamed one's old name: path prefix -> where it
        # went (a URL or a path), answered with a 301 that keeps the rest of the path and query.
        self.moved: dict[str, str] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def ref_advertisements(self, repo: str) -> int:
        """How many times a client asked for `repo`'s refs (one per ls-remote, fetch or clone)."""
        return self.requests[f"/{repo} info/refs"]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                for old, new in server.moved.items():
                    if path == old or path.startswith(old + "/"):
                        self.send_response(301)
                        self.send_header("Location", new + self.path[len(old):])
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                auth = self.headers.get("Authorization", "")
                if server.token is not None:
                    server.authorization_seen.append(auth)
                    given = base64.b64decode(auth.removeprefix("Basic ")).decode(
                        errors="replace").partition(":")[2] if auth.startswith("Basic ") else ""
                    accepted = server.token(given) if callable(server.token) \
                        else given == server.token
                    if not given or not accepted:
                        server.refused += 1
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="git"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if path.endswith("/info/refs"):
                    server.requests[f"{path.removesuffix('/info/refs')} info/refs"] += 1
                else:
                    server.requests[f"{path.rsplit('/', 1)[0]} rpc"] += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "GIT_PROJECT_ROOT": str(server.root), "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "PATH": "/usr/bin:/bin", "HOME": "/tmp",
                    # partial clones (bindery's abbreviated-SHA cache) need filters allowed
                    "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "uploadpack.allowFilter",
                    "GIT_CONFIG_VALUE_0": "true",
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                     capture_output=True, timeout=60).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
