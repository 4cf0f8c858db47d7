"""Launches that outlive their process (issue 9, points 2 and 4), on the real session stack.

Two more `bindery serve` processes, A and B, run against the session stack's hub, registry and
state store (the embedded SQLite file in its data folder), with the same settings, as replicas
do. A stream starts on A; A dies (kill -9) or is stopped (SIGTERM); the client reconnects to B
with its Last-Event-ID and reaches `ready` on the same launch, and nothing is left on the hub.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bindery import datadir
from bindery.events import Event
from bindery.launches.hub_api import Hub
from bindery.settings import Settings
from bindery.stack.web_service import settings_env
from tests.conftest import free_port
from tests.production.own_stack import wait_for
from tests.streams import bindery_users, git_spec
from tests.test_client_identity import answers
from tests.test_resume import read_events

STALE = 3.0  # seconds of silence after which a dead process's launches are taken over


class Replica:
    """One `bindery serve` process on the session stack."""

    def __init__(self, stack: Settings, folder: Path, name: str, **overrides: object) -> None:
        self.settings = stack.model_copy(update={
            "port": free_port(), "state_stale_seconds": STALE, "state_heartbeat_seconds": 0.5,
            **overrides})
        self.url = f"http://127.0.0.1:{self.settings.service.port}"
        self.log = folder / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bindery", "serve"],
                                         env={**env, **settings_env(self.settings)}, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def ready(self) -> None:
        await wait_for(lambda: answers(self.url), 60, f"{self.url} answers")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def replicas(stack: Settings, tmp_path: Path) -> Iterator:
    started: list[Replica] = []

    async def start(name: str, **overrides: object) -> Replica:
        replica = Replica(stack, tmp_path, name, **overrides)
        started.append(replica)
        await replica.ready()
        return replica
    yield start
    for replica in started:
        replica.stop()


async def repo_users(settings: Settings, url: str) -> list[str]:
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 10)
    try:
        return sorted(u["name"] for u in bindery_users(await hub.list_users(), url))
    finally:
        await hub.aclose()


def launching_server(event: Event) -> bool:
    """The launcher has created the launch's hub user and asked for its server."""
    return event.phase == "launching" and "Launching server" in event.message


async def reconnect(client: httpx.AsyncClient, url: str, last_id: str) -> list[tuple[str, Event]]:
    async with client.stream("GET", url, headers={"Last-Event-ID": last_id}) as response:
        assert response.status_code == 200
        return await read_events(response, lambda e: e.terminal)


async def test_kill_9_mid_launch_resumes_on_another_process_without_orphans(
        stack, git_repo_factory, replicas):
    a, b = await replicas("a"), await replicas("b")
    _, url = git_repo_factory("takeover-kill")
    path = f"/build/git/{git_spec(url, 'main')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=180)) as client:
        async with client.stream("GET", a.url + path) as response:
            first = await read_events(response, launching_server)
            # The hub user exists now (A created it and recorded it); A dies at once.
            assert (await repo_users(stack, url)) != []
            orphan = (await repo_users(stack, url))[0]
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(10)
        killed = time.monotonic()
        last_id = first[-1][0]
        rest = await reconnect(client, b.url + path, last_id)
    resumed_after = time.monotonic() - killed
    session, _, index = last_id.rpartition(".")
    assert all(i.rpartition(".")[0] == session for i, _ in rest)  # the same launch
    indices = [int(i.rpartition(".")[2]) for i, _ in rest]
    assert indices == list(range(int(index) + 1, int(index) + 1 + len(rest)))  # continuing
    assert any("continuing it here" in e.message for _, e in rest)
    ready = rest[-1][1]
    assert ready.phase == "ready", ready
    # Zero orphans: the user A created is gone, only the resumed launch's user is left.
    assert await repo_users(stack, url) == [ready.data()["user"]] != [orphan]
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{ready.data()['url']}api",
                                  headers={"Authorization": f"token {ready.data()['token']}"})
    assert answer.status_code == 200
    print(f"\nkill -9 → stream resumed on another process and ready: {resumed_after:.1f} s "
          f"(stale bound {STALE} s)")


async def test_sigterm_mid_launch_hands_over_and_exits(stack, git_repo_factory, replicas):
    a, b = await replicas("a"), await replicas("b")
    _, url = git_repo_factory("takeover-term", "RUN for i in 1 2 3 4; do echo step-$i; sleep 1; done")
    path = f"/build/git/{git_spec(url, 'main')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=300)) as client:
        def term_at_step_2(event: Event) -> bool:
            if "step-2" in event.message:
                a.proc.send_signal(signal.SIGTERM)
            return event.terminal
        async with client.stream("GET", a.url + path) as response:
            # A stops mid-build; the stream ends without a result, so the client reconnects
            # (as EventSource does).
            seen = await read_events(response, term_at_step_2)
        assert a.proc.poll() is not None or any("step-2" in e.message for _, e in seen)
        assert not any(e.terminal for _, e in seen), seen[-1]
        # While it drains, A turns new requests away (a load balancer sees /health 503).
        async with httpx.AsyncClient(timeout=5) as probe:
            try:
                health = await probe.get(f"{a.url}/health")
                assert health.status_code == 503 and health.json()["draining"]
            except httpx.TransportError:
                pass  # already gone: nothing to turn away
        assert await asyncio.to_thread(a.proc.wait, 30) == 0  # exits within its bound, cleanly
        last_id = seen[-1][0]
        rest = await reconnect(client, b.url + path, last_id)
    session = last_id.rpartition(".")[0]
    assert all(i.rpartition(".")[0] == session for i, _ in rest)
    ready = rest[-1][1]
    assert ready.phase == "ready", ready
    assert await repo_users(stack, url) == [ready.data()["user"]]
    # The launch record B wrote is served by another process (the stack's own service): an
    # expired server link offers to launch the same repository again.
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    try:
        await hub.stop_server(ready.data()["user"])
        await wait_for(lambda: hub.delete_user(ready.data()["user"]), 60, "the user is removed")
    finally:
        await hub.aclose()
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(f"{stack.service.web_url}user/{ready.data()['user']}/tree",
                                headers={"Accept": "text/html"})
    assert page.status_code == 424 and f"v2/git/{git_spec(url, 'main')}" in page.text


async def test_a_store_that_does_not_answer_is_named_not_crashed_on(stack, replicas):
    nothing_there = f"redis://127.0.0.1:{free_port()}/0"
    c = await replicas("c", state_url=nothing_there, state_timeout=1)
    async with httpx.AsyncClient(timeout=30) as client:
        health = await client.get(f"{c.url}/health")
        assert health.status_code == 503
        store = [check for check in health.json()["checks"] if check["service"] == "State store"]
        assert store and not store[0]["ok"] and "Connection" in store[0]["error"]
        async with client.stream("GET", f"{c.url}/build/gh/org/repo/main") as response:
            events = await read_events(response, lambda e: e.terminal)
    assert response.status_code == 200
    assert events[-1][1].data()["status_code"] == 503
    assert "state store" in events[-1][1].message


async def test_a_dead_process_launch_nobody_reconnects_to_is_cleaned_up(
        stack, git_repo_factory, replicas):
    grace = {"abandon_grace_seconds": 3}
    a, b = await replicas("a", **grace), await replicas("b", **grace)
    _, url = git_repo_factory("takeover-abandoned")
    path = f"/build/git/{git_spec(url, 'main')}"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=180)) as client:
        async with client.stream("GET", a.url + path) as response:
            first = await read_events(response, launching_server)
            assert await repo_users(stack, url)  # A created the hub user
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(10)
    # Nobody reconnects: B's sweep notices (stale owner, unwatched past the grace) and removes it.
    await wait_for(lambda: _no_users(stack, url), 60, "the dead launch's hub user is removed")
    session = first[-1][0].rpartition(".")[0]
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=60)) as client:
        rest = await reconnect(client, b.url + path, f"{session}.0")
    assert rest[-1][1].phase == "failed" and "abandoned" in rest[-1][1].message


async def _no_users(stack: Settings, url: str) -> bool:
    return await repo_users(stack, url) == []
