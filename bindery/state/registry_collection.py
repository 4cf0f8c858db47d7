"""The record that says "the registry's garbage collector runs now", shared by every process.

While it is there the registry is read-only: launches of built images go on (pulls work), a build
waits for the end before it starts (its push would be refused). The keeper that collects writes it
before it checks that no build runs, and removes it when the registry is writable again; its
time-to-live bounds how long a process that died mid-collection can hold builds back.
"""

from __future__ import annotations

import time

from bindery.state.base import Record, StateStore

KIND = "registry-collecting"
KEY = "registry"


async def begin(store: StateStore, owner: str, seconds: float) -> None:
    await store.put(KIND, KEY, {"owner": owner, "since": time.time(), "until": time.time() + seconds},
                    ttl=seconds)


async def end(store: StateStore) -> None:
    await store.delete(KIND, KEY)


async def current(store: StateStore) -> Record | None:
    """The running collection's record (owner, since, until), or None."""
    return await store.get(KIND, KEY)
