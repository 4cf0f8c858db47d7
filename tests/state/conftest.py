"""A real redis-server (Debian's) on a free port for the session, and both state stores."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bindery.state.base import StateStore
from tests.conftest import free_port
from tests.production.own_stack import wait_for


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/install.sh installs it)"
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    log = (folder / "redis.log").open("w")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)], stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        import asyncio

        import redis

        def answers() -> bool:
            try:
                return redis.Redis.from_url(url, socket_timeout=1).ping()
            except redis.ConnectionError:
                return proc.poll() is not None and pytest.fail(
                    f"redis-server exited: {Path(log.name).read_text()}")
        asyncio.run(wait_for(answers, 30, "redis-server answers PING"))
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def make_store(kind: str, redis_url: str, folder: Path, **bounds) -> StateStore:
    """A new store instance (as another process would open it) over the same shared state."""
    if kind == "redis":
        from bindery.state.redis import RedisStore
        return RedisStore(redis_url, **bounds)
    from bindery.state.sqlite import SQLiteStore
    return SQLiteStore(folder / "state.sqlite", **bounds)


@pytest.fixture(params=["sqlite", "redis"])
async def store_factory(request, redis_url: str, tmp_path: Path) -> AsyncIterator:
    """open(**bounds) -> a store; every store it opens shares one state (one test's own)."""
    opened: list[StateStore] = []
    if request.param == "redis":
        import redis
        redis.Redis.from_url(redis_url).flushdb()  # each test starts from an empty state

    def open_store(**bounds) -> StateStore:
        store = make_store(request.param, redis_url, tmp_path, **bounds)
        opened.append(store)
        return store
    open_store.kind = request.param
    yield open_store
    for store in opened:
        await store.aclose()


@pytest.fixture
async def store(store_factory) -> AsyncIterator[StateStore]:
    yield store_factory()
