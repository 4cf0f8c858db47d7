"""The front proxy forwards new connections to whatever slot the target file names; switching is a file rename."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

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
    for _ in range(200):  # the front may still be binding: connection refused is retried, bounded
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.01)
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
