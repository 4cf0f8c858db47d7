"""Cached launch through bindery's event stream vs the same image started straight on the run engine
until Jupyter answers (the limit, issue 11 point 2), and vs the raw hub API, interleaved in one run.

Prints the medians, bindery's time to first event, and the figures (bench/figures.py).
Usage: .venv/bin/python bench/launch.py [--runs 7] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from urllib.parse import quote

import httpx
from common import bench_stack, cleanup, make_repo, summary
from figures import Figure, table
from straight import launched_cpu_seconds, start_straight

from bindery import datadir
from bindery.launches.hub_api import Hub, HubError
from bindery.web.commands import stream_events
from bindery.settings import Settings
from tests.gitserver import GitServer

STACK_OVERRIDES: dict[str, object] = {"max_servers": 1000, "max_servers_per_repo": 1000}
TARGET = 1.25  # request -> ready <= 1.25 x the (trimmed) straight start
RUNS, QUICK_RUNS = 9, 3


async def via_bindery(settings: Settings, url: str, client: httpx.AsyncClient
                      ) -> tuple[float, float, dict]:
    # The client exists before the clock starts, as a browser's does (and as the hub client and
    # the straight start's engine client do).
    start = time.perf_counter()
    first = None
    async for event in stream_events(settings, "git", f"{quote(url, safe='')}/main", client):
        if first is None:
            first = time.perf_counter() - start
        if event.terminal:
            assert event.phase == "ready", event.message
            return time.perf_counter() - start, first, event.data()
    raise RuntimeError("stream ended without ready")


async def via_hub(hub: Hub, image: str) -> tuple[float, str]:
    name = f"bench-{secrets.token_hex(4)}"
    start = time.perf_counter()
    await hub.create_user(name)
    post = asyncio.ensure_future(hub.start_server(name, {"image": image}, timeout=300))
    while True:  # follow progress to ready, as a correct client must
        try:
            async for event in hub.progress(name):
                if event.get("ready"):
                    await post
                    return time.perf_counter() - start, name
                if event.get("failed"):
                    raise RuntimeError(event)
        except HubError as exc:  # 400/404 before the spawn registers: ask again
            if exc.status_code not in (400, 404):
                raise
            await asyncio.wait({post}, timeout=0.05)


async def measure(settings: Settings, git: GitServer, runs: int) -> dict[str, list[float]]:
    url = make_repo(git, settings, f"bench-launch-{secrets.token_hex(3)}")
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
    client = httpx.AsyncClient()
    try:
        # Build and pull once, so every path starts a cached image.
        _, _, ready = await via_bindery(settings, url, client)
        image = ready["image"]
        await cleanup(hub, [ready["user"]])
        out: dict[str, list[float]] = {"bindery": [], "first": [], "hub": [], "straight": [],
                                       "cpu": [], "launched_cpu": []}
        for _ in range(runs):  # interleaved so machine noise hits every path alike
            plain = await asyncio.to_thread(start_straight, settings, image)
            out["straight"].append(plain.seconds)
            out["cpu"].append(plain.cpu_seconds)
            total, first, ready = await via_bindery(settings, url, client)
            out["bindery"].append(total)
            out["first"].append(first)
            out["launched_cpu"].append(
                await asyncio.to_thread(launched_cpu_seconds, settings, ready["user"]))
            await cleanup(hub, [ready["user"]])
            total, name = await via_hub(hub, image)
            out["hub"].append(total)
            await cleanup(hub, [name])
        return out
    finally:
        await client.aclose()
        await hub.aclose()


def to_figures(m: dict[str, list[float]]) -> list[Figure]:
    runs = len(m["bindery"])
    straight = statistics.median(m["straight"])
    return [
        Figure("cached launch, request -> ready (median)", statistics.median(m["bindery"]),
               straight, TARGET, note=f"{runs} launches; limit: the image started straight on the "
               f"run engine until Jupyter answers ({statistics.median(m['cpu']):.2f} CPU-s)"),
        Figure("cached launch, raw hub API -> ready (median)", statistics.median(m["hub"]),
               straight, note="create user + start + progress to ready, no bindery"),
        Figure("first event (median)", 1000 * statistics.median(m["first"]), unit="ms",
               note=f"{runs} launches"),
        Figure("CPU-seconds of a launched server until ready (median)",
               statistics.median(m["launched_cpu"]), statistics.median(m["cpu"]), unit="CPU-s",
               note="limit: CPU-seconds of the straight start (its cgroup)"),
    ]


async def figures(settings: Settings, git: GitServer, quick: bool) -> list[Figure]:
    return to_figures(await measure(settings, git, QUICK_RUNS if quick else RUNS))


async def main(runs: int) -> None:
    with bench_stack(**STACK_OVERRIDES) as (settings, git):
        m = await measure(settings, git, runs)
    for name, label in (("bindery", "bindery event stream to ready"),
                        ("hub", "raw hub API to ready"),
                        ("straight", "straight start until Jupyter answers"),
                        ("first", "bindery first event"), ("cpu", "CPU-seconds of a straight start"),
                        ("launched_cpu", "CPU-seconds of a launched server")):
        print(f"{label:40s} {summary(m[name])}")
    print(table(to_figures(m)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs")
    args = parser.parse_args()
    asyncio.run(main(QUICK_RUNS if args.quick else args.runs))
