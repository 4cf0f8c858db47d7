"""A real redis-server (Debian's) on a free port for the session, and both state stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bindery.state.base import StateStore
from tests.state.redisserver import redis_server


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def make_store(kind: str, redis_url: str, folder: Path, **bounds) -> StateStore:
    """A new store instance (as another process would open it) over the same shared state."""
    if kind == "redis":
        from bindery.state.redis_store import RedisStore
        return RedisStore(redis_url, **bounds)
    from bindery.state.sqlite_store import SQLiteStore
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
