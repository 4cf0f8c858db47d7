"""Where a build runs: the build executor interface (engine containers, or pods on Kubernetes).

The contract every implementation keeps (tests/build/test_executor_contract.py checks it):

- A build is named from its image (:func:`build_name`: deterministic, the same in every process).
  ``start`` creates it; when a build of that name already exists (started by this or any other
  bindery process, before or after a restart) it attaches instead: no error, no second build. The
  returned handle says which, and carries the build's deadline as the build recorded it.
- ``follow`` yields the build's output lines FROM ITS START, whoever started it, and ends when the
  build ends (or at once when it already has).
- ``wait`` waits for the end and returns the exit status; the finished build is removed and its
  log kept (:class:`bindery.builds.build_logs.BuildLogs`), so ``wait`` in a second process, or after the
  first removed it, still returns the same status (from the kept record).
- ``cancel`` stops and removes the build (its log so far is kept, ending with the reason).
- ``log_so_far`` gives a running build's log as a person reads it (None when there is no such
  build), for the build log page while the build runs.
- ``running`` lists the builds alive on the engine with their image and repository key: the truth
  for build slots across processes. Finished builds nobody waited for (their bindery died) are
  removed there, their log kept.
- ``finish_in_background`` runs ``wait`` in a task the executor holds, for a build whose success
  is already known from its last log line (bindery/builds/runner.py); ``aclose`` lets those end.
- The executor enforces the build's memory limit; the build's timeout is enforced by ``wait``
  (stop and remove at the deadline) and, with nobody waiting, by the build itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

NAME_PREFIX = "bindery-build-"
TIMED_OUT = -1  # exit status `wait` reports for a build stopped at its deadline
CANCELLED = -2  # exit status of a build removed by `cancel`
FINISH_TIMEOUT = 30.0  # seconds a shutdown waits for builds finishing in the background


def build_name(image: str) -> str:
    """The build's name: derived from the image alone (image names are public anyway)."""
    return NAME_PREFIX + hashlib.sha256(image.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class BuildSpec:
    """Everything one build needs: what to run, with which environment, under which limits."""

    image: str  # the image the build makes (names the build)
    repo: str  # the repository key (fairness: per-repository slots)
    argv: list[str]  # repo2docker's arguments, after the command
    env: dict[str, str] = field(default_factory=dict)  # options + pinned git config
    memory_limit: str = "3G"
    timeout: float = 3600.0
    mounts: tuple[str, ...] = ()  # host folders the build reads (a local source), read-only

    @property
    def name(self) -> str:
        return build_name(self.image)


@dataclass(frozen=True)
class BuildHandle:
    name: str
    deadline: float  # wall-clock time (epoch seconds) the build must end by
    attached: bool  # True: the build already existed and this caller joined it


@dataclass(frozen=True)
class RunningBuild:
    name: str
    image: str
    repo: str


class BuildExecutor(ABC):
    """Runs builds by name; see the module docstring for the contract."""

    @abstractmethod
    async def start(self, spec: BuildSpec) -> BuildHandle: ...

    @abstractmethod
    def follow(self, name: str) -> AsyncIterator[bytes]: ...

    @abstractmethod
    async def wait(self, handle: BuildHandle) -> int: ...

    @abstractmethod
    async def cancel(self, name: str, reason: str = "cancelled") -> None: ...

    @abstractmethod
    async def log_so_far(self, name: str) -> str | None: ...

    @abstractmethod
    async def running(self) -> list[RunningBuild]: ...

    def finish_in_background(self, handle: BuildHandle) -> None:
        """``wait`` for a build in a task of the executor's own (kept until it ends, so it is not
        collected mid-way). An error is logged: the build's end is already decided, and a build
        left behind is reaped by any process's ``running``."""
        # Held on the instance, created on first use: implementations need not call an __init__.
        tasks: set[asyncio.Task] = self.__dict__.setdefault("_finishing", set())
        task = asyncio.get_running_loop().create_task(self.wait(handle))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_failure)

    async def finishing(self, timeout: float = FINISH_TIMEOUT) -> None:
        """Until every build handed to ``finish_in_background`` has been waited for, at most
        `timeout` seconds (an engine that stopped answering must not hold a shutdown); what is
        left then is cancelled, and reaped later by any process's ``running``."""
        tasks = list(self.__dict__.get("_finishing", set()))
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def aclose(self) -> None:
        """Release this process's resources; builds keep running."""
        await self.finishing()


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("finishing a build in the background failed: %s", task.exception())
