"""The records of the handshake between registry collections and builds, shared by every process.

"The registry's garbage collector runs now": while it is there the registry is read-only; launches
of built images go on (pulls work), a build waits for the end before it starts (its push would be
refused). The keeper that collects writes it before it checks that no build is announced or
running, and removes it when the registry is writable again; its time-to-live bounds how long a
process that died mid-collection can hold builds back.

"A build of this image is about to start": a launch writes it before it looks for a collection, and
removes it when its build has ended (or while it waits for a collection, so that it does not hold that
collection back). A collection waits up to DRAIN seconds for the builds under way to end. Each side writes before it reads, so of a build and a
collection that begin at the same moment in two processes, at least one sees the other: the build
waits, or the collection is deferred. Its time-to-live bounds how long a process that died
mid-build defers collections.
"""

from __future__ import annotations

import os
import socket
import time

from bindery.state.base import Record, StateStore

KIND = "registry-collecting"
KEY = "registry"
BUILDS = "build-announced"
DRAIN = 60.0  # seconds a collection waits for builds under way (new ones wait for it) before deferring


async def begin(store: StateStore, owner: str, seconds: float) -> None:
    await store.put(KIND, KEY, {"owner": owner, "since": time.time(), "until": time.time() + seconds},
                    ttl=seconds)


async def end(store: StateStore) -> None:
    await store.delete(KIND, KEY)


async def current(store: StateStore) -> Record | None:
    """The running collection's record (owner, since, until), or None."""
    return await store.get(KIND, KEY)


async def announce_build(store: StateStore, image: str, seconds: float) -> None:
    await store.put(BUILDS, image, {"host": socket.gethostname(), "pid": os.getpid(),
                                    "since": time.time()}, ttl=seconds)


async def retire_build(store: StateStore, image: str) -> None:
    await store.delete(BUILDS, image)


async def announced_builds(store: StateStore) -> list[str]:
    """Images whose builds some process announced and has not ended."""
    return await store.keys(BUILDS)
