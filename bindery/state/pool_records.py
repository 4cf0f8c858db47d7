"""Warm pools' records in the state store : every change is one atomic ``update``, so
replicas share pools without ever handing one server to two people.

One record per pool (kind POOL, key: repository key + '#' + ref), holding what the refiller needs
to resolve it again (provider, spec), its current image, its servers and who claimed which:

    {"provider", "spec", "repo_url", "repo", "image", "created", "last_claim",
     "launches": [times, within the auto-rate window], "auto_at": last time the rate was above
     pool_auto_rate, "offered_at": last time a server became ready,
     "servers": {user: {"image", "ready": bool, "url", "at", "owner"}},   # never used by anyone
     "claimed": {user: time}}                                             # handed out, for good

A server leaves ``servers`` in the same change that hands it to a person (it is then in
``claimed``, so a reconciliation knows it), and never comes back. The refiller holds a lease (kind
POOL_LEASE) so that one process at a time starts, retires and reconciles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bindery.state.base import Record, StateStore

POOL, POOL_LEASE = "pool", "poollease"
LEASE_KEY = "refiller"
POOL_TTL = 7 * 24 * 3600.0  # refreshed by every change; an abandoned pool's record goes eventually
LEASE_TTL = 3600.0  # the lease's validity is its "until"; the record itself outlives it
MAX_LAUNCH_TIMES = 1000  # bounded record: enough to measure any sensible auto rate


@dataclass(frozen=True)
class PoolOrigin:
    """Where a pool's image comes from (a launch's request, kept to resolve it again)."""

    provider: str
    spec: str
    repo_url: str
    repo: str  # the repository key (bindery/repoid.py normal form)


@dataclass(frozen=True)
class WarmServer:
    user: str
    url: str


def pool_key(repo: str, ref: str) -> str:
    return f"{repo}#{ref}"


def new_record(origin: PoolOrigin, image: str, now: float) -> Record:
    return {"provider": origin.provider, "spec": origin.spec, "repo_url": origin.repo_url,
            "repo": origin.repo, "image": image, "created": now, "last_claim": 0.0,
            "launches": [], "servers": {}, "claimed": {}}


def launch_rate(record: Record, now: float, window: float) -> float:
    """Launches per minute over the last `window` seconds."""
    recent = [t for t in record.get("launches", []) if t > now - window]
    return len(recent) * 60.0 / max(window, 1.0)


class PoolBook:
    """The atomic operations on pool records (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def keys(self) -> list[str]:
        return await self.store.keys(POOL)

    async def get(self, key: str) -> Record | None:
        return await self.store.get(POOL, key)

    async def take(self, key: str, origin: PoolOrigin, image: str, create: bool,
                   window: float | None) -> WarmServer | None:
        """A launch of `image`: note it (for the auto rate, when `window` is given), create the
        pool's record if `create` and it has none, and hand out one ready server of this image,
        removed from the pool in the same change; None when none is free (a miss)."""
        now = time.time()

        def change(record: Record | None) -> tuple[Record | None, WarmServer | None]:
            if record is None:
                if not create:
                    return None, None
                record = new_record(origin, image, now)
            record = {**record, "servers": dict(record["servers"]),
                      "claimed": dict(record["claimed"])}
            if window is not None:
                recent = [t for t in record.get("launches", []) if t > now - window]
                record["launches"] = (recent + [now])[-MAX_LAUNCH_TIMES:]
            free = sorted((s["at"], user) for user, s in record["servers"].items()
                          if s["ready"] and s["image"] == image)
            if not free:
                return record, None
            user = free[0][1]
            server = record["servers"].pop(user)
            record["claimed"][user] = now
            record["last_claim"] = now
            return record, WarmServer(user, server["url"])
        return await self.store.update(POOL, key, change, POOL_TTL)

    async def add_starting(self, key: str, user: str, image: str, owner: str,
                           wanted: int) -> bool:
        """Record a server about to start, if the pool (for this image) still has fewer than
        `wanted`; False when another round or process already filled it."""
        def change(record: Record | None) -> tuple[Record | None, bool]:
            if record is None or record["image"] != image:
                return record, False
            count = sum(1 for s in record["servers"].values() if s["image"] == image)
            if count >= wanted:
                return record, False
            servers = {**record["servers"], user: {"image": image, "ready": False, "url": "",
                                                   "at": time.time(), "owner": owner}}
            return {**record, "servers": servers}, True
        return await self.store.update(POOL, key, change, POOL_TTL)

    async def mark_ready(self, key: str, user: str, url: str) -> bool:
        """The server's spawn reached its real end: it may be handed out. False if it is no longer
        in the pool (retired meanwhile): the caller removes it."""
        def change(record: Record | None) -> tuple[Record | None, bool]:
            if record is None or user not in record["servers"]:
                return record, False
            now = time.time()
            server = {**record["servers"][user], "ready": True, "url": url, "at": now}
            return {**record, "servers": {**record["servers"], user: server},
                    "offered_at": now}, True
        return await self.store.update(POOL, key, change, POOL_TTL)

    async def drop(self, key: str, users: list[str]) -> list[str]:
        """Take these servers out of the pool (to retire them); returns those that were in it,
        so that a server claimed meanwhile is never removed by the refiller."""
        def change(record: Record | None) -> tuple[Record | None, list[str]]:
            if record is None:
                return None, []
            gone = [u for u in users if u in record["servers"]]
            servers = {u: s for u, s in record["servers"].items() if u not in gone}
            return {**record, "servers": servers}, gone
        return await self.store.update(POOL, key, change, POOL_TTL)

    async def patch(self, key: str, **fields: Any) -> None:
        def change(record: Record | None) -> tuple[Record | None, None]:
            return (None if record is None else {**record, **fields}), None
        await self.store.update(POOL, key, change, POOL_TTL)

    async def forget_claimed(self, key: str, users: set[str]) -> None:
        """Claimed servers the hub no longer lists (culled, stopped): nothing to remember."""
        def change(record: Record | None) -> tuple[Record | None, None]:
            if record is None:
                return None, None
            claimed = {u: t for u, t in record["claimed"].items() if u not in users}
            return {**record, "claimed": claimed}, None
        await self.store.update(POOL, key, change, POOL_TTL)

    async def delete_if_empty(self, key: str) -> bool:
        def change(record: Record | None) -> tuple[Record | None, bool]:
            if record is None:
                return None, True
            if record["servers"] or record["claimed"]:
                return record, False
            return None, True
        return await self.store.update(POOL, key, change, POOL_TTL)

    # -- the refiller's lease --------------------------------------------------------------------
    async def hold_lease(self, owner: str, duration: float) -> bool:
        """Take or extend the refiller's lease; True while `owner` holds it."""
        now = time.time()

        def change(lease: Record | None) -> tuple[Record | None, bool]:
            if lease is not None and lease["owner"] != owner and lease["until"] > now:
                return lease, False
            return {"owner": owner, "until": now + duration}, True
        return await self.store.update(POOL_LEASE, LEASE_KEY, change, LEASE_TTL)

    async def release_lease(self, owner: str) -> None:
        def change(lease: Record | None) -> tuple[Record | None, None]:
            return (None if lease is not None and lease["owner"] == owner else lease), None
        await self.store.update(POOL_LEASE, LEASE_KEY, change, LEASE_TTL)
