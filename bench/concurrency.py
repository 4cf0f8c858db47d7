"""Concurrency on one machine: a crowd asking for one unbuilt ref, then a crowd launching a built one.

1. N concurrent requests (default 50) for one unbuilt ref: builds counted from the registry's own
   log (manifest pushes), ready count, median and max time to ready.
2. M simultaneous launches (default 100) of a built repository: ready count, median, p90, max
   (mybinder.org's 2018 load test of 198 launches: median 138 s, max 573 s).
Throughout, /versions is sampled every 50 ms: its p99 shows whether anything blocks the service.

Usage: .venv/bin/python bench/concurrency.py [--same-ref 50] [--launches 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from urllib.parse import quote

from common import bench_stack, make_repo, summary

from tests.production.watch import manifest_pushes, remove_users, watch


async def sample_versions(base: str, stop: asyncio.Event, out: list[float]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                await client.get(f"{base}/versions")
                out.append(time.perf_counter() - t)
            except httpx.HTTPError:
                out.append(float("inf"))
            await asyncio.sleep(0.05)


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


async def crowd(base: str, url: str, n: int) -> tuple[list[float], list[str], list]:
    spec = f"{quote(url, safe='')}/main"
    start = time.perf_counter()

    async def one():
        w = await watch(base, "git", spec)
        return time.perf_counter() - start, w

    results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    times, failures, watches = [], [], []
    for r in results:
        if isinstance(r, BaseException):
            failures.append(f"{type(r).__name__}: {r}")
            continue
        took, w = r
        watches.append(w)
        if w.last.phase == "ready":
            times.append(took)
        else:
            failures.append(w.last.message[:200])
    return times, failures, watches


def report_failures(failures: list[str]) -> None:
    counts: dict[str, int] = {}
    for f in failures:
        counts[f] = counts.get(f, 0) + 1
    for message, count in sorted(counts.items(), key=lambda x: -x[1])[:5]:
        print(f"    {count} x {message}")


async def main(same_ref: int, launches: int) -> None:
    overrides = dict(max_servers=1000, max_servers_per_repo=1000, server_mem_limit="256M",
                     hub_start_timeout=1200, hub_http_timeout=1200, launch_timeout=1800,
                     hub_slow_spawn_timeout=10, build_slots=2)
    with bench_stack(**overrides) as (settings, git):
        base = settings.web_url
        latencies: list[float] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_versions(base, stop, latencies))

        # 1. One unbuilt ref, requested by a crowd at once.
        url = make_repo(git, settings, "crowd", "RUN echo built-once && sleep 2")
        times, failures, watches = await crowd(base, url, same_ref)
        images = {w.last.data()["image"] for w in watches if w.last.phase == "ready"}
        builds = sum(manifest_pushes(settings, image) for image in images)
        print(f"{same_ref} concurrent requests for one unbuilt ref:")
        print(f"  builds (registry manifest pushes): {builds}")
        print(f"  ready: {len(times)}/{same_ref}")
        if times:
            print(f"  time to ready: {summary(times)}")
        report_failures(failures)
        lat1 = list(latencies)
        await remove_users(settings, url)

        # 2. A built (and already pulled) repository launched by a crowd at once.
        built = make_repo(git, settings, "built")
        warm, fail_warm, _ = await crowd(base, built, 1)
        assert warm, fail_warm
        await remove_users(settings, built)
        mark = len(latencies)
        times, failures, _ = await crowd(base, built, launches)
        print(f"{launches} simultaneous launches of a built repository:")
        print(f"  ready: {len(times)}/{launches}")
        if times:
            print(f"  time to ready: {summary(times)}")
            print("  (mybinder.org 2018, 198 launches: median 138 s, max 573 s)")
        report_failures(failures)
        stop.set()
        await sampler
        lat2 = latencies[mark:]
        for name, values in (("during the same-ref crowd", lat1), ("during the launch crowd", lat2),
                             ("overall", latencies)):
            finite = [v for v in values if v != float("inf")]
            print(f"/versions {name}: n={len(values)} errors={len(values) - len(finite)} "
                  f"median={1000 * statistics.median(finite):.1f} ms "
                  f"p99={1000 * p(finite, 0.99):.1f} ms max={1000 * max(finite):.1f} ms")
        await remove_users(settings, built)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--same-ref", type=int, default=50)
    parser.add_argument("--launches", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(main(args.same_ref, args.launches))
