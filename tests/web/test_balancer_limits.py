"""The load balancer in front of replicas keeps the front door's connection limits (the replicas
trust it, so theirs do not apply to its connections): real HAProxy with bindery's configuration
before a small HTTP backend. One source's connections beyond the cap are refused while another
source is served; silent connections are closed after the header timeout."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bindery.backoff import wait_until
from bindery.datadir import StackPaths
from bindery.settings import Settings
from bindery.stack.balancer import config_text
from tests.conftest import free_port

CAP = 5


class Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def read_to_end(conn: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := conn.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def refused(address: tuple[str, int], source: str) -> bool:
    """The connection is reset, or closed without an answer."""
    try:
        conn = socket.create_connection(address, timeout=10, source_address=(source, 0))
    except ConnectionResetError:
        return True
    with conn:
        return read_to_end(conn) == b""


def test_haproxy_caps_one_sources_connections_and_sheds_silent_ones(tmp_path: Path):
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    settings = Settings(data_dir=tmp_path, host="127.0.0.1", port=free_port(),
                        max_connections_per_client=CAP, header_timeout_seconds=1)
    StackPaths.of(settings).make()
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(config_text(settings, [("web-1", backend.server_address[1])]))
    proxy = subprocess.Popen(["haproxy", "-f", str(conf), "-db"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{settings.service.port}/versions"
    held: list[socket.socket] = []
    try:
        def answers() -> bool:  # HAProxy answers through to the backend
            assert proxy.poll() is None, proxy.stderr.read().decode()
            return httpx.get(url, timeout=2).status_code == 200

        wait_until(answers, timeout=20, what="HAProxy answering", errors=(httpx.HTTPError,))
        address = ("127.0.0.1", settings.service.port)
        held = [socket.create_connection(address, timeout=10, source_address=("127.0.0.3", 0))
                for _ in range(CAP)]
        assert refused(address, "127.0.0.3")
        other = httpx.HTTPTransport(local_address="127.0.0.4")
        with httpx.Client(transport=other, timeout=10) as client:
            assert client.get(url).status_code == 200
        started = time.monotonic()
        for conn in held:  # the header timeout (1 s) sheds them
            assert not read_to_end(conn).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 8
    finally:
        for conn in held:
            conn.close()
        proxy.terminate()
        proxy.wait(10)
        backend.shutdown()
