"""What homes cost on the launch path, each beside its limit in one run:

- a cached launch with a home (the default: the volume made, the repository's files merged in, then
  mounted) vs the same launch through a second web service of the same stack with home_resume off
  (no home), interleaved;
- a relaunch through a resume link (its server stopped first, as the culler does: the same home
  comes back on a new server, merged again) vs a fresh launch with a new home, interleaved.

Usage: .venv/bin/python bench/homes.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from common import bench_stack, cleanup, summary
from figures import Figure, table
from first_start import timed_launch

from bindery import datadir
from bindery import stack as embedded
from bindery.event_stream import amessages
from bindery.events import Event
from bindery.launches.hub_api import Hub
from bindery.settings import Settings
from bindery.stack import process, web_service
from bindery.datadir import StackPaths
from tests.conftest import free_port

STACK_OVERRIDES: dict[str, object] = {"max_servers": 1000, "max_servers_per_repo": 1000}
HOME_TARGET = 1.5  # a launch with a home <= 1.5 x one without
RESUME_TARGET = 1.2  # a relaunch through a resume link <= 1.2 x a fresh launch with a home
RUNS, QUICK_RUNS = 5, 2
NO_HOME = "web-nohome"
FILES = {f"notebooks/n{i}.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, '
         '"nbformat_minor": 5}\n' for i in range(20)}


async def timed_resume(resume_url: str, client: httpx.AsyncClient) -> tuple[float, dict]:
    start = time.perf_counter()
    async with client.stream("GET", resume_url.replace("/v2/", "/build/")) as response:
        async for message in amessages(response.aiter_lines()):
            event = Event.model_validate_json(message.data)
            if event.terminal:
                assert event.phase == "ready", event.message
                return time.perf_counter() - start, event.data()
    raise RuntimeError("stream ended without ready")


async def measure(settings: Settings, nohome: Settings, url: str, runs: int) -> dict[str, list[float]]:
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 30)
    out: dict[str, list[float]] = {"home": [], "nohome": [], "resume": []}
    users: list[str] = []
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=600)) as client:
            _, warm = await timed_launch(settings, url, client)  # builds and pulls the image
            users.append(warm["user"])
            await cleanup(hub, users)
            for _ in range(runs):
                seconds, ready = await timed_launch(settings, url, client)
                out["home"].append(seconds)
                users.append(ready["user"])
                seconds, plain = await timed_launch(nohome, url, client)
                assert "resume_url" not in plain
                out["nohome"].append(seconds)
                users.append(plain["user"])
                await cleanup(hub, users)  # the home's server stops, as the culler stops it
                seconds, again = await timed_resume(ready["resume_url"], client)
                out["resume"].append(seconds)
                users.append(again["user"])
                await cleanup(hub, users)
    finally:
        await cleanup(hub, users)
        await hub.aclose()
    return out


async def main(runs: int) -> None:
    with bench_stack(**STACK_OVERRIDES) as (settings, git):
        base = embedded.status(settings)["base_image"]
        _, url = git.create("homes", {"Dockerfile": f"FROM {base}\nCOPY --chown=1000:100 . "
                                      "/home/jovyan/\n", **FILES})
        # A second web service of the same stack (same hub, registry, state), without homes.
        nohome = settings.model_copy(update={"port": free_port(), "home_resume": False})
        web_service.start(nohome, name=NO_HOME, log=lambda line: None)
        try:
            m = await measure(settings, nohome, url, runs)
        finally:
            process.stop(StackPaths.of(settings), NO_HOME)
    for key, values in m.items():
        print(f"{key}: {summary(values)}")
    med = {k: statistics.median(v) for k, v in m.items()}
    print(table([
        Figure("cached launch with a home (median)", med["home"], med["nohome"], HOME_TARGET,
               note=f"limit: the same launch without a home, interleaved; n={runs}"),
        Figure("relaunch through a resume link, server stopped first (median)", med["resume"],
               med["home"], RESUME_TARGET,
               note=f"limit: a fresh launch with a new home, interleaved; n={runs}"),
        Figure("cost of a home on the launch path (median)", med["home"] - med["nohome"],
               note="launch with a home minus launch without"),
    ]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(QUICK_RUNS if args.quick else args.runs))
