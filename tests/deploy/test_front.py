"""The front proxy forwards new connections to whatever slot the target file names; switching is a file rename."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from bindery.backoff import wait_until_async
from bindery.deploy.front import read_target, serve, write_target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def backend(name: bytes) -> tuple[asyncio.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readline()
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(name), name))
        await w.drain()
        w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def get(port: int) -> bytes:
    # the front may still be binding: connection refused is retried, bounded
    r, w = await wait_until_async(lambda: asyncio.open_connection("127.0.0.1", port), timeout=5, interval=0.01,
                                  what=f"the front accepting on {port}", errors=(OSError,))
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await w.drain()
    data = await r.read()
    w.close()
    return data


async def test_switch_moves_new_connections(tmp_path: Path) -> None:
    old, old_port = await backend(b"old")
    new, new_port = await backend(b"new")
    target = tmp_path / "front.target"
    front_port = free_port()
    assert read_target(target) is None
    task = asyncio.create_task(serve("127.0.0.1", front_port, target))
    try:
        assert (await get(front_port)).startswith(b"HTTP/1.1 502")  # no target yet: a clear 502
        write_target(target, old_port)
        assert (await get(front_port)).endswith(b"old")
        write_target(target, new_port)
        assert (await get(front_port)).endswith(b"new")
    finally:
        task.cancel()
        old.close()
        new.close()


async def test_front_passes_the_raw_path_and_says_who_the_client_is(tmp_path: Path) -> None:
    """The backend sees the path exactly as sent (%2F kept) and X-Forwarded-For = the real peer,
    whatever forwarding headers the client made up."""
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = b""
        while (line := await r.readline()) not in (b"\r\n", b""):
            head += line
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(head), head))
        await w.drain()
        w.close()

    backend_server = await asyncio.start_server(echo, "127.0.0.1", 0)
    target = tmp_path / "front.target"
    write_target(target, backend_server.sockets[0].getsockname()[1])
    front_port = free_port()
    task = asyncio.create_task(serve("127.0.0.1", front_port, target))
    try:
        await get(front_port)  # bounded wait until the front listens
        r, w = await asyncio.open_connection("127.0.0.1", front_port, local_addr=("127.0.0.9", 0))
        w.write(b"GET /build/git/https%3A%2F%2Fx%2Fy/main?a=%2F HTTP/1.1\r\nHost: x\r\n"
                b"X-Forwarded-For: 203.0.113.1\r\nX-Real-IP: 203.0.113.2\r\nConnection: close\r\n\r\n")
        await w.drain()
        seen = (await r.read()).split(b"\r\n\r\n", 1)[1].decode().lower()
        w.close()
        assert seen.startswith("get /build/git/https%3a%2f%2fx%2fy/main?a=%2f http/1.1")
        assert "x-forwarded-for: 127.0.0.9" in seen and "203.0.113" not in seen
    finally:
        task.cancel()
        backend_server.close()
