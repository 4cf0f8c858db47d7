"""One client cannot starve the build queue (the real stack): a client that asks for several
unbuilt repositories at once holds one build slot, and another client's launch, asked for after
the flood, gets the next free slot instead of waiting behind every build of the flood.

The two clients are two loopback source addresses (127.0.0.1 and 127.0.0.2), so the service keys
them apart as it keys any two addresses. Builds only (build_only): no servers to start or remove.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bindery.event_stream import amessages
from bindery.events import Event
from tests.production.watch import Seen, Watch
from tests.streams import git_spec

STEP = "RUN echo fairness-build-step {} && sleep 3"  # each its own step: no layer cache


async def follow(base: str, spec: str, source: str, into: Watch) -> Watch:
    """Follow a build-only launch of `spec` from the local address `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10, read=120)) as c:
        async with c.stream("GET", f"{base}/build/git/{spec}",
                            params={"build_only": "true"}) as response:
            assert response.status_code == 200
            async for message in amessages(response.aiter_lines()):
                seen = Seen(None, time.monotonic(), Event.model_validate_json(message.data))
                into.events.append(seen)
                if seen.event.terminal:
                    break
    return into


def started(w: Watch) -> float:
    """When the build got its slot: the runner's first event (it names the buildpacks)."""
    step = w.first(lambda s: s.event.message.startswith("Buildpacks:"))
    assert step is not None, [s.event.message for s in w.events]
    return step.at


def positions(w: Watch) -> list[int]:
    return [s.event.data()["position"] for s in w.events
            if s.phase == "waiting" and "position" in s.event.data()]


async def test_a_flood_from_one_client_does_not_hold_another_clients_launch(service_with,
                                                                           git_repo_factory):
    # header_timeout_seconds=1: the event streams (tens of seconds) must not be cut by it
    service = service_with(build_slots=1, build_slots_per_client=1, allowed_specs=[".*"],
                           header_timeout_seconds=1)
    flood_urls = [git_repo_factory(f"flood{i}", STEP.format(i))[1] for i in range(3)]
    _, other_url = git_repo_factory("unrelated", STEP.format("unrelated"))
    flood = [Watch() for _ in flood_urls]
    other = Watch()
    async with asyncio.timeout(300):
        tasks = [asyncio.create_task(follow(service.url, git_spec(u, "main"), "127.0.0.1", w))
                 for u, w in zip(flood_urls, flood)]
        while sum(1 for w in flood if positions(w)) < 2:  # the flood is in: two of it wait
            await asyncio.sleep(0.2)
        asked = time.monotonic()
        await follow(service.url, git_spec(other_url, "main"), "127.0.0.2", other)
        await asyncio.gather(*tasks)
    for w in [*flood, other]:
        assert w.last.phase == "ready", w.log()
    # The unrelated launch was first in line at once, ahead of the flood's waiting builds...
    assert positions(other) == [1], other.log()
    # ...and got the next free slot: every build of the flood that had not started when it joined
    # the queue (at least one: one slot, three builds) started after it.
    queued = other.first(lambda s: s.phase == "waiting")
    assert queued is not None and queued.at > asked
    later = [w for w in flood if started(w) > queued.at]
    assert later and all(started(other) < started(w) for w in later), \
        [other.log(), *map(Watch.log, later)]
    # The flood's waiting builds were told they moved back when the unrelated launch went ahead.
    assert any(b > a for p in map(positions, later) for a, b in zip(p, p[1:]))
