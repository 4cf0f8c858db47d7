"""Launch sessions: one per launch request, outliving any single HTTP connection.

A session runs the pipeline in its own task and publishes into a Channel. Event ids are
`<session>.<index>`, so a client that reconnects with `Last-Event-ID` (as EventSource does) resumes
the same launch where it was, and never starts a second build or launch. When nobody has watched
a session for `grace` seconds before it ended, it is abandoned: cancelled, which makes the
launcher remove its server and user.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bindery.channel import Channel
from bindery.events import Event, failed


@dataclass(eq=False)
class Session:
    id: str
    provider: str
    spec: str
    client: str = ""  # the address that started it, for the per-client cap
    channel: Channel = field(default_factory=Channel)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the run
    task: asyncio.Task | None = None
    ended_at: float | None = None
    reaper: asyncio.TimerHandle | None = None

    async def follow(self, after: int = -1) -> AsyncIterator[tuple[str, Event]]:
        if self.reaper is not None:
            self.reaper.cancel()
            self.reaper = None
        async for index, event in self.channel.follow(after + 1):
            yield f"{self.id}.{index}", event


class Sessions:
    def __init__(self, run: Callable[..., AsyncIterator[Event]], grace: float = 30.0,
                 retention: float = 600.0, max_sessions: int = 10_000, max_open: int = 0,
                 max_open_per_client: int = 0) -> None:
        self.run = run
        self.grace = grace
        self.retention = retention
        self.max_sessions = max_sessions
        self.max_open = max_open  # 0: no cap
        self.max_open_per_client = max_open_per_client
        self.items: dict[str, Session] = {}
        self.open_by_client: Counter[str] = Counter()

    @property
    def open_count(self) -> int:
        return self.open_by_client.total()

    def over_limit(self, client: str) -> str | None:
        """Why a new launch from `client` is refused (429), or None. Bounds the work one address,
        and everyone together, can have under way, whatever the rate limit lets through."""
        mine = self.open_by_client.get(client, 0)
        if self.max_open_per_client and mine >= self.max_open_per_client:
            return (f"You already have {mine} launches under way from your address; the limit is "
                    f"{self.max_open_per_client}. Wait for one of them to finish, then try again.")
        if self.max_open and self.open_count >= self.max_open:
            return (f"This service has as many launches under way as it takes ({self.max_open}). "
                    "Please try again in a minute.")
        return None

    def start(self, provider: str, spec: str, client: str = "", **options: Any) -> Session:
        self._forget_old()
        session = Session(secrets.token_urlsafe(9).replace(".", "_"), provider, spec, client,
                          options=options)
        self.items[session.id] = session
        self.open_by_client[client] += 1
        session.task = asyncio.get_running_loop().create_task(self._drive(session))
        return session

    def resume(self, last_event_id: str | None) -> tuple[Session, int] | None:
        """The session and last index a client saw, from its Last-Event-ID."""
        if not last_event_id:
            return None
        sid, _, index = last_event_id.rpartition(".")
        session = self.items.get(sid)
        if session is None or not index.isdigit():
            return None
        return session, int(index)

    def watcher_left(self, session: Session) -> None:
        """Called when a connection ends; abandon the launch if nobody comes back in time."""
        if session.channel.watchers == 0 and not session.channel.closed and session.reaper is None:
            loop = asyncio.get_running_loop()
            session.reaper = loop.call_later(self.grace, self._abandon, session)

    def _abandon(self, session: Session) -> None:
        session.reaper = None
        if session.channel.watchers == 0 and session.task and not session.task.done():
            session.task.cancel()

    async def _drive(self, session: Session) -> None:
        try:
            async for event in self.run(session.provider, session.spec, **session.options):
                await session.channel.publish(event)
        except asyncio.CancelledError:
            await session.channel.publish(failed("The launch was abandoned: nobody was watching."))
        finally:
            session.ended_at = time.monotonic()
            self.open_by_client[session.client] -= 1
            if self.open_by_client[session.client] <= 0:
                del self.open_by_client[session.client]
            await session.channel.close()

    def _forget_old(self) -> None:
        now = time.monotonic()
        for sid, s in list(self.items.items()):
            if s.ended_at is not None and (now - s.ended_at > self.retention
                                           or len(self.items) > self.max_sessions):
                del self.items[sid]

    async def aclose(self) -> None:
        tasks = [s.task for s in self.items.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
