"""An append-only event log that any number of watchers follow, late joiners included.

Builds use it so every watcher of a shared build gets the log so far and every event after;
launch sessions use it so a reconnecting browser resumes from the last event it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bindery.events import Event


class Channel:
    """``max_bytes`` (of event messages; 0: no bound) keeps only the latest events in memory:
    a late joiner then starts at the oldest one kept (a build's whole log is at its URL)."""

    def __init__(self, max_bytes: int = 0) -> None:
        self.events: list[Event] = []
        self.first = 0  # index of events[0]: how many older events were let go
        self.max_bytes = max_bytes
        self._bytes = 0
        self.closed = False
        self._changed = asyncio.Condition()
        self.watchers = 0

    async def publish(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._bytes += len(event.message)
            if self.max_bytes:
                drop = 0
                while self._bytes > self.max_bytes and drop < len(self.events) - 1:
                    self._bytes -= len(self.events[drop].message)
                    drop += 1
                if drop:
                    del self.events[:drop]
                    self.first += drop
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def follow(self, start: int = 0) -> AsyncIterator[tuple[int, Event]]:
        """Yield (index, event) from `start` on, until the channel is closed and drained."""
        index = start
        self.watchers += 1
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(
                        lambda: index < self.first + len(self.events) or self.closed)
                    index = max(index, self.first)  # older events were let go: the tail
                    batch = self.events[index - self.first:]
                    done = self.closed
                for event in batch:
                    yield index, event
                    index += 1
                if done and index >= self.first + len(self.events):
                    return
        finally:
            self.watchers -= 1
