"""Where the time of one cached launch goes: bindery's events, the hub's log, the container's own log,
on one clock (wall time, milliseconds since the request).

Sources: the event stream as a browser reads it (receive times); the hub's log lines that name the
user (DockerSpawner's create/start, the hub's wait for the server, the proxy route, the requests the
single-user server makes back to the hub); the container's creation/start times and its log lines
with the engine's timestamps (the single-user server's own start-up).

Usage: .venv/bin/python bench/breakdown.py   (its own stack: a repository built once, then one
cached launch broken down; --launches N breaks down N launches one after another)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
from common import bench_stack, make_repo
from straight import server_container

from bindery.engine_clients import docker_client
from bindery.web.commands import stream_events
from bindery.settings import Settings
from bindery.datadir import StackPaths

SERVER_LINE = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
HUB_LINE = re.compile(r"^\[(\w) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+) ([^\]]*)\] (.*)$")


def _hub_time(stamp: str, zone: timezone | None = None) -> float:
    """A log stamp as JupyterHub/Jupyter write it: local time (the hub) or UTC (in a container)."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=zone).timestamp()


def _engine_time(stamp: str) -> float:
    stamp = stamp.rstrip("Z")
    whole, _, frac = stamp.partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + float(f"0.{frac or 0}")


def hub_lines(log: Path, offset: int, user: str) -> list[tuple[float, str]]:
    """The hub's log lines about `user` written after `offset`, with their times."""
    out = []
    with open(log, "rb") as f:
        f.seek(offset)
        for raw in f.read().decode(errors="replace").splitlines():
            match = HUB_LINE.match(raw)
            if match and user in match.group(5):
                text = match.group(5).replace(user, "<user>")
                out.append((_hub_time(match.group(2)), f"hub: {text[:150]}"))
    return out


def container_lines(settings: Settings, user: str) -> list[tuple[float, str]]:
    """Create/start times and the log of the user's container (before it is removed)."""
    client = docker_client(settings.run_socket, timeout=30)
    try:
        container = server_container(client, user)
        state = container.attrs
        out = [(_engine_time(state["Created"]), "engine: container created"),
               (_engine_time(state["State"]["StartedAt"]), "engine: container started")]
        for raw in container.logs(timestamps=True).decode(errors="replace").splitlines():
            stamp, _, text = raw.partition(" ")
            own = SERVER_LINE.match(text)  # Jupyter's own stamp has milliseconds (UTC inside)
            at = _hub_time(own.group(1), timezone.utc) if own else _engine_time(stamp)
            out.append((at, f"server: {text.replace(user, '<user>')[:150]}"))
        return out
    finally:
        client.close()


async def one_launch(settings: Settings, url: str, client: httpx.AsyncClient
                     ) -> tuple[float, list[tuple[float, str]], str]:
    log = StackPaths.of(settings).log("hub")
    offset = log.stat().st_size
    t0 = time.time()
    events: list[tuple[float, str]] = [(t0, "bindery: request")]
    ready = None
    async for event in stream_events(settings, "git", f"{quote(url, safe='')}/main", client):
        events.append((time.time(), f"bindery event {event.phase}: {event.message.strip()[:110]}"))
        if event.terminal:
            ready = event
            break
    assert ready is not None and ready.phase == "ready", ready
    user = ready.data()["user"]
    lines = events + container_lines(settings, user) + hub_lines(log, offset, user)
    return t0, sorted(lines), user


def render(t0: float, lines: list[tuple[float, str]]) -> str:
    return "\n".join(f"{1000 * (at - t0):8.0f} ms  {text}" for at, text in lines)


async def main(launches: int) -> None:
    from tests.production.watch import remove_users

    with bench_stack() as (settings, git):
        url = make_repo(git, settings, "breakdown")
        async with httpx.AsyncClient() as client:  # made before any clock starts, as a browser's
            await one_launch(settings, url, client)  # build, push, pull: later ones are cached
            await remove_users(settings, url)
            for _ in range(launches):
                t0, lines, _ = await one_launch(settings, url, client)
                print(render(t0, lines), "\n")
                await remove_users(settings, url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--launches", type=int, default=2)
    asyncio.run(main(parser.parse_args().launches))
