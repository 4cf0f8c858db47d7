"""What a new image's first launch and a server's own start cost, each beside its limit in one run:

- first launch of a freshly built image that is not on the run engine yet (it pulls the image's own
  layers; the service has put the base image there) vs a cached launch of the same image, interleaved;
- the base image started straight on the run engine until Jupyter answers (trimmed: as bindery builds
  it) vs the same image with the trims undone (`server_trims.py --undo`: its packages as they ship).

Usage: .venv/bin/python bench/first_start.py [--runs 5] [--quick]
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
from straight import start_straight

from bindery import datadir
from bindery import stack as embedded
from bindery.engine_clients import docker_client
from bindery.launches.hub_api import Hub
from bindery.settings import Settings
from bindery.web.commands import stream_events
from tests.gitserver import GitServer

STACK_OVERRIDES: dict[str, object] = {"max_servers": 1000, "max_servers_per_repo": 1000}
FIRST_TARGET = 1.5  # first launch <= 1.5 x a cached launch of the same image
TRIMMED_TARGET = 0.6  # trimmed straight start <= 0.6 x the untrimmed one
RUNS, QUICK_RUNS = 5, 2
OWN_LAYER_MB = 5  # the bench repository's own layer (random bytes: nothing shared with the base)
UNTRIM = "RUN python /opt/bindery/server_trims.py --undo"


async def timed_launch(settings: Settings, url: str, client: httpx.AsyncClient) -> tuple[float, dict]:
    start = time.perf_counter()
    async for event in stream_events(settings, "git", f"{quote(url, safe='')}/main", client):
        if event.terminal:
            assert event.phase == "ready", event.message
            return time.perf_counter() - start, event.data()
    raise RuntimeError("stream ended without ready")


def on_run_engine(settings: Settings, image: str) -> bool:
    client = docker_client(settings.run_socket, 60)
    try:
        return any(image in i.tags for i in client.images.list())
    finally:
        client.close()


def remove_from_run_engine(settings: Settings, image: str) -> None:
    """Remove `image` from the run engine however it got there: servers start bindery's images by
    the digest it pushed (`repo@sha256:...`), so the engine may know it by that and not its tag."""
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    client = docker_client(settings.run_socket, 60)
    try:
        found = [i for i in client.images.list() if any(
            name == image or name.split("@", 1)[0] == repository
            for name in i.tags + (i.attrs.get("RepoDigests") or []))]
        if not found:
            raise RuntimeError(f"{image} is not on the run engine: nothing to remove")
        for i in found:
            client.images.remove(i.id, force=True)
    finally:
        client.close()


async def measure(settings: Settings, git: GitServer, runs: int) -> dict[str, list[float]]:
    base = embedded.base_image_name(settings)
    url = make_repo(git, settings, f"bench-first-{secrets.token_hex(3)}",
                    f"RUN head -c {OWN_LAYER_MB}000000 /dev/urandom > /home/jovyan/data")
    untrimmed_url = make_repo(git, settings, f"bench-untrimmed-{secrets.token_hex(3)}", UNTRIM)
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
    client = httpx.AsyncClient()
    out: dict[str, list[float]] = {"first": [], "cached": [], "trimmed": [], "untrimmed": [],
                                   "trimmed_cpu": [], "untrimmed_cpu": []}
    try:
        # The service puts the base image on the run engine when it starts (warm images).
        deadline = time.monotonic() + 600
        while not await asyncio.to_thread(on_run_engine, settings, base):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} not on the run engine 600 s after the stack started")
            await asyncio.sleep(1)  # bench-side wait for the service's pull, bounded above
        # Build both once (and pull them).
        _, ready = await timed_launch(settings, url, client)
        image = ready["image"]
        await cleanup(hub, [ready["user"]])
        _, ready = await timed_launch(settings, untrimmed_url, client)
        untrimmed = ready["image"]
        await cleanup(hub, [ready["user"]])
        for _ in range(runs):  # interleaved so machine noise hits every path alike
            await asyncio.to_thread(remove_from_run_engine, settings, image)
            seconds, ready = await timed_launch(settings, url, client)
            out["first"].append(seconds)
            await cleanup(hub, [ready["user"]])
            seconds, ready = await timed_launch(settings, url, client)
            out["cached"].append(seconds)
            await cleanup(hub, [ready["user"]])
            for name, which in (("trimmed", base), ("untrimmed", untrimmed)):
                plain = await asyncio.to_thread(start_straight, settings, which, 300.0)
                out[name].append(plain.seconds)
                out[f"{name}_cpu"].append(plain.cpu_seconds)
        return out
    finally:
        await client.aclose()
        await hub.aclose()


def to_figures(m: dict[str, list[float]]) -> list[Figure]:
    runs = len(m["first"])
    med = {name: statistics.median(values) for name, values in m.items()}
    return [
        Figure("first launch, image not on the run engine (median)", med["first"], med["cached"],
               FIRST_TARGET, note=f"{runs} launches; its own {OWN_LAYER_MB} MB layer pulled; limit: "
               "a cached launch of the same image, same run"),
        Figure("straight start of the base image, trimmed (median)", med["trimmed"],
               med["untrimmed"], TRIMMED_TARGET,
               note=f"{runs} starts; {med['trimmed_cpu']:.2f} CPU-s; limit: the same image with the "
               f"trims undone ({med['untrimmed_cpu']:.2f} CPU-s)"),
        Figure("CPU-seconds of the straight start, trimmed (median)", med["trimmed_cpu"],
               med["untrimmed_cpu"], unit="CPU-s", note="limit: untrimmed, same run"),
    ]


async def figures(settings: Settings, git: GitServer, quick: bool) -> list[Figure]:
    return to_figures(await measure(settings, git, QUICK_RUNS if quick else RUNS))


async def main(runs: int) -> None:
    with bench_stack(**STACK_OVERRIDES) as (settings, git):
        m = await measure(settings, git, runs)
    for name, values in m.items():
        print(f"{name:16s} {summary(values)}")
    print(table(to_figures(m)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs")
    args = parser.parse_args()
    asyncio.run(main(QUICK_RUNS if args.quick else args.runs))
