"""The front proxy: a small HTTP reverse proxy on an instance's public port, pointed at the live backend slot.

Why a file: it is the simplest switch that never drops the old version before the new one is ready. The target
port is read from a file (``front.target``) for every request, so switching is an atomic file rename; requests
already under way (event streams in progress) stay on the slot they started on until they end.

Why HTTP and not TCP: the backend must know who is asking (rate limits, blocked networks and per-client caps are
per client address), and behind a TCP forwarder every client is 127.0.0.1. The front is the edge: it sets
``X-Forwarded-For`` to the peer it sees, replacing whatever a client sent, and deploys configure it as the
backend's one trusted proxy. Responses are streamed chunk by chunk, so event streams reach people unbuffered.
bindery's own service speaks only HTTP (no websockets); Jupyter servers are reached through the hub's proxy.
Run: ``python -m bindery.deploy.front HOST PORT TARGET_FILE``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from bindery import http_clients
import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

# Headers about one connection, not the message (RFC 9110 §7.6.1): never forwarded.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
              "te", "trailer", "transfer-encoding", "upgrade"}
FORWARDED = {"x-forwarded-for", "x-real-ip", "forwarded"}  # only the front says who the client is
# An event stream sends a keepalive every keepalive_seconds: a quieter backend is stuck.
TIMEOUT = http_clients.bounds(None, connect=5.0, read=300.0, write=60.0, pool=5.0)


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


def forward_headers(request: Request) -> list[tuple[bytes, bytes]]:
    """The request's headers minus hop-by-hop and client-supplied forwarding claims, plus the real peer."""
    kept = [(k, v) for k, v in request.headers.raw
            if k.decode("latin-1").lower() not in HOP_BY_HOP | FORWARDED]
    peer = request.client.host if request.client else ""
    return [*kept, (b"x-forwarded-for", peer.encode("latin-1"))]


def create_app(target_file: Path, client: httpx.AsyncClient):
    async def app(scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        target = read_target(target_file)
        if target is None:
            await Response(status_code=502)(scope, receive, send)
            return
        # raw_path: the path exactly as sent (a decoded one would turn git specs' %2F into '/').
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        url = httpx.URL(f"http://127.0.0.1:{target}{path}", query=scope.get("query_string", b""))
        upstream_request = client.build_request(request.method, url, headers=forward_headers(request),
                                                content=request.stream())
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.HTTPError:
            await Response(status_code=502)(scope, receive, send)
            return

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        response = StreamingResponse(body(), status_code=upstream.status_code)
        response.raw_headers = [(k, v) for k, v in upstream.headers.raw
                                if k.decode("latin-1").lower() not in HOP_BY_HOP | {"content-length"}]
        if "content-length" in upstream.headers and request.method != "HEAD":
            response.raw_headers.append((b"content-length", upstream.headers["content-length"].encode()))
        await response(scope, receive, send)

    return app


async def serve(host: str, port: int, target_file: Path) -> None:
    async with http_clients.async_client(timeout=TIMEOUT, proxy=http_clients.DIRECT) as client:
        config = uvicorn.Config(create_app(target_file, client), host=host, port=port, lifespan="off",
                                proxy_headers=False, access_log=False, server_header=False,
                                date_header=False, log_level="warning")
        await uvicorn.Server(config).serve()


def main(argv: list[str]) -> int:
    import asyncio

    host, port, target = argv[0], int(argv[1]), Path(argv[2])
    try:
        asyncio.run(serve(host, port, target))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
