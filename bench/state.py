"""The state store's cost and what it buys: cached launches with the embedded SQLite store vs
Redis (same run, interleaved), and the time from a process's death (kill -9) to its stream
resuming on another process, per store.

Two `bindery serve` processes per store run against one bench stack (as replicas do).
Usage: .venv/bin/python bench/state.py [--runs 7] [--kills 3]   (0: only the store operations)
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from common import bench_stack, cleanup, make_repo, summary

from bindery import datadir
from bindery.event_stream import amessages
from bindery.events import Event
from bindery.launches.hub_api import Hub
from tests.state.redisserver import redis_server
from tests.test_takeover import STALE, Replica


async def cached_launch(replica: Replica, url: str) -> tuple[float, float, str]:
    """(seconds to ready, seconds to first event, hub user) of one launch through `replica`."""
    build = f"{replica.url}/build/git/{quote(url, safe='')}/main"
    start = time.perf_counter()
    first = None
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=300)) as client:
        async with client.stream("GET", build) as response:
            async for message in amessages(response.aiter_lines()):
                first = first or time.perf_counter() - start
                event = Event.model_validate_json(message.data)
                if event.terminal:
                    assert event.phase == "ready", event.message
                    return time.perf_counter() - start, first, event.data()["user"]
    raise RuntimeError("stream ended without ready")


async def kill_and_resume(victim: Replica, heir: Replica, url: str) -> tuple[float, float, str]:
    """Kill -9 `victim` once its launch has a hub user; (seconds from the kill to the first
    event from `heir`, to ready, ready user)."""
    path = f"/build/git/{quote(url, safe='')}/main"
    last_id = ""
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=300)) as client:
        async with client.stream("GET", victim.url + path) as response:
            async for message in amessages(response.aiter_lines()):
                last_id = message.id or last_id
                if "Launching server" in message.data:
                    break
        victim.proc.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        victim.proc.wait(10)
        first = None
        async with client.stream("GET", heir.url + path,
                                 headers={"Last-Event-ID": last_id}) as response:
            async for message in amessages(response.aiter_lines()):
                first = first or time.perf_counter() - killed
                event = Event.model_validate_json(message.data)
                if event.terminal:
                    assert event.phase == "ready", event.message
                    return first, time.perf_counter() - killed, event.data()["user"]
    raise RuntimeError("resumed stream ended without ready")


async def store_ops(store, n: int = 300) -> dict[str, float]:
    """Median milliseconds of the operations one launch's events and quota cost."""
    sid = secrets.token_hex(4)
    timings: dict[str, list[float]] = {"append": [], "read after": [], "atomic update": []}
    for i in range(n):
        for name, op in (("append", lambda: store.append(sid, '{"phase":"launching"}')),
                         ("read after", lambda: store.events(sid, i - 1)),
                         ("atomic update", lambda: store.take_token(sid, 10**6, 60.0, time.time()))):
            start = time.perf_counter()
            await op()
            timings[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in timings.items()}


async def compare_ops(folder: Path, redis_url: str) -> None:
    from bindery.state.redis_store import RedisStore
    from bindery.state.sqlite_store import SQLiteStore

    stores = {"sqlite": SQLiteStore(folder / "ops.sqlite"), "redis": RedisStore(redis_url)}
    for name, store in stores.items():
        ops = await store_ops(store)
        await store.aclose()
        print(f"{name:>6} store op medians: " + "  ".join(f"{k} {v:.2f} ms" for k, v in ops.items()))


async def main(runs: int, kills: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bindery-bench-ops-") as tmp:
        async with redis_server(Path(tmp)) as redis_url:
            await compare_ops(Path(tmp), redis_url)
    if runs < 1 or kills < 1:
        return
    with bench_stack(hub_slow_spawn_timeout=10, max_servers=1000, max_servers_per_repo=1000) \
            as (settings, git), tempfile.TemporaryDirectory(prefix="bindery-bench-state-") as tmp:
        async with redis_server(Path(tmp)) as redis_url:
            await measure(settings, git, Path(tmp), redis_url, runs, kills)


async def measure(settings, git, folder: Path, redis_url: str, runs: int, kills: int) -> None:
    stores = {"sqlite": {}, "redis": {"state_url": redis_url}}
    pairs = {name: [Replica(settings, folder, f"{name}{i}", **extra) for i in range(2)]
             for name, extra in stores.items()}
    started = [r for pair in pairs.values() for r in pair]
    try:
        for replica in started:
            await replica.ready()
        url = make_repo(git, settings, f"bench-state-{secrets.token_hex(3)}")
        hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
        users: list[str] = []
        users.append((await cached_launch(pairs["sqlite"][0], url))[2])  # build + pull once
        totals: dict[str, list[float]] = {name: [] for name in stores}
        firsts: dict[str, list[float]] = {name: [] for name in stores}
        for _ in range(runs):  # interleaved, so machine noise hits both stores alike
            for name in stores:
                total, first, user = await cached_launch(pairs[name][0], url)
                totals[name].append(total)
                firsts[name].append(first)
                users.append(user)
            await cleanup(hub, users)
        resumed: dict[str, list[float]] = {name: [] for name in stores}
        readied: dict[str, list[float]] = {name: [] for name in stores}
        for _ in range(kills):
            for name in stores:
                victim, heir = pairs[name]
                first, ready, user = await kill_and_resume(victim, heir, url)
                resumed[name].append(first)
                readied[name].append(ready)
                users.append(user)
                replacement = Replica(settings, folder, f"{name}-r", **stores[name])
                started.append(replacement)
                await replacement.ready()
                pairs[name] = [heir, replacement]
            await cleanup(hub, users)
        await hub.aclose()
    finally:
        for replica in started:
            replica.stop()
    for name in stores:
        print(f"{name:>6} cached launch to ready: {summary(totals[name])}")
        print(f"{name:>6} first event:            {summary(firsts[name])}")
    ms, mr = statistics.median(totals["sqlite"]), statistics.median(totals["redis"])
    print(f"median redis - sqlite: {1000 * (mr - ms):+.0f} ms  ratio redis/sqlite: {mr / ms:.3f}")
    for name in stores:
        print(f"{name:>6} kill -9 -> first event on another process: {summary(resumed[name])} "
              f"(stale bound {STALE} s)")
        print(f"{name:>6} kill -9 -> ready on another process:       {summary(readied[name])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.kills))
