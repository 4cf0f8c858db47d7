"""A pooled launch (issue 11, point 1) beside a cold cached launch, in the same run.

Pooled: a repository with a warm pool of 1 (pool_specs); each run waits (untimed) until the pool
holds a ready server, then times request -> `ready` through the event stream, and checks that the
server answers 200 with the person's token at the end (request -> 200 is reported too). Cold
cached: a repository without a pool whose image is built and pulled, launched the normal way.
Runs are interleaved so machine noise hits both alike; every launched server is removed after.

Usage: .venv/bin/python bench/pool.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from urllib.parse import quote

import httpx
from common import bench_stack, make_repo
from figures import Figure, table

from bindery.backoff import wait_until_async
from bindery import datadir
from bindery.launches.hub_api import Hub
from bindery.web.commands import stream_events
from bindery.settings import Settings
from bindery.state import open_store
from bindery.state.pool_records import PoolBook
from tests.gitserver import GitServer

POOLED = "bench-pool-warm"
STACK_OVERRIDES: dict[str, object] = {
    "pool_specs": {f"/{POOLED}-": 1},  # only this bench's repository: other benches stay cold
    "pool_check_seconds": 1,
}
FILL_WAIT = 180.0  # seconds the pool may take to refill between two runs


async def timed_launch(settings: Settings, url: str, client: httpx.AsyncClient
                       ) -> tuple[float, float, dict]:
    """(request -> ready, request -> the server answered 200 with the token, ready event), on a
    client made before the clock starts, as a browser's is."""
    start = time.perf_counter()
    async for event in stream_events(settings, "git", f"{quote(url, safe='')}/main", client):
        if event.terminal:
            if event.phase != "ready":
                raise RuntimeError(f"launch failed: {event.message}")
            ready_at = time.perf_counter() - start
            data = event.data()
            answer = await client.get(f"{data['url']}api/status", timeout=15,
                                      headers={"Authorization": f"token {data['token']}"})
            if answer.status_code != 200:
                raise RuntimeError(f"the server answered {answer.status_code} with the token")
            return ready_at, time.perf_counter() - start, data
    raise RuntimeError("the stream ended without ready")


async def pool_has_free(settings: Settings, url: str) -> None:
    store = open_store(settings)
    book = PoolBook(store)

    async def has_free() -> bool:
        for key in await book.keys():
            record = await book.get(key)
            if record and record["repo_url"] == url and any(
                    s["ready"] and s["image"] == record["image"] for s in record["servers"].values()):
                return True
        return False

    try:  # bounded wait for the refill, outside the timed part
        await wait_until_async(has_free, timeout=FILL_WAIT, interval=0.5, what="the pool refilling")
    finally:
        await store.aclose()


async def remove(settings: Settings, users: list[str]) -> None:
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
    try:
        for name in users:
            await hub.stop_server(name)
            # the hub refuses deletion while the server stops
            await wait_until_async(lambda name=name: hub.delete_user(name), timeout=20, interval=0.2,
                                   what=f"hub user {name} deleted")
    finally:
        await hub.aclose()


async def figures(settings: Settings, git: GitServer, quick: bool) -> list[Figure]:
    async with httpx.AsyncClient() as client:
        return await measure(settings, git, client, 3 if quick else 9)


async def measure(settings: Settings, git: GitServer, client: httpx.AsyncClient,
                  runs: int) -> list[Figure]:
    warm_url = make_repo(git, settings, POOLED, "RUN echo pooled")
    cold_url = make_repo(git, settings, "bench-pool-cold", "RUN echo cold")
    # Build and pull both images; the pooled repository's first launch creates its pool.
    first = [(await timed_launch(settings, u, client))[2]["user"] for u in (warm_url, cold_url)]
    await remove(settings, first)
    pooled, pooled_200, cold, misses = [], [], [], 0
    for _ in range(runs):
        await pool_has_free(settings, warm_url)
        ready, answered, data = await timed_launch(settings, warm_url, client)
        if data.get("pooled"):
            pooled.append(ready)
            pooled_200.append(answered)
        else:
            misses += 1
        cold_ready, _, cold_data = await timed_launch(settings, cold_url, client)
        cold.append(cold_ready)
        await remove(settings, [data["user"], cold_data["user"]])
    if not pooled:
        raise RuntimeError("no launch took a warm server")
    median, cold_median = statistics.median(pooled), statistics.median(cold)
    note = (f"n={len(pooled)}{f', {misses} missed the pool' if misses else ''}; "
            f"request -> 200 with the token {statistics.median(pooled_200):.3f} s; "
            f"cold cached launch {cold_median:.3f} s ({cold_median / median:.0f}x slower)")
    return [
        Figure("pooled launch, request -> ready (median)", median, None, 0.5, note=note),
        Figure("cold cached launch beside it, request -> ready (median)", cold_median,
               note=f"n={len(cold)}, same run, no pool"),
    ]


async def main(quick: bool) -> None:
    with bench_stack(**STACK_OVERRIDES) as (settings, git):
        print(table(await figures(settings, git, quick)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
