"""Serve a test's ASGI app (a stand-in for a service bindery talks to) on a free port, in a thread
with its own event loop, for the duration of a `with` block."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn

from bindery.backoff import wait_until
from tests.conftest import free_port

START_TIMEOUT = 10.0


@contextlib.contextmanager
def serve_in_thread(app, name: str, port: int | None = None  # noqa: ANN001 - any ASGI app
                    ) -> Iterator[str]:
    """Yield the app's base URL (http://127.0.0.1:PORT) once it answers; stop it afterwards.

    `port`: when the app must know its own address before it serves (default: a free one)."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    # uvicorn's own flag, or the thread's end (it failed to start)
    if wait_until(lambda: server.started or not thread.is_alive(), timeout=START_TIMEOUT, what=f"{name} starting",
                  interval=0.02) and not server.started:
        raise RuntimeError(f"{name} did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
