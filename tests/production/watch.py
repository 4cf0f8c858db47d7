"""Watch launches as a browser does: event ids, receive times, disconnects and Last-Event-ID resumes.
Plus what the production tests count from outside bindery: registry pushes, hub users, containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bindery import datadir
from bindery.event_stream import amessages
from bindery.events import Event
from bindery.launches.hub_api import Hub, HubUnavailable
from bindery.launches.hub_users import PREFIX, repo_key
from bindery.settings import Settings
from bindery.stack.balancer import REPLICA_HEADER
from bindery.engine_clients import docker_client
from tests.production.own_stack import wait_for
from tests.streams import manifest_pushes  # noqa: F401 (re-exported for the production tests)


@dataclass
class Seen:
    id: str | None
    at: float  # time.monotonic() when it arrived
    event: Event

    @property
    def phase(self) -> str:
        return self.event.phase


@dataclass
class Watch:
    """One connection's events (a reconnect appends to the same Watch)."""

    events: list[Seen] = field(default_factory=list)
    served_by: list[str] = field(default_factory=list)  # X-Bindery-Replica of each connection, if any

    @property
    def last(self) -> Event:
        return self.events[-1].event

    @property
    def last_id(self) -> str | None:
        ids = [s.id for s in self.events if s.id]
        return ids[-1] if ids else None

    def phases(self) -> list[str]:
        return [s.phase for s in self.events]

    def log(self) -> str:
        return "".join(s.event.message for s in self.events)

    def first(self, pred: Callable[[Seen], bool]) -> Seen | None:
        return next((s for s in self.events if pred(s)), None)


async def watch(base_url: str, provider: str, spec: str, into: Watch | None = None,
                last_event_id: str | None = None,
                stop_when: Callable[[Seen], bool] | None = None) -> Watch:
    """Follow /build/<provider>/<spec> until a terminal event, or disconnect when `stop_when`."""
    into = into or Watch()
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    timeout = httpx.Timeout(10.0, read=120.0)
    async with httpx.AsyncClient(timeout=timeout) as client:
        async with client.stream("GET", f"{base_url.rstrip('/')}/build/{provider}/{spec}",
                                 headers=headers) as response:
            assert response.status_code == 200, response.status_code
            into.served_by.append(response.headers.get(REPLICA_HEADER, ""))
            async for message in amessages(response.aiter_lines()):
                seen = Seen(message.id, time.monotonic(), Event.model_validate_json(message.data))
                into.events.append(seen)
                if seen.event.terminal or (stop_when and stop_when(seen)):
                    return into  # leaving the `async with` closes the connection
    return into


async def open_with_token(event: Event) -> int:
    data = event.data()
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.get(f"{data['url']}api", headers={"Authorization": f"token {data['token']}"})
        return response.status_code


def repo_prefix(repo_url: str) -> str:
    return f"{PREFIX}{repo_key(repo_url)}-"


@contextlib.asynccontextmanager
async def hub_client(settings: Settings):
    """The hub's API as bindery calls it. If the hub cannot be reached, the error says why as far
    as this machine can tell (its process, its address on `lo`, its last log lines): a hub that
    vanished mid-test must be explainable from CI's output alone."""
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 15)
    try:
        yield hub
    except HubUnavailable as exc:
        if isinstance(exc.__cause__, httpx.TransportError):
            raise HubUnavailable(f"{exc}\n{hub_diagnosis(settings)}") from exc
        raise
    finally:
        await hub.aclose()


def hub_diagnosis(settings: Settings) -> str:
    """What this machine says about an embedded hub that does not answer."""
    from bindery.stack import process, server_network
    from bindery.datadir import StackPaths

    paths = StackPaths.of(settings)
    state = process.state(paths, "hub")
    try:
        address = server_network.has_address(settings)
    except Exception as exc:  # a diagnosis never hides the error it explains
        address = f"unknown ({exc})"
    return (f"hub process: {state}; address {datadir.hub_address(settings)} on lo: {address}; "
            f"last lines of {paths.log('hub')}:\n{process.log_tail(paths.log('hub'), 40)}")


async def users_of(settings: Settings, repo_url: str | None = None) -> list[dict]:
    prefix = repo_prefix(repo_url) if repo_url else PREFIX
    async with hub_client(settings) as hub:
        return [u for u in await hub.list_users() if u["name"].startswith(prefix)]


def server_containers(settings: Settings, user_prefix: str = PREFIX) -> list[str]:
    """Names of the run side's containers (running or not) of hub users with this prefix."""
    client = docker_client(settings.run_socket, 30)
    try:
        return [c.name for c in client.containers.list(all=True)
                if c.name.startswith(f"jupyter-{user_prefix}")]
    finally:
        client.close()


async def remove_users(settings: Settings, repo_url: str) -> None:
    """Stop and delete every temporary user of this repository (tests free the machine after)."""
    async with hub_client(settings) as hub:
        names = [u["name"] for u in await hub.list_users() if u["name"].startswith(repo_prefix(repo_url))]
        await asyncio.gather(*(hub.stop_server(name) for name in names))

        async def gone() -> bool:
            deleted = await asyncio.gather(*(hub.delete_user(name) for name in names))
            names[:] = [n for n, ok in zip(names, deleted) if not ok]
            return not names

        await wait_for(gone, 120 + 2 * len(names), f"users of {repo_url} deleted", interval=0.5)


def registry_log_lines(settings: Settings) -> list[str]:
    return (settings.logs_dir / "registry.log").read_text(errors="replace").splitlines()


def dumps(w: Watch) -> str:
    return json.dumps([s.event.data() for s in w.events])[-3000:]
