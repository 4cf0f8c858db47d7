"""The front door of a real `bindery serve` (uvicorn): idle and half-sent connections are shed, one
client's connections are capped while others are still served, and malformed input gets a clear
4xx, never a traceback or a 500."""

from __future__ import annotations

import contextlib
import os
import socket
import time

import httpx

from bindery.backoff import WaitTimeout, wait_until_async
from bindery.event_stream import amessages
from bindery.events import Event
from bindery.web import tokens

SILENT, HALF = 12, 12  # connections that send nothing, and ones that send half a request
CAP = SILENT + HALF


def sockets_of(pid: int) -> int:
    """Open sockets of a process, as the kernel lists its file descriptors."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed while listing
    return count


def established(port: int) -> int:
    """TCP connections to `port` in state ESTABLISHED, as the kernel lists them (server side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                count += int(local.rsplit(":", 1)[1], 16) == port and state == "01"
    return count


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    return conn


def read_to_end(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


async def test_idle_and_half_sent_connections_are_shed_and_others_still_served(service_with):
    service = service_with(header_timeout_seconds=2, max_connections_per_client=CAP)
    port, pid = service.settings.service.port, service.proc.pid
    before = sockets_of(pid)
    held = [connect(port) for _ in range(SILENT + HALF)]
    for conn in held[SILENT:]:
        conn.sendall(b"GET /versions HTTP/1.1\r\nHost: bindery\r\nX-Slow: ")  # and nothing more
    # Beyond the cap the same client is answered 429 and closed at once...
    extra = [connect(port) for _ in range(5)]
    for conn in extra:
        answer = read_to_end(conn)
        assert answer.startswith(b"HTTP/1.1 429") and b"Too many connections" in answer, answer
        conn.close()
    # ...while another client is served as usual, and the held connections are all still open.
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=other, timeout=10) as client:
        assert (await client.get(f"{service.url}/versions")).status_code == 200
    assert established(port) >= SILENT + HALF
    assert sockets_of(pid) >= SILENT + HALF + 1  # the held ones and the listening socket
    # The header timeout closes every held connection (recv returns end of stream)...
    started = time.monotonic()
    for conn in held:
        assert read_to_end(conn) == b""
        conn.close()
    assert time.monotonic() - started < 12
    # ...so the service holds no more sockets than before, and the client may connect again.
    with contextlib.suppress(WaitTimeout):  # the server's side closes as it notices; asserted below
        await wait_until_async(lambda: not established(port) and sockets_of(pid) <= before, timeout=10,
                               what="the service's sockets closed")
    assert established(port) == 0 and sockets_of(pid) <= before
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{service.url}/versions")).status_code == 200
    assert service.proc.poll() is None


async def first_event(client: httpx.AsyncClient, url: str, **kwargs) -> Event:
    async with client.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200, response.status_code
        async for message in amessages(response.aiter_lines()):
            return Event.model_validate_json(message.data)
    raise AssertionError("no event")


async def test_malformed_resume_ids_and_tokens_get_a_clear_4xx(service_with):
    service = service_with(build_token_secret="front-door-secret")
    url = f"{service.url}/build/gh/org/repo/main"
    async with httpx.AsyncClient(timeout=30) as client:
        for headers, params in [
            ({"Last-Event-ID": "abcdef." + "9" * 4000}, {}),  # an index no integer type holds
            ({"Last-Event-ID": b"abcdef.\xb2"}, {}),  # a digit, but not an ASCII one
            ({"Last-Event-ID": "no-index-here"}, {}),
            ({}, {"lastEventId": "abcdef." + "1" * 200}),
        ]:
            event = await first_event(client, url, headers=headers, params=params)
            assert event.phase == "failed" and event.data()["status_code"] == 400, event
            assert "Last-Event-ID" in event.message
        # A real session's id with an index no integer type holds (OverflowError in SQLite once)
        spec = "org/missing-repo/main"
        token = tokens.issue(b"front-door-secret", "gh", spec, service.url, 60)
        async with client.stream("GET", f"{service.url}/build/gh/{spec}",
                                 params={"build_token": token},
                                 headers={"Origin": service.url}) as response:
            ids = [line[3:].strip() async for line in response.aiter_lines()
                   if line.startswith("id:")]
        assert ids, "the launch sent no event ids"
        sid = ids[-1].rpartition(".")[0]
        event = await first_event(client, url, headers={"Last-Event-ID": f"{sid}." + "9" * 4000})
        assert event.phase == "failed" and event.data()["status_code"] == 400, event
        for token in ("é✓.x", "\u00ff" * 50, "abc.déf"):
            event = await first_event(client, url, params={"build_token": token})
            assert event.phase == "failed" and event.data()["status_code"] == 403, event
            assert "build token is malformed" in event.message
        assert (await client.get(f"{service.url}/versions")).status_code == 200
    log = service.log_text()
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
