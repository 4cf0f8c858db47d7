"""The front proxy: a tiny TCP forwarder on an instance's public port, pointed at the live backend slot.

Why TCP and a file: it is the simplest switch that never drops the old version before the new one is ready. The
target port is read from a file (``front.target``) for every new connection, so switching is an atomic file
rename; connections already open (event streams in progress) stay on the slot they started on until they end.
Being protocol-agnostic it carries HTTP, event streams and websockets alike, and it never needs restarting on a
deploy. Run: ``python -m bindery.deploy.front HOST PORT TARGET_FILE``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


def write_target(path: Path, port: int) -> None:
    """Point the front at ``port`` atomically (readers see the old or the new port, never a partial file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)


def read_target(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - already closed
            pass


async def serve(host: str, port: int, target_file: Path) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        target = read_target(target_file)
        try:
            if target is None:
                raise ConnectionRefusedError("no target")
            backend_r, backend_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            try:  # read the request first: closing with unread data would reset instead of answering
                await asyncio.wait_for(client_r.read(65536), 1.0)
            except (OSError, asyncio.TimeoutError):
                pass
            client_w.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await client_w.drain()
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))

    server = await asyncio.start_server(handle, host, port, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    host, port, target = argv[0], int(argv[1]), Path(argv[2])
    try:
        asyncio.run(serve(host, port, target))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
