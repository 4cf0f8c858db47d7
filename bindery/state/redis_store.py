"""The shared state store for several replicas: Redis (Debian's redis-server), via redis-py asyncio.

Records are JSON strings under ``bindery:<kind>:<key>`` with Redis's own expiry; ``update`` is an
optimistic transaction (WATCH the key, read, MULTI/EXEC the new value; a concurrent writer makes
EXEC fail and the change is read and applied again, a bounded number of times). A session's events
are a list (RPUSH answers the new length, so indices are atomic).
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from bindery.state.base import Change, R, Record, StateStore

PREFIX = "bindery:"
MAX_ATTEMPTS = 200  # optimistic retries of one update: 10 contenders settle in ~10


class StateContention(RuntimeError):
    """An update lost to concurrent writers every time it tried."""


class RedisStore(StateStore):
    def __init__(self, url: str, **bounds: Any) -> None:
        super().__init__(**bounds)
        self.url = url
        self.redis = aioredis.Redis.from_url(
            url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            decode_responses=True)

    def _key(self, kind: str, key: str) -> str:
        return f"{PREFIX}{kind}:{key}"

    async def get(self, kind: str, key: str) -> Record | None:
        raw = await self.redis.get(self._key(kind, key))
        return json.loads(raw) if raw else None

    async def put(self, kind: str, key: str, value: Record, ttl: float) -> None:
        await self.redis.set(self._key(kind, key), json.dumps(value), px=_ms(ttl))

    async def delete(self, kind: str, key: str) -> None:
        await self.redis.delete(self._key(kind, key))

    async def update(self, kind: str, key: str, change: Change[R], ttl: float) -> R:
        name = self._key(kind, key)
        async with self.redis.pipeline(transaction=True) as pipe:
            for _attempt in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    new, result = change(json.loads(raw) if raw else None)
                    pipe.multi()
                    if new is None:
                        pipe.delete(name)
                    else:
                        pipe.set(name, json.dumps(new), px=_ms(ttl))
                    await pipe.execute()
                    return result
                except WatchError:
                    await pipe.reset()
                    await asyncio.sleep(random.uniform(0, 0.005))  # spread the retries out
        raise StateContention(f"state record {name} kept changing under {MAX_ATTEMPTS} attempts")

    async def keys(self, kind: str) -> list[str]:
        prefix = self._key(kind, "")
        return [k[len(prefix):] async for k in self.redis.scan_iter(f"{prefix}*", count=500)]

    async def _append(self, sid: str, data: str, ttl: float) -> int:
        name = self._key("events", sid)
        async with self.redis.pipeline(transaction=True) as pipe:
            length, _ = await pipe.rpush(name, data).pexpire(name, _ms(ttl)).execute()
        return int(length) - 1

    async def events(self, sid: str, after: int = -1) -> list[tuple[int, str]]:
        start = after + 1
        items = await self.redis.lrange(self._key("events", sid), start, -1)
        return [(start + i, data) for i, data in enumerate(items)]

    async def used_bytes(self) -> int:
        return int((await self.redis.info("memory"))["used_memory"])

    async def _drop_events(self, sid: str) -> None:
        await self.redis.delete(self._key("events", sid))

    async def aclose(self) -> None:
        await self.redis.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
