"""A build's disk budget in total, not only per file.

The steps' file-size limit (``build_disk_max_bytes`` as RLIMIT_FSIZE, builds/step_sandbox.py) stops
one big file; a step writing many files each under it would go on until the build store is full
and every build on the machine fails. So, while a build runs, its store's file system is watched:
what the store gained since the build started is what the build wrote (its layers, its steps'
files), and past its budget the build is stopped and fails naming disk and the budget.

Builds running side by side grow the same store, and the engine cannot say which wrote what, so
the bound is shared: a build is stopped when the store grew by more than the budget times the
builds running at that moment. A build alone (an attacker's flood) is held to its own budget
exactly; several at once are held together to their budgets' sum, never to the store's size.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

INTERVAL = 1.0  # seconds between looks at the store (a statvfs and, past the budget, one listing)


def used_bytes(folder: Path) -> int:
    """Bytes in use on the file system holding ``folder``."""
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def own_store(folder: Path) -> Path | None:
    """``folder`` when it is a file system of its own (the embedded build store, sized by
    build_store_size), else None: on a shared disk its growth says nothing about one build."""
    return folder if os.path.ismount(folder) else None


class DiskWatch:
    """Returns from ``over()`` once the store grew past the build's share of it."""

    def __init__(self, store: Path, budget: int, builds_running: Callable[[], Awaitable[int]],
                 interval: float = INTERVAL) -> None:
        self.store = store
        self.budget = budget
        self.builds_running = builds_running
        self.interval = interval
        self.start = used_bytes(store)

    async def over(self) -> int:
        """Wait (for as long as the build runs: the caller cancels it) until the store's growth
        passes the budget times the builds running; return that growth in bytes."""
        while True:
            await asyncio.sleep(self.interval)  # a look every interval, not a synchronisation
            grown = used_bytes(self.store) - self.start
            if grown > self.budget and grown > self.budget * max(1, await self.builds_running()):
                return grown
