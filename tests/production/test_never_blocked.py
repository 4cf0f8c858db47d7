"""Never blocked (issue 3, point 9): while launches and builds run, the service's event loop stays
free. The service runs with asyncio's debug mode, which reports every callback that holds the loop
for longer than 0.1 s; there must be none, and /versions keeps answering quickly."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from tests.production.watch import dumps, remove_users, watch
from tests.streams import git_spec

SLOW_CALLBACK = re.compile(r"Executing .* took (\d+\.\d+) seconds")


async def sample_versions(base: str, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            t = time.perf_counter()
            response = await client.get(f"{base}/versions")
            latencies.append(time.perf_counter() - t)
            assert response.status_code == 200
            await asyncio.sleep(0.02)
    return latencies


async def test_loop_never_blocked_while_ten_launches_and_builds_run(service_with, git_repo_factory):
    service = service_with(env={"PYTHONASYNCIODEBUG": "1"}, build_slots=2)
    built = git_repo_factory("loop-built")[1]
    fresh = [git_repo_factory(f"loop-fresh{i}", "RUN echo building")[1] for i in range(5)]
    try:
        warm = await asyncio.wait_for(watch(service.url, "git", git_spec(built, "main")), 300)
        assert warm.last.phase == "ready", dumps(warm)
        mark = len(service.log_text())
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_versions(service.url, stop))
        targets = [built] * 5 + fresh  # 5 launches of a built image, 5 builds then launches
        async with asyncio.timeout(300):
            watches = await asyncio.gather(*(watch(service.url, "git", git_spec(u, "main"))
                                             for u in targets))
        stop.set()
        latencies = sorted(await sampler)
        for w in watches:
            assert w.last.phase == "ready", dumps(w)
        slow = [line for line in service.log_text()[mark:].splitlines() if SLOW_CALLBACK.search(line)]
        assert slow == [], slow
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        assert len(latencies) > 50
        # The bench reports the real figure (target 50 ms); here a generous bound for a shared
        # 2-core machine running 10 Jupyter servers' start-ups, under asyncio's debug mode.
        assert p99 < 0.25, f"/versions p99 {p99 * 1000:.0f} ms"
    finally:
        for u in {built, *fresh}:
            await remove_users(service.settings, u)
