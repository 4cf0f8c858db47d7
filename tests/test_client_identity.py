"""Who is asking, through the real uvicorn service and the real deploy front.

Two `bindery serve` processes on the session stack's hub and registry (as deployed: the settings
reach them as BINDERY_* variables): `direct`, with no trusted proxies, and `fronted`, which trusts
only 127.0.0.1, with the deploy front before it. Clients bind their own loopback addresses
(127.0.0.x) so that each is a different client for real.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bindery.event_stream import amessages
from bindery.events import Event
from bindery.settings import Settings
from bindery.stack.web_service import settings_env
from tests.conftest import free_port
from tests.production.own_stack import wait_for
from tests.streams import git_spec
from tests.test_hostile import final_event

RATE = 3  # launches per minute per client on both services


class Service:
    def __init__(self, url: str, log: Path, settings: Settings) -> None:
        self.url, self.log, self.settings = url, log, settings


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"{url}/versions")).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def services(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    tmp = tmp_path_factory.mktemp("identity")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    common: dict[str, Any] = {"rate_limit_per_minute": RATE, "max_open_launches_per_client": 2,
                              "banned_specs": ["^gh/evil-org/"]}
    procs, found = [], {}
    try:
        for name, extra in (("direct", {}), ("fronted", {"trusted_proxies": ["127.0.0.1/32"]})):
            settings = stack.model_copy(update={**common, **extra, "port": free_port()})
            log = tmp / f"{name}.log"
            procs.append(start([sys.executable, "-m", "bindery", "serve"],
                               {**base_env, **settings_env(settings)}, log))
            found[name] = Service(f"http://127.0.0.1:{settings.service.port}", log, settings)
        target, front_port = tmp / "front.target", free_port()
        target.write_text(f"{found['fronted'].settings.service.port}\n")
        procs.append(start([sys.executable, "-m", "bindery.deploy.front", "127.0.0.1", str(front_port),
                            str(target)], base_env, tmp / "front.log"))
        found["front"] = Service(f"http://127.0.0.1:{front_port}", tmp / "front.log", found["fronted"].settings)
        for service in found.values():
            asyncio.run(wait_for(lambda s=service: answers(s.url), 60, f"{service.url} answers"))
        yield found
    finally:
        for proc in procs:
            stop(proc)


async def launch(url: str, provider: str, spec: str, source: str = "127.0.0.1",
                 headers: dict[str, str] | None = None, query: str = "") -> Event:
    """The last event of one launch, asked for from the loopback address `source`."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60),
                                 headers=headers or {}) as client:
        status, event = await final_event(client, f"{url}/build/{provider}/{spec}{query}")
    assert status == 200 and event is not None
    return event


async def first_event(response: httpx.Response) -> Event:
    async for message in amessages(response.aiter_lines()):
        return Event.model_validate_json(message.data)
    raise AssertionError("the stream ended without an event")


def missing_repo() -> tuple[str, str]:
    """A spec that is admitted and then fails fast (404 from the test git server)."""
    return "gh", f"org/missing-{uuid.uuid4().hex[:8]}/main"


def rate_limited(event: Event) -> bool:
    return event.data().get("status_code") == 429 and "Too many launches" in event.message


async def test_spoofed_forwarded_for_does_not_escape_the_rate_limit(services):
    url = services["direct"].url
    events = [await launch(url, *missing_repo(), headers={"X-Forwarded-For": f"203.0.113.{i}"})
              for i in range(RATE + 2)]
    assert [rate_limited(e) for e in events] == [False] * RATE + [True, True]


async def test_behind_the_front_clients_are_told_apart_and_cannot_spoof(services):
    url = services["front"].url
    greedy = [await launch(url, *missing_repo(), source="127.0.0.3",
                           headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": "203.0.113.99"})
              for i in range(RATE + 1)]
    assert [rate_limited(e) for e in greedy] == [False] * RATE + [True]
    other = await launch(url, *missing_repo(), source="127.0.0.4")
    assert not rate_limited(other) and other.data().get("status_code") == 404


async def test_ipv6_clients_are_keyed_by_their_64(services):
    """Addresses of one /64 are one client (a host gets a whole /64 to pick addresses from);
    another /64 is another client. Through the trusted proxy, as IPv6 clients arrive here."""
    url = services["fronted"].url
    net = f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"  # a /64 of this test's own
    same = [await launch(url, *missing_repo(), headers={"X-Forwarded-For": f"{net}::{i + 1:x}"})
            for i in range(RATE + 1)]
    assert [rate_limited(e) for e in same] == [False] * RATE + [True]
    neighbour = f"{net[:-4]}{(int(net[-4:], 16) ^ 1):04x}::1"  # the next /64: someone else
    other = await launch(url, *missing_repo(), headers={"X-Forwarded-For": neighbour})
    assert not rate_limited(other) and other.data().get("status_code") == 404


async def test_a_crowd_of_sessions_from_one_client_is_capped(services):
    """Launches that stay open (a git server that never answers) count against the client's cap."""
    url = services["direct"].url
    held: list[asyncio.StreamWriter] = []

    async def tarpit(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(tarpit, "127.0.0.1", 0)
    slow = git_spec(f"git://127.0.0.1:{server.sockets[0].getsockname()[1]}/org/slow", "main")
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.5")
    try:
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60)) as client:
            # Two refs: requests for one ref share a single resolution (the ref cache).
            other_ref = slow.rsplit("/", 1)[0] + "/dev"
            async with client.stream("GET", f"{url}/build/git/{slow}") as first, \
                    client.stream("GET", f"{url}/build/git/{other_ref}") as second:
                for stream in (first, second):
                    assert (await first_event(stream)).phase == "fetching"
                await wait_for(lambda: len(held) >= 2, 30, "both launches reach the git server")
                third = await launch(url, "git", slow, source="127.0.0.5")
                assert third.phase == "failed" and third.data()["status_code"] == 429
                assert "2 launches under way" in third.message
                # someone else is not affected
                assert not rate_limited(await launch(url, *missing_repo(), source="127.0.0.6"))
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_the_cap_holds_across_processes(services):
    """Two processes of one service (one store): one launch held open on each from the same
    address, and a third on either is refused, as a balancer spreading launches would meet it."""
    held: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    slow = git_spec(f"git://127.0.0.1:{server.sockets[0].getsockname()[1]}/org/spread", "main")
    other_ref = slow.rsplit("/", 1)[0] + "/dev"
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.8")
    direct, fronted = services["direct"].url, services["fronted"].url  # peer 127.0.0.8: not a proxy
    try:
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60)) as client:
            async with client.stream("GET", f"{direct}/build/git/{slow}") as first, \
                    client.stream("GET", f"{fronted}/build/git/{other_ref}") as second:
                for stream in (first, second):
                    assert (await first_event(stream)).phase == "fetching"
                await wait_for(lambda: len(held) >= 2, 30, "both launches reach the git server")
                for url in (direct, fronted):
                    third = await launch(url, "git", slow, source="127.0.0.8")
                    assert third.phase == "failed" and third.data()["status_code"] == 429, third
                    assert "2 launches under way" in third.message
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_the_front_streams_events_as_they_happen(services):
    """A launch that is still resolving (its git server never answers) shows its first event
    through the front: nothing is held back until the stream ends."""
    held: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    slow = git_spec(f"git://127.0.0.1:{server.sockets[0].getsockname()[1]}/org/slow", "main")
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.13")
    try:
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30)) as client:
            async with client.stream("GET", f"{services['front'].url}/build/git/{slow}") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert (await first_event(stream)).phase == "fetching"
                await wait_for(lambda: held, 30, "the launch reaches the git server")
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.mark.parametrize("provider,spec", [
    ("gh", "EVIL-org/x/main"), ("gh", "evil-org/x.git/main"), ("gh", "Evil-Org/X/main"),
])
async def test_bans_cannot_be_dodged_on_the_real_service(services, provider, spec):
    event = await launch(services["direct"].url, provider, spec, source="127.0.0.7")
    assert event.data()["status_code"] == 403 and "disabled" in event.message


async def test_ban_catches_the_same_repository_through_the_git_provider(services, stack):
    spec = git_spec(f"{stack.providers.github_url}/Evil-Org/X.git/", "main")
    event = await launch(services["direct"].url, "git", spec, source="127.0.0.7")
    assert event.data()["status_code"] == 403 and "disabled" in event.message


async def test_tokens_never_reach_the_log(services):
    secret = f"SECRET{uuid.uuid4().hex}"
    url = services["direct"].url
    await launch(url, *missing_repo(), source="127.0.0.8", query=f"?build_token={secret}.x&token={secret}")
    async with httpx.AsyncClient(timeout=10) as client:
        await client.get(f"{url}/v2/gh/org/repo/main", params={"token": secret, "build_token": secret})
    log = services["direct"].log

    def logged() -> bool:
        return "/build/gh/org/missing-" in log.read_text() and "/v2/gh/org/repo/main" in log.read_text()

    await wait_for(logged, 10, "the requests are in the access log")
    text = log.read_text()
    assert secret not in text and "build_token=[redacted]" in text
