"""Kill one part of a supervised stack with SIGKILL while launches are in flight, and judge what follows.

One round (:func:`kill_round`): start the in-flight launches (a build that has printed its marker,
a spawn the hub is working on), SIGKILL the part, then check three things, each within a bound:

1. the part runs again (a new process that answers): the supervisor's doing;
2. every in-flight launch ENDS, with `ready` or a `failed` a person understands (no internal
   error, no traceback, no HTML error body): a launch never hangs on a dead part;
3. a launch started after the part is back reaches `ready`.

Launches are followed as a browser's EventSource follows them: a dropped stream (the web service
was the part killed) is opened again with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bindery.backoff import wait_until_async
from bindery.events import Event
from tests.production.watch import Seen, Watch, watch

BACK_WITHIN = 60.0  # seconds: rounds of the supervisor and a start (the hub's takes ~6 s)
ENDS_WITHIN = 180.0  # seconds an in-flight launch may take to end after the kill
READY_WITHIN = 240.0  # seconds for the launch after the part is back (may build first)


def marker(word: str) -> tuple[str, Callable[[Seen], bool]]:
    """A build step that prints a marker and then keeps the build running a while, and the test
    for its line. The shell computes the marker, so the step's own command line (repo2docker
    prints it) does not match."""
    return (f"RUN echo {word}-marker-$((6*7)) && sleep 5",
            lambda seen: f"{word}-marker-42" in seen.event.message)


def spawning(seen: Seen) -> bool:
    """The launch asked the hub for its server (the start request is on its way)."""
    return seen.phase == "launching" and "Launching server" in seen.event.message


def understood(event: Event) -> bool:
    """A `failed` a person can act on: bindery's own words, not a crash's."""
    text = event.message
    return (event.phase == "failed" and len(text.strip()) > 10 and "internal error" not in text
            and "Traceback" not in text and "<html" not in text.lower())


async def follow(base_url: str, spec: str, into: Watch, bound: float) -> Watch:
    """Follow the launch to its end, reconnecting (Last-Event-ID) when the stream drops."""
    async def ended() -> bool:
        if into.events and into.last.terminal:
            return True
        try:
            await watch(base_url, "git", spec, into=into, last_event_id=into.last_id)
        except (httpx.HTTPError, AssertionError):  # down, or dropped mid-stream: ask again
            pass
        return bool(into.events) and into.last.terminal

    await wait_until_async(ended, timeout=bound, what=f"the launch of {spec[:60]} to end",
                           interval=0.2, cap=1.0)
    return into


@dataclass
class InFlight:
    spec: str
    started: Callable[[Seen], bool]  # true of the event after which the launch is in flight
    seen: Watch = field(default_factory=Watch)
    task: asyncio.Task | None = None

    def begin(self, base_url: str) -> None:
        self.task = asyncio.ensure_future(follow(base_url, self.spec, self.seen, ENDS_WITHIN))

    def under_way(self) -> bool:
        if self.task.done():  # ended before the kill: the round proves nothing
            raise AssertionError(f"ended before the kill: {self.seen.phases()} "
                                 f"{self.seen.last.message if self.seen.events else ''}")
        return any(self.started(s) for s in self.seen.events)


@dataclass
class Outcome:
    part: str
    back_after: float  # seconds from the kill until the part answered again
    ends: list[tuple[str, float]]  # per in-flight launch: (its last phase, seconds after the kill)
    messages: list[str]
    launches: list[InFlight]


async def kill_round(part: str, base_url: str, pid: Callable[[], int | None],
                     back: Callable[[], bool], in_flight: list[InFlight]) -> Outcome:
    """SIGKILL ``pid()`` once every launch of ``in_flight`` is under way (started in that order:
    the quickest last); return once the part is ``back()`` (with a pid other than the killed
    one) and every launch ended."""
    for launch in in_flight:  # in turn: a spawn is over in seconds, a build takes a while to start
        launch.begin(base_url)
        await wait_until_async(launch.under_way, timeout=READY_WITHIN, interval=0.05, cap=0.5,
                               what=f"a launch of {launch.spec[:60]} under way")
    old = pid()
    assert old is not None, f"{part} is not running"
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()

    def again() -> bool:
        now = pid()
        return now is not None and now != old and back()

    await wait_until_async(lambda: asyncio.to_thread(again), timeout=BACK_WITHIN, interval=0.2,
                           cap=1.0, what=f"{part} running again after SIGKILL")
    back_after = time.monotonic() - killed_at
    ends = []
    for launch in in_flight:
        await launch.task  # bounded by ENDS_WITHIN: raises WaitTimeout for a launch that hangs
        ends.append((launch.seen.last.phase, launch.seen.events[-1].at - killed_at))
    outcome = Outcome(part, back_after, ends, [launch.seen.last.message.strip()[:300]
                                               for launch in in_flight], in_flight)
    print(f"\n{part}: back after {back_after:.1f} s; in-flight launches ended "
          + "; ".join(f"{phase} after {max(0.0, at):.1f} s ({message[:160]!r})"
                      for (phase, at), message in zip(ends, outcome.messages)))
    for launch in in_flight:
        last = launch.seen.last
        assert last.phase == "ready" or understood(last), (part, launch.seen.phases(), last.message)
    return outcome


async def launch_ready(base_url: str, spec: str) -> Event:
    """A launch started now reaches `ready` (followed across dropped streams, within a bound)."""
    seen = await follow(base_url, spec, Watch(), READY_WITHIN)
    assert seen.last.phase == "ready", (seen.phases(), seen.last.message)
    return seen.last
