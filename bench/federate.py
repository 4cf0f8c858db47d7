"""`bindery federate`'s cost on this machine: its added latency (p50/p99) and throughput on a light
request, and a cached launch through the front beside the same launch straight to the member.

One real stack (the only member, and prime), the front run as `bindery federate` in a process of its
own. Latency: sequential GETs of /versions (answered from the front's copy of the prime's) and of a
launch URL's first bytes (relayed to the member) against the member directly; throughput: concurrent
clients for a fixed time. Figures go to stdout; nothing is asserted.

    .venv/bin/python bench/federate.py [--requests 500] [--seconds 10] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import bench_stack, cleanup, make_repo  # noqa: I001 (bench/ is on the path)
from tests.conftest import free_port
from bindery import datadir
from bindery.launches.hub_api import Hub
from bindery.web.commands import stream_events


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


async def latencies(client: httpx.AsyncClient, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.get(url)
        response.raise_for_status()
        out.append(time.perf_counter() - t0)
    return out


async def first_bytes(client: httpx.AsyncClient, url: str, n: int) -> list[float]:
    """Time to the first line of a launch stream (a missing ref: the member answers at once)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with client.stream("GET", url) as response:
            async for _line in response.aiter_lines():
                break
        out.append(time.perf_counter() - t0)
    return out


async def throughput(url: str, seconds: float, clients: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            (await client.get(url)).raise_for_status()
            done += 1
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as c:
        await asyncio.gather(*(one(c) for _ in range(clients)))
    return done / seconds


async def main(args: argparse.Namespace) -> None:
    with bench_stack() as (settings, git), tempfile.TemporaryDirectory() as tmp:
        member = settings.service.web_url.rstrip("/")
        config = Path(tmp) / "federation.json"
        config.write_text(json.dumps({"hosts": {"a": {"url": member, "weight": 1, "prime": True}}}))
        port = free_port()
        front = subprocess.Popen([sys.executable, "-m", "bindery", "federate", str(config),
                                  "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/versions", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            repo = make_repo(git, settings, "bench-federate")
            spec = repo.split("/", 3)[3]  # org/name on the git server
            async with httpx.AsyncClient(timeout=30) as client:
                for name, path in (("/versions", "/versions"),
                                   ("launch stream, first line", f"/build/gh/{spec}/no-such-ref")):
                    measure = latencies if path == "/versions" else first_bytes
                    n = args.requests if path == "/versions" else max(20, args.requests // 5)
                    direct = await measure(client, member + path, n)
                    fronted = await measure(client, url + path, n)
                    added = [f - d for f, d in zip(sorted(fronted), sorted(direct))]
                    print(f"{name}: direct {quantiles(direct)}; through the front "
                          f"{quantiles(fronted)}; added p50 {statistics.median(added) * 1000:.1f} ms,"
                          f" p99 {sorted(added)[int(0.99 * (len(added) - 1))] * 1000:.1f} ms")
            for name, target in (("direct", member), ("front", url)):
                rate = await throughput(f"{target}/versions", args.seconds, args.clients)
                print(f"throughput /versions {name}: {rate:.0f} requests/s ({args.clients} clients)")
            # A cached launch (built once first) straight to the member and through the front.
            via = settings.model_copy(update={"public_url": url})
            users = []
            warm = [e async for e in stream_events(settings, "gh", f"{spec}/main")]
            users.append(warm[-1].data().get("user"))
            for name, s in (("direct", settings), ("front", via), ("direct", settings),
                            ("front", via)):
                t0 = time.perf_counter()
                events = [e async for e in stream_events(s, "gh", f"{spec}/main")]
                print(f"cached launch {name}: {time.perf_counter() - t0:.2f} s "
                      f"({events[-1].phase})")
                users.append(events[-1].data().get("user"))
            hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 10)
            await cleanup(hub, [u for u in users if u])
            await hub.aclose()
        finally:
            front.terminate()
            front.wait(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
