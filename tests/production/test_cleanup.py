"""Abandoned launches clean up (issue 3, point 4): a watcher that leaves mid-launch with nobody else
watching loses its server and user after the grace period; one that reconnects in time keeps it."""

from __future__ import annotations

import asyncio

from tests.production.test_slow_spawns import slow_start
from tests.production.watch import (dumps, open_with_token, remove_users, repo_prefix,
                                    server_containers, users_of, wait_for, watch)
from tests.streams import git_spec

GRACE = 2.0
START_DELAY = 12  # the server answers this long after its container starts: time to leave


def spawn_pending(seen) -> bool:
    return seen.event.data().get("hub_status") == 202


async def test_disconnect_mid_launch_removes_server_and_user_reconnect_keeps_it(
        service_with, git_repo_factory):
    service = service_with(abandon_grace_seconds=GRACE)
    settings = service.settings
    _, url = git_repo_factory("abandoned", slow_start(START_DELAY))
    spec = git_spec(url, "main")
    try:
        # 1. Leave once the hub holds a pending spawn; nobody else watches.
        left = await asyncio.wait_for(watch(service.url, "git", spec, stop_when=spawn_pending), 300)
        assert left.last.data().get("hub_status") == 202, dumps(left)
        users = await users_of(settings, url)
        assert len(users) == 1 and users[0]["servers"], users  # a real server was on its way
        # After the grace period the launch is abandoned: server and user removed, no container.
        await wait_for(lambda: _none(users_of(settings, url)), GRACE + 60,
                         "the abandoned launch's user removed")
        await wait_for(lambda: not server_containers(settings, repo_prefix(url)), 60,
                         "the abandoned launch's container removed")
        assert 'bindery_launch_cleanups_total{outcome="failed"} 1.0' in await _metrics(service.url)

        # 2. Leave the same way, but come back at once with Last-Event-ID: the launch goes on.
        resumed = await asyncio.wait_for(watch(service.url, "git", spec, stop_when=spawn_pending),
                                         300)
        seen_before = len(resumed.events)
        await asyncio.wait_for(watch(service.url, "git", spec, into=resumed,
                                     last_event_id=resumed.last_id), 300)
        assert resumed.last.phase == "ready", dumps(resumed)
        # The server came up START_DELAY s after the spawn began, far beyond the grace period.
        assert resumed.events[-1].at - resumed.events[seen_before - 1].at > GRACE
        ids = [s.id for s in resumed.events]
        assert len(ids) == len(set(ids)), "a resumed stream repeats no event"
        assert await open_with_token(resumed.last) == 200
        assert [u["name"] for u in await users_of(settings, url)] == [resumed.last.data()["user"]]
    finally:
        await remove_users(settings, url)
    # Afterwards: no orphaned users of this repository on the hub, no containers on the engine.
    assert await users_of(settings, url) == []
    await wait_for(lambda: not server_containers(settings, repo_prefix(url)), 60,
                     "no orphaned containers")


async def _none(users) -> bool:
    return not await users


async def _metrics(base: str) -> str:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        return (await client.get(f"{base}/metrics")).text
