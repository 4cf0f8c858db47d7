"""The build queue: one build per image, a bounded number of slots, fairness between repositories
and between clients.

- Requests for an image already building or queued join that build (its Channel replays the log so
  far to late joiners), so nothing is built twice.
- At most `slots` builds run at once, at most `per_repo` of them for one repository and at most
  `per_client` for one client (the address that asked first, keyed as the door keys it), so
  neither one slow repository nor one client asking for many repositories can hold every slot.
- Waiting builds take turns between clients (round-robin): a client's n-th waiting build comes
  after every other client's builds with fewer of theirs running or waiting before them, so an
  unrelated launch waits for about one build, not for a flood. Within a client, first come first
  served. Waiting builds are told their position whenever it changes.
- Across processes, `occupied` (the build engine's running build containers, with their image and
  repository labels) is the truth for what runs: slots count those too, checked again every
  `poll` seconds while builds wait, and an image already building elsewhere is joined at once
  (the executor attaches to its container) without taking a slot.
- With a shared waiting line (`line`, bindery/builds/waiting_line.py, in the state store), the order of
  waiting builds and their positions are the same in every process: a process starts only the
  builds the line says come next.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bindery import service_log
from bindery.channel import Channel
from bindery.events import Event, LaunchError

if TYPE_CHECKING:
    from bindery.builds.waiting_line import SharedWaitingLine, Waiting

log = logging.getLogger(__name__)

Runner = Callable[["BuildJob"], AsyncIterator[Event]]
Occupied = Callable[[], Awaitable[list[tuple[str, str]]]]  # (image, repo) of builds running anywhere


@dataclass(frozen=True)
class BuildJob:
    image: str
    repo: str  # repository URL: the fairness key
    commit: str | None
    source: str  # what repo2docker fetches: a URL or a local folder
    provider: str = ""
    git_config: tuple[tuple[str, str], ...] = ()  # the checked address the clone must use
    client: str = ""  # who asked first (the door's client key): the fairness key between clients
    private: bool = False  # a repository reached with the operator's credential: log needs its key


@dataclass(eq=False)
class Build:
    job: BuildJob
    channel: Channel = field(default_factory=Channel)
    error: LaunchError | None = None
    started: float | None = None
    finished: float | None = None
    position: int | None = None

    async def follow(self) -> AsyncIterator[Event]:
        """Every event of this build from its start; raises its LaunchError if it failed."""
        async for _, event in self.channel.follow():
            yield event
        if self.error is not None:
            raise self.error


class BuildQueue:
    def __init__(self, runner: Runner, slots: int, per_repo: int, per_client: int = 0,
                 on_finish: Callable[[Build], None] | None = None,
                 occupied: Occupied | None = None, poll: float = 1.0,
                 finishing: Callable[[], Awaitable[None]] | None = None,
                 kept_bytes: int = 0) -> None:
        self.runner = runner
        self.kept_bytes = kept_bytes  # a build's output kept for late joiners (0: all of it)
        self.finishing = finishing  # awaited at close: ended builds still being removed
        self.slots = max(1, slots)
        self.per_repo = max(1, per_repo)
        self.per_client = per_client  # 0: no cap
        self.on_finish = on_finish
        self.occupied = occupied
        self.poll = max(0.05, poll)
        self.active: dict[str, Build] = {}  # image -> queued or running build
        self.waiting: list[Build] = []
        self.running: list[Build] = []
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task | None = None
        self._elsewhere: list[tuple[str, str]] = []  # the engine's running builds, as last seen
        self.line: SharedWaitingLine | None = None  # the waiting line all processes share
        self._line: list[Waiting] = []  # ... as last read
        self._clients_elsewhere: dict[str, str] = {}  # image -> client of other processes' builds
        self.served: dict[str, float] = {}  # client -> when a build it asked for last started

    def submit(self, job: BuildJob) -> Build:
        build = self.active.get(job.image)
        if build is None:
            build = Build(job, Channel(self.kept_bytes))
            self.active[job.image] = build
            self.waiting.append(build)
            if self.occupied is None and self.line is None:  # the only one building: decide now
                self._schedule([])
            else:  # ask the engine what runs elsewhere first
                self._kick()
        return build

    def _kick(self) -> None:
        if self.occupied is None and self.line is None:
            return
        self._wake.set()
        if self._scheduler is None or self._scheduler.done():
            self._scheduler = self._spawn(self._schedule_loop())

    async def _schedule_loop(self) -> None:
        # While builds run here and a line is shared, it keeps saying whose they are (its entries
        # go stale otherwise), so other processes' per-client caps count them.
        while self.waiting or (self.line is not None and self.running):
            self._wake.clear()
            if not self.waiting:
                await self._sync_line()
                await self._pause()
                continue
            elsewhere: list[tuple[str, str]] = []
            if self.occupied is not None:
                try:
                    elsewhere = await self.occupied()
                except Exception:  # engine trouble: count this process's builds; the build says why
                    elsewhere = []
            self._elsewhere = elsewhere
            await self._sync_line()
            self._leave(self._schedule(elsewhere))
            await self._pause()

    async def _sync_line(self) -> None:
        if self.line is None:
            return
        try:
            view = await self.line.sync(
                [(b.job.image, b.job.repo, b.job.client) for b in self.waiting],
                [(b.job.image, b.job.client) for b in self.running], self.served)
            self._line, self._clients_elsewhere = view.waiting, view.running
            self.served = view.served
        except Exception:  # store trouble: this process's own order until it answers
            self._line, self._clients_elsewhere = [], {}

    async def _pause(self) -> None:
        try:  # bounded poll: other processes' builds end without telling this one
            await asyncio.wait_for(self._wake.wait(), self.poll)
        except TimeoutError:
            pass

    def _arrivals(self) -> list[tuple[str, str, str, Build | None]]:
        """Waiting builds in arrival order: (image, repo, client, this process's build or None)."""
        mine = {b.job.image: b for b in self.waiting}
        if self.line is None or not self._line:
            return [(b.job.image, b.job.repo, b.job.client, b) for b in self.waiting]
        order: list[tuple[str, str, str, Build | None]] = []
        placed: set[str] = set()
        for entry in self._line:
            if entry.owner != self.line.owner:
                order.append((entry.image, entry.repo, entry.client, None))
            elif entry.image in mine and entry.image not in placed:
                build = mine[entry.image]
                order.append((entry.image, entry.repo, build.job.client, build))
                placed.add(entry.image)
        # submitted since the line was last read: at its end, as the next pass puts them
        order += [(b.job.image, b.job.repo, b.job.client, b) for b in self.waiting
                  if b.job.image not in placed]
        return order

    def _order(self, running: dict[str, str]) -> list[tuple[str, str, str, Build | None]]:
        """Waiting builds, first in line first: clients take turns (round-robin). A client's n-th
        waiting build has turn n plus its builds already running (`running`: image -> client); on
        equal turns the client whose build started longest ago (or never) goes first, then the
        earlier arrival."""
        turns = Counter(running.values())
        ranked = []
        for arrival, item in enumerate(self._arrivals()):
            client = item[2]
            ranked.append((turns[client], self.served.get(client, 0.0), arrival, item))
            turns[client] += 1
        return [r[-1] for r in sorted(ranked, key=lambda r: r[:3])]

    def _schedule(self, elsewhere: list[tuple[str, str]]) -> set[str]:
        """Start what the slots allow, in line order; tell waiting builds their place. Returns the
        images this process started."""
        repos = {image: repo for image, repo in elsewhere}
        repos.update({b.job.image: b.job.repo for b in self.running})
        clients = {image: self._clients_elsewhere.get(image, "") for image in repos}
        clients.update({b.job.image: b.job.client for b in self.running})
        started: set[str] = set()
        still: list[tuple[str, str]] = []  # images left waiting, in line order, and why
        for image, repo, client, build in self._order(clients):
            joining = image in repos  # running elsewhere: attach, takes no slot
            why = "" if joining else self._full(repos, clients, repo, client)
            if why:
                still.append((image, why))
                continue  # a later one may be running elsewhere already: it joins
            repos[image] = repo
            clients[image] = client
            self.served[client] = time.time()
            if build is None:  # another process's turn: it starts it on its next pass
                continue
            self.waiting.remove(build)
            self.running.append(build)
            build.position = None
            started.add(image)
            self._spawn(self._run(build))
        # Turns matter only between clients still waiting or building: memory stays bounded.
        present = set(clients.values()) | {b.job.client for b in self.waiting}
        self.served = {c: t for c, t in self.served.items() if c in present}
        mine = {b.job.image: b for b in self.waiting}
        for place, (image, why) in enumerate(still, start=1):
            build = mine.get(image)
            if build is not None and build.position != place:
                build.position = place
                self._publish_soon(build, Event(
                    phase="waiting", position=place,
                    message=f"Waiting for a build slot ({why}): position {place} in the queue\n"))
        return started

    def _full(self, repos: dict[str, str], clients: dict[str, str], repo: str,
              client: str) -> str:
        """Why a build of `repo` asked for by `client` cannot start now ('' if it can)."""
        if len(repos) >= self.slots:
            return "all build slots are busy"
        if sum(1 for r in repos.values() if r == repo) >= self.per_repo:
            return "this repository already uses its build slots"
        if self.per_client and sum(1 for c in clients.values() if c == client) >= self.per_client:
            return "builds asked for from the same address already use their share of the slots"
        return ""

    def _leave(self, started: set[str]) -> None:
        """Started builds no longer wait: say so in the shared line (in the background)."""
        if self.line is not None and started:
            self._spawn(self._leave_line(started))

    async def _leave_line(self, images: set[str]) -> None:
        try:
            await self.line.leave(images)  # type: ignore[union-attr]
        except Exception:  # the next pass, or staleness, takes them out anyway
            pass

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _publish_soon(self, build: Build, event: Event) -> None:
        self._spawn(build.channel.publish(event))

    async def _run(self, build: Build) -> None:
        # A build serves every launch that asked for its image: its lines name the build, not the
        # launch whose request happened to start it.
        job = build.job
        service_log.set_current(service_log.LaunchContext(
            build=job.image, repo=job.repo, ref=job.commit or "", phase="building"))
        log.info("build started", extra={"image": job.image, "source": job.source})
        build.started = time.monotonic()
        try:
            async for event in self.runner(build.job):
                await build.channel.publish(event)
        except LaunchError as exc:
            build.error = exc
        except Exception as exc:  # an adapter bug must still end the build for its watchers
            build.error = LaunchError(f"Build failed unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            build.finished = time.monotonic()
            self.running.remove(build)
            self.active.pop(build.job.image, None)
            if self.on_finish:
                self.on_finish(build)
            # Before watchers wake, so they see the queue already moved on; the scheduler then
            # checks the engine again without waiting for its poll.
            self._elsewhere = [(i, r) for i, r in self._elsewhere if i != build.job.image]
            self._leave(self._schedule(self._elsewhere))
            if self.waiting:
                self._kick()
            await build.channel.close()

    @property
    def queue_length(self) -> int:
        return len(self.waiting)

    async def aclose(self) -> None:
        """Stop following builds; their containers keep running for the next process to join.
        Builds that succeeded are still removed (bounded): their log is kept as they end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.finishing is not None:
            await self.finishing()
