"""Slow spawns (issue 3, point 4 and its test list): servers whose start is delayed anywhere up to
the hub's start timeout all reach `ready` with URLs that answer at once (never a 403); a server
slower than the timeout ends in a clear `failed` with its user and server removed."""

from __future__ import annotations

import asyncio

import pytest

from tests.production.conftest import start_service
from tests.production.watch import (dumps, open_with_token, remove_users, repo_prefix,
                                    server_containers, users_of, wait_for, watch)
from tests.streams import git_spec

START_TIMEOUT = 40  # the second hub's start and http timeouts (s)
DELAYS = (0, 3, 12, 28)  # all > slow_spawn_timeout (1 s) but 0: the hub answers 202 and goes on
TOO_SLOW = 60


def slow_start(delay: int) -> str:
    """Dockerfile lines: the server process starts `delay` seconds after its container."""
    return (f"RUN printf '#!/bin/sh\\nsleep {delay}\\nexec \"$@\"\\n' > /home/jovyan/slow-start"
            " && chmod +x /home/jovyan/slow-start\n"
            'ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/home/jovyan/slow-start"]')


@pytest.fixture(scope="module")
def slow_hub(second_hub):
    return second_hub(hub_start_timeout=START_TIMEOUT, hub_http_timeout=START_TIMEOUT,
                      hub_slow_spawn_timeout=1)


async def test_spawn_delays_up_to_the_start_timeout_all_work_and_beyond_it_fail_cleanly(
        slow_hub, git_repo_factory, tmp_path):
    service = start_service(slow_hub, tmp_path, build_slots=3)
    repos = {d: git_repo_factory(f"slow{d}", slow_start(d))[1] for d in (*DELAYS, TOO_SLOW)}
    try:
        async with asyncio.timeout(300):
            watches = await asyncio.gather(*(
                watch(service.url, "git", git_spec(url, "main")) for url in repos.values()))
        by_delay = dict(zip(repos, watches))
        for delay in DELAYS:
            w = by_delay[delay]
            assert w.last.phase == "ready", (delay, dumps(w))
            # Slow or not, the first request with the token is answered: zero 403s.
            assert await open_with_token(w.last) == 200, delay
            if delay >= 3:  # held longer than slow_spawn_timeout: the hub answered 202
                assert w.last.data()["hub_status"] == 202, delay

        slow = by_delay[TOO_SLOW]
        assert slow.last.phase == "failed", dumps(slow)
        message = slow.last.message
        assert "failed to start" in message or "did not start" in message, message
        assert "ready" not in slow.phases()
        url = repos[TOO_SLOW]
        # Its temporary user and its container are gone (removal is asynchronous: bounded wait).
        await wait_for(_no_users(slow_hub, url), 60, "the failed launch's user removed")
        await wait_for(lambda: not server_containers(slow_hub, repo_prefix(url)), 60,
                         "the failed launch's container removed")
    finally:
        for url in repos.values():
            await remove_users(slow_hub, url)
        service.stop()


def _no_users(settings, url):
    async def check() -> bool:
        return await users_of(settings, url) == []
    return check
