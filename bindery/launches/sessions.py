"""Launch sessions: one per launch request, outliving any single HTTP connection and any process.

A session's events live in the state store (bindery/state/), with ids `<session>.<index>`, so a
client that reconnects with `Last-Event-ID` (as EventSource does) resumes the same launch where it
was, on whichever process of the service it reaches, and never starts a second launch.

The pipeline of a session runs in one process, its owner, which beats a heartbeat in the store.
Whoever follows a session whose owner is gone (stopped beating: kill -9) or released it (SIGTERM,
see :meth:`Sessions.hand_over`) claims it and re-runs the pipeline for the same request into the
same session: event indices continue, the client sees one launch. The hub user the first run had
created (recorded in the store before it is created) is removed first, with its quota place.

Nobody watching (no stream on any process has touched the session for `grace` seconds): the owner
cancels the launch, which removes its server and user; a session whose owner died and that nobody
reconnected to is cleaned up by whichever process's sweep notices it.

The caps on open launches (per client address, and in total) hold for the whole service, not per
process: behind a balancer one address's launches spread over the replicas. Each process keeps its
own open launches by client in one store record (``open-launches``/<owner>, rewritten when they
change and at every heartbeat, gone `stale` seconds after its owner stops); a new launch is
admitted against the sum of every live record. Two processes admitting at the same instant can
each let one more in: the caps may be passed by at most one launch per other process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bindery import service_log
from bindery.events import Event, failed
from bindery.state import unavailable_errors
from bindery.state.base import StateStore

log = logging.getLogger(__name__)

# An event id: a session id (token_urlsafe, '.' replaced) and an index bounded to what a store
# holds (SQLite integers are 64-bit; a launch has at most thousands of events).
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\.[0-9]{1,12}")


class BadEventId(ValueError):
    """A Last-Event-ID this service cannot have sent; the message says so, for the person."""

ABANDONED = "The launch was abandoned: nobody was watching."
SWEEP_EVERY = 5  # heartbeats between two sweeps for sessions whose owner died unwatched
OPEN_KIND = "open-launches"  # store records: one process's open launches by client


@dataclass(eq=False)
class Session:
    """A session this process runs (its owner)."""

    id: str
    provider: str
    spec: str
    client: str = ""  # the address that started it, for the per-client cap
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the run
    task: asyncio.Task | None = None
    watchers: int = 0  # streams of this process following it


@dataclass(frozen=True)
class Bounds:
    grace: float = 30.0  # seconds unwatched before a launch is abandoned
    heartbeat: float = 2.0
    stale: float = 10.0  # owner silent this long: gone
    max_open: int = 0  # 0: no cap
    max_open_per_client: int = 0
    kept_bytes: int = 0  # build output one session keeps in the store (0: all of it)


class Budget:
    """What of a session's events the store keeps: all of them up to ``max_bytes`` of messages;
    past it only phase changes, events with fields of their own (progress, digest, ready) and the
    end, after one notice saying so. A build printing gigabytes costs its sessions nothing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.phase = ""
        self.noticed = False

    def admit(self, event: Event) -> Event | None:
        changed, self.phase = event.phase != self.phase, event.phase
        self.used += len(event.message)
        if not self.max_bytes or self.used <= self.max_bytes or event.terminal or changed \
                or event.model_extra:
            return event
        if self.noticed:
            return None
        self.noticed = True
        return Event(phase=event.phase, message=f"[bindery] more than {self.max_bytes} bytes of "
                     "output: the rest is not repeated here (the build log has all of it)\n")


def with_launch_id(sid: str, event: Event) -> Event:
    return Event(**{**event.data(), "launch_id": service_log.launch_id(sid)})


def process_id() -> str:
    """This process's owner id: readable (host, pid) and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Sessions:
    def __init__(self, run: Callable[..., AsyncIterator[Event]], store: StateStore,
                 remove_user: Callable[[str], Awaitable[None]], bounds: Bounds = Bounds(),
                 on_ready: Callable[[Session | dict, Event], Awaitable[None]] | None = None,
                 owner: str | None = None) -> None:
        self.run = run  # run(provider, spec, on_user=..., client=..., **options) -> events
        self.store = store
        self.remove_user = remove_user  # stop a hub user's server, delete it, free its place
        self.bounds = bounds
        self.on_ready = on_ready
        self.owner = owner or process_id()
        self.items: dict[str, Session] = {}  # the sessions this process runs
        self.open_by_client: Counter[str] = Counter()
        self._published = False  # a record of this process's open launches is in the store
        self.draining = False
        self._taking: set[str] = set()  # sessions being taken over by this process right now
        self._monitor: asyncio.Task | None = None

    # -- admission -------------------------------------------------------------------------------
    @property
    def open_count(self) -> int:
        return self.open_by_client.total()

    async def over_limit(self, client: str) -> str | None:
        """Why a new launch from `client` is refused (429), or None. Bounds the work one address,
        and everyone together, can have under way in the whole service (every process)."""
        if not (self.bounds.max_open_per_client or self.bounds.max_open):
            return None
        everywhere = Counter(self.open_by_client)
        for owner in await self.store.keys(OPEN_KIND):
            record = await self.store.get(OPEN_KIND, owner) if owner != self.owner else None
            if record is not None:
                everywhere.update({c: int(n) for c, n in record.get("by_client", {}).items()})
        mine = everywhere.get(client, 0)
        limit = self.bounds.max_open_per_client
        if limit and mine >= limit:
            return (f"You already have {mine} launches under way from your address; the limit is "
                    f"{limit}. Wait for one of them to finish, then try again.")
        if self.bounds.max_open and everywhere.total() >= self.bounds.max_open:
            return (f"This service has as many launches under way as it takes "
                    f"({self.bounds.max_open}). Please try again in a minute.")
        return None

    async def _publish_open(self) -> None:
        """This process's open launches by client, for the other processes' admissions."""
        if not (self.bounds.max_open_per_client or self.bounds.max_open):
            return
        if self.open_by_client:
            await self.store.put(OPEN_KIND, self.owner, {"by_client": dict(self.open_by_client)},
                                 ttl=self.bounds.stale)
            self._published = True
        elif self._published:
            await self.store.delete(OPEN_KIND, self.owner)
            self._published = False

    # -- starting, resuming, taking over ---------------------------------------------------------
    async def start(self, provider: str, spec: str, client: str = "", **options: Any) -> str:
        sid = secrets.token_urlsafe(9).replace(".", "_")
        await self.store.create_session(sid, {"provider": provider, "spec": spec, "client": client,
                                              "options": options, "owner": self.owner})
        self._run_here(sid, provider, spec, client, options)
        await self._publish_open()
        return sid

    async def resume(self, last_event_id: str | None) -> tuple[str, int] | None:
        """The session and last index a client saw, from its Last-Event-ID (any process's); None
        when it names no session (unknown or expired: a new launch). BadEventId when it is not an
        id this service could have sent."""
        if not last_event_id:
            return None
        if not EVENT_ID.fullmatch(last_event_id):
            raise BadEventId(f"The Last-Event-ID {last_event_id[:40]!r} is not an event id of "
                             "this service (they look like <session>.<number>). Start the launch "
                             "again without it.")
        sid, _, index = last_event_id.rpartition(".")
        if await self.store.session(sid) is None:
            return None
        return sid, int(index)

    def _run_here(self, sid: str, provider: str, spec: str, client: str,
                  options: dict[str, Any]) -> Session:
        session = Session(sid, provider, spec, client, options)
        self.items[sid] = session
        self.open_by_client[client] += 1
        # Every line the launch's task (and what it starts) writes names the launch: the same id
        # on whichever process runs it, derived from the session id but not revealing it.
        context = contextvars.copy_context()
        context.run(service_log.set_current, service_log.LaunchContext(
            launch_id=service_log.launch_id(sid), spec=f"{provider}/{spec}"))
        session.task = asyncio.get_running_loop().create_task(self._drive(session), context=context)
        return session

    async def take_over(self, sid: str) -> bool:
        """Run the session here if its owner is gone or released it; True if this process runs
        it now. The first run's hub user and quota place are removed before the re-run."""
        if sid in self.items or sid in self._taking or self.draining:
            return sid in self.items or sid in self._taking
        self._taking.add(sid)  # other streams of this process wait for this take-over
        try:
            return await self._take_over(sid)
        finally:
            self._taking.discard(sid)

    async def _take_over(self, sid: str) -> bool:
        meta = await self.store.claim(sid, self.owner)
        if meta is None:
            return False
        events = await self.store.events(sid)
        if events and Event.model_validate_json(events[-1][1]).terminal:
            await self.store.end_session(sid)  # it ended; only the flag was lost
            return False
        log.info("taking over launch %s", service_log.launch_id(sid))
        if meta.get("hub_user"):
            await self.remove_user(meta["hub_user"])
            await self.store.patch_session(sid, hub_user="")
        await self.store.append(sid, Event(
            phase="waiting", message="The bindery process running this launch stopped; "
            "continuing it here.\n").to_json())
        self._run_here(sid, meta["provider"], meta["spec"], meta.get("client", ""),
                       meta.get("options", {}))
        await self._publish_open()
        return True

    async def _drive(self, session: Session) -> None:
        sid = session.id

        async def on_user(user: str) -> None:  # before the launcher creates it on the hub
            await self.store.patch_session(sid, hub_user=user)

        handed_over = ended = False
        kept = Budget(self.bounds.kept_bytes)
        try:
            async for event in self.run(session.provider, session.spec, on_user=on_user,
                                        client=session.client, **session.options):
                if event.phase == "ready" and self.on_ready is not None:
                    await self.on_ready(session, event)
                if event.terminal:  # the id a person quotes to the operators, who find it in logs
                    event = with_launch_id(sid, event)
                stored = kept.admit(event)
                if stored is not None:
                    await self.store.append(sid, stored.to_json())
                if event.terminal:  # the run still finishes (it counts its outcome after this)
                    await self.store.end_session(sid)
                    ended = True
        except asyncio.CancelledError:
            if ended:
                pass  # cancelled while counting its outcome: the client has its result
            elif self.draining:  # handed over: the launch goes on wherever the client reconnects
                handed_over = True
            else:
                await asyncio.shield(self._end(sid, failed(ABANDONED)))
                ended = True
        finally:
            if not (ended or handed_over):  # the run stopped without an end: say so, once
                await asyncio.shield(self._end(sid, failed(
                    "The launch stopped without a result; please try again.")))
            self.items.pop(sid, None)
            self.open_by_client[session.client] -= 1
            if self.open_by_client[session.client] <= 0:
                del self.open_by_client[session.client]
            with contextlib.suppress(Exception):  # a store hiccup: the next heartbeat rewrites it
                await asyncio.shield(self._publish_open())
            if handed_over:
                await asyncio.shield(self.store.release_session(sid, self.owner))

    async def _end(self, sid: str, event: Event) -> None:
        await self.store.append(sid, with_launch_id(sid, event).to_json())
        await self.store.end_session(sid)

    # -- following -------------------------------------------------------------------------------
    async def follow(self, sid: str, after: int = -1) -> AsyncIterator[tuple[str, Event]]:
        """Events of the session after index `after`, until its terminal event (or until this
        process drains: the client then reconnects elsewhere). Takes the session over when its
        owner is gone."""
        local: Session | None = None
        touched = 0.0
        wait = min(1.0, self.bounds.heartbeat)
        try:
            while not self.draining:
                if local is None and sid in self.items:  # run here (from the start, or taken over)
                    local = self.items[sid]
                    local.watchers += 1
                now = time.time()
                if now - touched >= self.bounds.heartbeat:  # a watcher is here, on some process
                    touched = now
                    await self.store.patch_session(sid, watched_at=now)
                found = await self.store.wait_events(sid, after, wait)
                for index, data in found:
                    after = index
                    event = Event.model_validate_json(data)
                    yield f"{sid}.{index}", event
                    if event.terminal:
                        return
                if not found and sid not in self.items:
                    await self.take_over(sid)  # runs it here if its owner is gone
        finally:
            if local is not None:
                local.watchers -= 1

    # -- the background monitor: heartbeat, abandonment, sweeps ----------------------------------
    async def run_monitor(self) -> None:
        beats = 0
        while True:
            try:
                await self.store.beat(self.owner, self.bounds.stale)
                await self._publish_open()  # keeps the record alive while launches are open
                await self._abandon_unwatched()
                beats += 1
                if beats % SWEEP_EVERY == 0:
                    await self._sweep_orphans()
            except unavailable_errors() as exc:  # down or damaged: one line, not a traceback
                log.error("state store monitor round failed: %s: %s", type(exc).__name__, exc)
            except Exception:  # a store hiccup must not end the heartbeat; the next beat retries
                log.exception("state store monitor round failed")
            await asyncio.sleep(self.bounds.heartbeat)  # the heartbeat's period

    def start_monitor(self) -> None:
        self._monitor = asyncio.get_running_loop().create_task(self.run_monitor())

    async def _abandon_unwatched(self) -> None:
        deadline = time.time() - self.bounds.grace
        for session in list(self.items.values()):
            if session.watchers or session.task is None or session.task.done():
                continue
            meta = await self.store.session(session.id)
            if meta is not None and meta.get("watched_at", 0) < deadline:
                session.task.cancel()

    async def _sweep_orphans(self) -> None:
        """End sessions whose owner died and that nobody reconnected to within the grace."""
        deadline = time.time() - self.bounds.grace
        for sid in await self.store.open_sessions():
            meta = await self.store.session(sid)
            if meta is None or meta.get("ended") or sid in self.items \
                    or meta.get("watched_at", 0) >= deadline:
                continue
            if await self.store.claim(sid, self.owner) is None:
                continue
            log.info("cleaning up abandoned launch %s", service_log.launch_id(sid))
            if meta.get("hub_user"):
                await self.remove_user(meta["hub_user"])
            await self._end(sid, failed(ABANDONED))

    # -- shutdown --------------------------------------------------------------------------------
    async def hand_over(self) -> None:
        """SIGTERM: stop the launches this process runs without failing them (their hub users
        and places are cleaned up by the cancellation) and release them, so the processes the
        clients reconnect to continue them; streams end so the clients do reconnect."""
        self.draining = True
        if self._monitor is not None:  # no more heartbeats: this process is going
            self._monitor.cancel()
        tasks = [s.task for s in self.items.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.owner_gone(self.owner)
        await self.store.delete(OPEN_KIND, self.owner)

    async def aclose(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        tasks = [s.task for s in self.items.values() if s.task and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
