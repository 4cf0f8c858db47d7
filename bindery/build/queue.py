"""The build queue: one build per image, a bounded number of slots, fairness between repositories.

- Requests for an image already building or queued join that build (its Channel replays the log so
  far to late joiners), so nothing is built twice.
- At most `slots` builds run at once, and at most `per_repo` of them for one repository, so one
  slow repository cannot hold every slot. Others wait in FIFO order and are told their position
  whenever it changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bindery.channel import Channel
from bindery.events import Event, LaunchError

Runner = Callable[["BuildJob"], AsyncIterator[Event]]


@dataclass(frozen=True)
class BuildJob:
    image: str
    repo: str  # repository URL: the fairness key
    commit: str | None
    source: str  # what repo2docker fetches: a URL or a local folder
    provider: str = ""
    git_config: tuple[tuple[str, str], ...] = ()  # the checked address the clone must use


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
    def __init__(self, runner: Runner, slots: int, per_repo: int,
                 on_finish: Callable[[Build], None] | None = None) -> None:
        self.runner = runner
        self.slots = max(1, slots)
        self.per_repo = max(1, per_repo)
        self.on_finish = on_finish
        self.active: dict[str, Build] = {}  # image -> queued or running build
        self.waiting: list[Build] = []
        self.running: list[Build] = []
        self._tasks: set[asyncio.Task] = set()

    def submit(self, job: BuildJob) -> Build:
        build = self.active.get(job.image)
        if build is None:
            build = Build(job)
            self.active[job.image] = build
            self.waiting.append(build)
            self._schedule()
        return build

    def _running_for(self, repo: str) -> int:
        return sum(1 for b in self.running if b.job.repo == repo)

    def _schedule(self) -> None:
        for build in list(self.waiting):
            if len(self.running) >= self.slots:
                break
            if self._running_for(build.job.repo) >= self.per_repo:
                continue
            self.waiting.remove(build)
            self.running.append(build)
            build.position = None
            task = asyncio.get_running_loop().create_task(self._run(build))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        for place, build in enumerate(self.waiting, start=1):
            if build.position != place:
                build.position = place
                why = "all build slots are busy" if len(self.running) >= self.slots else \
                    "this repository already uses its build slots"
                self._publish_soon(build, Event(
                    phase="waiting", position=place,
                    message=f"Waiting for a build slot ({why}): position {place} in the queue\n"))

    def _publish_soon(self, build: Build, event: Event) -> None:
        task = asyncio.get_running_loop().create_task(build.channel.publish(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, build: Build) -> None:
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
            self._schedule()  # before watchers wake, so they see the queue already moved on
            await build.channel.close()

    @property
    def queue_length(self) -> int:
        return len(self.waiting)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
