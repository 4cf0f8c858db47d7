"""The caps on open launches hold for the whole service: two processes (two Sessions, each with its
own store connection over one shared state, both store kinds) count each other's launches, and a
process that dies stops counting once its record expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bindery.events import Event
from bindery.launches.sessions import OPEN_KIND, Bounds, Sessions
from tests.production.own_stack import wait_for

CLIENT = "203.0.113.7"


def process(store_factory, owner: str, gate: asyncio.Event, **bounds) -> Sessions:
    """A process whose launches stay open until `gate` is set."""
    async def run(provider: str, spec: str, **options) -> AsyncIterator[Event]:
        yield Event(phase="fetching", message="resolving\n")
        await gate.wait()
        yield Event(phase="failed", message="done\n")

    async def remove_user(user: str) -> None:
        pass

    return Sessions(run, store_factory(), remove_user, Bounds(stale=1.0, **bounds), owner=owner)


async def test_a_clients_cap_counts_its_launches_on_every_process(store_factory):
    gate = asyncio.Event()
    a, b = (process(store_factory, name, gate, max_open_per_client=2) for name in ("a", "b"))
    try:
        await a.start("git", "x/main", CLIENT)
        assert await b.over_limit(CLIENT) is None
        await b.start("git", "y/main", CLIENT)
        for proc in (a, b):
            refusal = await proc.over_limit(CLIENT)
            assert refusal is not None and "2 launches under way" in refusal
        assert await a.over_limit("198.51.100.1") is None  # someone else is not affected
        gate.set()  # both end: their counts leave the store
        await wait_for(lambda: not (a.items or b.items), 10, "both launches ended")
        assert await a.over_limit(CLIENT) is None
        assert await a.store.keys(OPEN_KIND) == []
    finally:
        gate.set()
        await a.aclose()
        await b.aclose()


async def test_the_total_cap_counts_every_process(store_factory):
    gate = asyncio.Event()
    a, b = (process(store_factory, name, gate, max_open=2) for name in ("a", "b"))
    try:
        await a.start("git", "x/main", "198.51.100.1")
        await b.start("git", "y/main", "198.51.100.2")
        refusal = await a.over_limit("198.51.100.3")
        assert refusal is not None and "as many launches under way as it takes (2)" in refusal
    finally:
        gate.set()
        await a.aclose()
        await b.aclose()


async def test_a_dead_processs_launches_stop_counting_when_its_record_expires(store_factory):
    """kill -9: no delete, no more heartbeats; its record lives `stale` seconds (1 s here)."""
    gate = asyncio.Event()
    dead, alive = (process(store_factory, name, gate, max_open_per_client=1)
                   for name in ("dead", "alive"))
    try:
        await dead.start("git", "x/main", CLIENT)
        assert await alive.over_limit(CLIENT) is not None
        # The dead process says nothing more; its record's time to live runs out.
        await wait_for(_admits(alive), 15, "the dead process's count expired", interval=0.5)
    finally:
        gate.set()
        await dead.aclose()
        await alive.aclose()


def _admits(proc: Sessions):
    async def check() -> bool:
        return await proc.over_limit(CLIENT) is None
    return check
