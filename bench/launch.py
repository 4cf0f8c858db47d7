"""Cached launch through bindery's event stream vs the same image started straight through the hub.

Prints both medians, their difference and ratio, and bindery's time to first event.
Usage: .venv/bin/python bench/launch.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from urllib.parse import quote


from common import bench_stack, make_repo, summary

from bindery.launch.hub import Hub
from bindery.launch_cli import stream_events


async def via_bindery(settings, url: str) -> tuple[float, float, dict]:
    start = time.perf_counter()
    first = None
    async for event in stream_events(settings, "git", f"{quote(url, safe='')}/main"):
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
        except Exception as exc:  # 400/404 before the spawn registers: ask again
            if getattr(exc, "status_code", None) not in (400, 404):
                raise
            await asyncio.wait({post}, timeout=0.05)


async def cleanup(hub: Hub, names: list[str]) -> None:
    for name in names:
        await hub.stop_server(name)
        for _ in range(100):
            if await hub.delete_user(name):
                break
            await asyncio.sleep(0.1)


async def main(runs: int) -> None:
    with bench_stack(hub_slow_spawn_timeout=10, max_servers=1000, max_servers_per_repo=1000) as (settings, git):
        url = make_repo(git, settings, "bench-launch")
        hub = Hub(settings.hub_api, settings.hub_token(), 30)
        # Build and pull once, so both paths start a cached image.
        _, _, ready = await via_bindery(settings, url)
        image = ready["image"]
        users = [ready["user"]]
        b_times, firsts, h_times = [], [], []
        for _ in range(runs):  # interleave so machine noise hits both paths alike
            total, first, ready = await via_bindery(settings, url)
            b_times.append(total)
            firsts.append(first)
            users.append(ready["user"])
            total, name = await via_hub(hub, image)
            h_times.append(total)
            users.append(name)
            await cleanup(hub, users)
            users.clear()
        await hub.aclose()
        mb, mh = statistics.median(b_times), statistics.median(h_times)
        print(f"bindery event stream to ready: {summary(b_times)}")
        print(f"raw hub API to ready:          {summary(h_times)}")
        print(f"bindery first event:           {summary(firsts)}")
        print(f"median overhead: {1000 * (mb - mh):+.0f} ms  ratio bindery/hub: {mb / mh:.3f}")
        print(f"median first event: {1000 * statistics.median(firsts):.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    asyncio.run(main(parser.parse_args().runs))
