"""The state store: what must outlive one bindery process, shared by every process of a service.

Contract (both implementations, SQLite and Redis, pass tests/state/test_store_contract.py):

- Records are JSON objects under (kind, key), each with a time to live (seconds); an expired record
  reads as absent. ``update(kind, key, change)`` is atomic across processes: ``change`` gets the
  current record (or None) and returns (new record or None to delete, result); it may run more
  than once (optimistic retries) and must not have side effects. It may raise to abort.
- Events of a launch session are appended with consecutive indices from 0 (``append`` returns the
  index, atomic across processes) and read after an index; ``wait_events`` returns the events after
  an index, waiting at most ``timeout`` seconds for one to appear (a bounded poll; appends made in
  this process wake it at once).
- Every operation is bounded by the store's timeout; nothing waits forever.

On top of these primitives, :class:`StateStore` implements (once, for both) the things bindery
keeps here: session metadata and ownership (owner id + heartbeat, atomic claim when the owner is
gone or released the session), launch records (the 424 page's relaunch offer), quota reservations
(atomic check-and-take), rate-limit buckets (atomic take) and the digest bindery pushed for each
image name (what it launches).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

Record = dict[str, Any]
R = TypeVar("R")
Change = Callable[[Record | None], tuple[Record | None, R]]

SESSION, OWNER, LAUNCH, RESERVATIONS, RATE = "session", "owner", "launch", "reservations", "rate"
DIGEST = "digest"  # the digest bindery pushed (or verified) per image name: what it launches
DIGEST_TTL = 400 * 86400.0  # an image unlaunched this long is rebuilt rather than trusted
OPEN = "open"  # a marker per session not yet ended, so sweeps read only those
SHED_BATCH = 10  # sessions forgotten between two measurements of the store's bytes


class StoreDamaged(Exception):
    """The store answers, but what it holds is damaged (a malformed SQLite file): nothing can be
    recorded or read until an operator repairs or replaces it. The message names the store."""


class StateStore(ABC):
    """Primitives (abstract) and what bindery builds on them (concrete, shared)."""

    def __init__(self, retention: float = 3600.0, poll: float = 0.1, timeout: float = 5.0) -> None:
        self.retention = retention  # time to live of sessions and their events
        self.poll = poll
        self.timeout = timeout
        self._appended = asyncio.Event()  # set (and replaced) when this process appends

    # -- primitives ------------------------------------------------------------------------------
    @abstractmethod
    async def get(self, kind: str, key: str) -> Record | None: ...

    @abstractmethod
    async def put(self, kind: str, key: str, value: Record, ttl: float) -> None: ...

    @abstractmethod
    async def delete(self, kind: str, key: str) -> None: ...

    @abstractmethod
    async def update(self, kind: str, key: str, change: Change[R], ttl: float) -> R: ...

    @abstractmethod
    async def keys(self, kind: str) -> list[str]:
        """Keys of the live records of one kind (for sweeps; bounded by their time to live)."""

    @abstractmethod
    async def _append(self, sid: str, data: str, ttl: float) -> int: ...

    @abstractmethod
    async def events(self, sid: str, after: int = -1) -> list[tuple[int, str]]:
        """(index, data) of the session's events with index > after, in order."""

    @abstractmethod
    async def used_bytes(self) -> int:
        """Bytes the store takes: SQLite's pages in use, or the Redis server's memory in use."""

    @abstractmethod
    async def _drop_events(self, sid: str) -> None: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    async def check(self) -> None:
        """Raise if the store cannot be used (for /health): unreachable, or StoreDamaged."""
        await self.get(OWNER, "health-probe")

    # -- events ----------------------------------------------------------------------------------
    async def append(self, sid: str, data: str) -> int:
        index = await self._append(sid, data, self.retention)
        self._appended.set()
        self._appended = asyncio.Event()
        return index

    async def wait_events(self, sid: str, after: int, timeout: float) -> list[tuple[int, str]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            woken = self._appended  # taken before reading, so an append in between is not missed
            found = await self.events(sid, after)
            left = deadline - loop.time()
            if found or left <= 0:
                return found
            try:  # bounded: another process's append is seen within `poll` seconds
                await asyncio.wait_for(woken.wait(), min(self.poll, left))
            except TimeoutError:
                pass

    # -- sessions and their owners ---------------------------------------------------------------
    async def create_session(self, sid: str, meta: Record) -> None:
        await self.put(SESSION, sid, {**meta, "ended": False, "hub_user": "",
                                      "watched_at": time.time()}, self.retention)
        await self.put(OPEN, sid, {}, self.retention)

    async def end_session(self, sid: str) -> None:
        await self.patch_session(sid, ended=True)
        await self.delete(OPEN, sid)

    async def open_sessions(self) -> list[str]:
        """Ids of the sessions not ended yet (bounded by the retention)."""
        return await self.keys(OPEN)

    async def session(self, sid: str) -> Record | None:
        return await self.get(SESSION, sid)

    async def patch_session(self, sid: str, **fields: Any) -> None:
        def change(meta: Record | None) -> tuple[Record | None, None]:
            return (None if meta is None else {**meta, **fields}), None
        await self.update(SESSION, sid, change, self.retention)

    async def beat(self, owner: str, stale_after: float) -> None:
        """The owner process is alive: its sessions are not taken over for `stale_after` s."""
        await self.put(OWNER, owner, {"at": time.time()}, stale_after)

    async def owner_gone(self, owner: str) -> None:
        await self.delete(OWNER, owner)

    async def claim(self, sid: str, owner: str) -> Record | None:
        """Make `owner` the session's owner if it has none, or its owner released it or stopped
        beating; the session's metadata if claimed, else None. Atomic across processes."""
        current = await self.get(SESSION, sid)
        if current is None or current.get("ended"):
            return None
        holder = current.get("owner", "")
        if holder == owner:
            return current
        if holder and await self.get(OWNER, holder) is not None:
            return None  # alive: it keeps running the launch

        def change(meta: Record | None) -> tuple[Record | None, Record | None]:
            if meta is None or meta.get("ended") or meta.get("owner", "") != holder:
                return meta, None  # someone else was faster
            meta = {**meta, "owner": owner}
            return meta, meta
        return await self.update(SESSION, sid, change, self.retention)

    async def shed(self, target: int) -> list[str]:
        """Forget ended launch sessions (their record and events), least recently watched first,
        until the store takes at most ``target`` bytes; the ids of those forgotten. Sessions not
        ended and every other record are kept (their time to live bounds them): a client
        reconnecting to a forgotten session starts a new launch, which finds its image built."""
        if await self.used_bytes() <= target:
            return []
        ended = []
        for sid in await self.keys(SESSION):
            meta = await self.session(sid)
            if meta is not None and meta.get("ended"):
                ended.append((float(meta.get("watched_at", 0.0)), sid))
        forgotten: list[str] = []
        for _, sid in sorted(ended):
            await self._drop_events(sid)
            await self.delete(SESSION, sid)
            forgotten.append(sid)
            if len(forgotten) % SHED_BATCH == 0 and await self.used_bytes() <= target:
                break
        return forgotten

    async def release_session(self, sid: str, owner: str) -> None:
        """The owner stops running it (shutdown): whoever gets the reconnect takes it over."""
        def change(meta: Record | None) -> tuple[Record | None, None]:
            if meta is not None and meta.get("owner") == owner:
                meta = {**meta, "owner": ""}
            return meta, None
        await self.update(SESSION, sid, change, self.retention)

    # -- launch records (the 424 page) -----------------------------------------------------------
    async def remember_launch(self, user: str, record: Record, ttl: float) -> None:
        await self.put(LAUNCH, user, record, ttl)

    async def launch_record(self, user: str) -> Record | None:
        return await self.get(LAUNCH, user)

    # -- image digests: what bindery built is what it launches --------------------------------------
    async def record_digest(self, image: str, digest: str) -> None:
        """``image`` (a tag name) is, for bindery, the image it pushed under ``digest``."""
        await self.put(DIGEST, image, {"digest": digest, "at": time.time()}, DIGEST_TTL)

    async def pushed_digest(self, image: str) -> str | None:
        """The digest bindery recorded for ``image``, or None (never built here, or forgotten):
        whatever the registry's tag points to then is not launched."""
        record = await self.get(DIGEST, image)
        return str(record["digest"]) if record and record.get("digest") else None

    async def pushed_at(self, image: str) -> float | None:
        """When bindery pushed ``image`` (a tag name), or None (never built here, or forgotten)."""
        record = await self.get(DIGEST, image)
        return float(record["at"]) if record and record.get("at") else None

    # -- rate-limit buckets ----------------------------------------------------------------------
    async def take_token(self, key: str, limit: int, period: float, now: float,
                         spend: bool = True) -> tuple[float, bool]:
        """Refill the bucket to `now`, spend one token if there is one (and `spend`); returns
        (tokens left, allowed). Atomic across processes."""
        rate = limit / period

        def change(bucket: Record | None) -> tuple[Record | None, tuple[float, bool]]:
            tokens, then = (bucket["tokens"], bucket["at"]) if bucket else (float(limit), now)
            tokens = min(float(limit), tokens + max(0.0, now - then) * rate)
            allowed = tokens >= 1.0
            if not spend:
                return bucket, (tokens, allowed)
            if allowed:
                tokens -= 1.0
            return {"tokens": tokens, "at": now}, (tokens, allowed)
        return await self.update(RATE, key, change, period)  # a full bucket needs no record
