"""A real redis-server (Debian's) on a free port, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import free_port
from tests.production.own_stack import wait_for


@contextlib.asynccontextmanager
async def redis_server(folder: Path) -> AsyncIterator[str]:
    """Start redis-server (no persistence) in `folder`; yields its redis:// URL."""
    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (scripts/install.sh installs it)")
    port = free_port()
    log_path = folder / "redis.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {log_path.read_text()}")
            try:
                return redis.Redis.from_url(url, socket_timeout=1).ping()
            except redis.ConnectionError:
                return False
        await wait_for(answers, 30, "redis-server answers PING")
        yield url
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
