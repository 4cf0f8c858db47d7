"""An append-only event log that any number of watchers follow, late joiners included.

Builds use it so every watcher of a shared build gets the log so far and every event after;
launch sessions use it so a reconnecting browser resumes from the last event it saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from bindery.events import Event


class Channel:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False
        self._changed = asyncio.Condition()
        self.watchers = 0

    async def publish(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
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
                    await self._changed.wait_for(lambda: index < len(self.events) or self.closed)
                    batch = self.events[index:]
                    done = self.closed
                for event in batch:
                    yield index, event
                    index += 1
                if done and index >= len(self.events):
                    return
        finally:
            self.watchers -= 1
