"""Several web replicas behind HAProxy (issue 9, point 5): `bindery up --replicas 2` on a stack of its own.

Real HAProxy, real Redis, real `bindery serve` processes; the hub, registry and engines are the stack's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from bindery import stack as embedded
from bindery.event_stream import amessages
from bindery.stack import process
from bindery.stack.balancer import REPLICA_HEADER
from bindery.datadir import StackPaths
from bindery.stack.web_service import settings_env
from tests.conftest import free_port
from tests.production.own_stack import dedicated_stack, repo, wait_for
from tests.production.watch import open_with_token, remove_users, users_of, watch
from tests.streams import git_spec

RATE = 3  # launches per minute and client address, per replica until the state store is shared
SPOOFER = "127.0.0.2"  # a client other than the load balancer's own address


@pytest.fixture(scope="module")
def replicated(tmp_path_factory, git_server):
    with dedicated_stack(tmp_path_factory.mktemp("replicas"), git_server.base_url, replicas=2,
                         redis_port=free_port(), rate_limit_per_minute=RATE) as settings:
        yield settings


def alive(pid: int | None) -> bool:
    """A live process (zombies of killed children do not count)."""
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


def cli_status(settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(settings_env(settings))
    out = subprocess.run([sys.executable, "-m", "bindery", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode in (0, 3), out.stderr
    return json.loads(out.stdout)


def test_status_lists_replicas_balancer_and_redis(replicated):
    status = cli_status(replicated)
    assert status["running"], json.dumps(status["parts"], indent=1)
    replicas = status["replicas"]
    assert [r["name"] for r in replicas] == ["replica-1", "replica-2"]
    assert len({r["pid"] for r in replicas}) == 2 and all(alive(r["pid"]) for r in replicas)
    assert len({r["url"] for r in replicas}) == 2
    assert all(r["url"].startswith("http://127.0.0.1:") and r["state"] == "running" for r in replicas)
    assert status["parts"]["balancer"]["state"] == "running" and alive(status["parts"]["balancer"]["pid"])
    assert status["parts"]["redis"]["state"] == "running" and alive(status["parts"]["redis"]["pid"])
    # Each replica answers on its own port; the public port is HAProxy's, not a replica's.
    for r in replicas:
        assert httpx.get(r["url"] + "versions", timeout=10).status_code == 200
    assert replicated.service.port not in {int(r["url"].rsplit(":", 1)[1].strip("/")) for r in replicas}


def test_requests_spread_over_both_replicas(replicated):
    served = [httpx.get(replicated.service.web_url + "versions", timeout=10) for _ in range(20)]
    assert all(r.status_code == 200 for r in served)
    assert {r.headers[REPLICA_HEADER] for r in served} == {"replica-1", "replica-2"}


async def test_launch_through_the_load_balancer_reaches_ready(replicated, git_server):
    _, url = repo(git_server, "replicated")
    try:
        w = await watch(replicated.service.web_url, "git", git_spec(url, "main"))
        assert w.last.phase == "ready", [s.event for s in w.events]
        data = w.last.data()
        # Links name the public address (the load balancer), not a replica's own port.
        assert data["binder_launch_host"].rstrip("/") == replicated.service.web_url.rstrip("/")
        assert await open_with_token(w.last) == 200
    finally:
        await remove_users(replicated, url)
    assert await users_of(replicated, url) == []


async def first_event(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict:
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        async for message in amessages(response.aiter_lines()):
            return json.loads(message.data)
    raise AssertionError(f"no event from {url}")


async def test_spoofed_forwarded_for_does_not_bypass_the_rate_limit(replicated, git_server):
    """A client inventing X-Forwarded-For hops still lands in its own address's bucket: HAProxy replaces the
    header, and replicas trust only HAProxy. (Were the header appended and believed, every request here would
    be a new client and none refused.)"""
    url = f"{git_server.base_url}/org/no-such-repository.git"
    target = f"{replicated.service.web_url}build/git/{quote(url, safe='')}/main"
    transport = httpx.AsyncHTTPTransport(local_address=SPOOFER)
    refused = 0
    attempts = 4 * RATE
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(10, read=60)) as client:
        for i in range(attempts):
            event = await first_event(client, target, {"X-Forwarded-For": f"198.51.100.{i + 1}",
                                                       "X-Real-IP": f"198.51.100.{i + 1}",
                                                       "Forwarded": f"for=198.51.100.{i + 1}"})
            refused += event.get("phase") == "failed" and event.get("status_code") == 429
    # At most RATE per replica get through (RATE in all once the buckets are shared through the state store).
    assert refused >= attempts - 2 * RATE, refused


async def test_killing_a_replica_keeps_the_load_balancer_serving(replicated):
    paths = StackPaths.of(replicated)
    victim = process.read_pid(paths, "replica-1")
    assert alive(victim)
    balancer_log = paths.log("balancer")
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    failures, served_by = 0, set()
    async with httpx.AsyncClient(timeout=10) as client:
        async def routed_around() -> bool:
            nonlocal failures
            r = await client.get(replicated.service.web_url + "versions")
            failures += r.status_code != 200
            served_by.add(r.headers.get(REPLICA_HEADER))
            return "replica-1 is DOWN" in balancer_log.read_text(errors="replace")

        await wait_for(routed_around, 30, "HAProxy marks the killed replica DOWN", interval=0.05)
        down_after = time.monotonic() - t0
        for _ in range(10):
            r = await client.get(replicated.service.web_url + "versions")
            failures += r.status_code != 200
            assert r.headers[REPLICA_HEADER] == "replica-2"
    # No request failed, before or after the health check noticed (a refused connection is retried elsewhere).
    assert failures == 0
    print(f"\nfailover: replica-1 killed -> HAProxy routes around it after {down_after:.2f} s; "
          f"0 failed requests (served by {sorted(s for s in served_by if s)})")
    status = embedded.status(replicated)
    assert not status["running"] and status["parts"]["replica-1"]["state"] == "stopped"

    # `bindery up` again restarts the dead replica on its port; HAProxy takes it back.
    before = {r["name"]: r["url"] for r in status["replicas"]}
    embedded.up(replicated, log=lambda line: None)
    status = embedded.status(replicated)
    assert status["running"]
    assert {r["name"]: r["url"] for r in status["replicas"]} == before

    async def both_serve() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            seen = {(await client.get(replicated.service.web_url + "versions")).headers[REPLICA_HEADER] for _ in range(6)}
        return seen == {"replica-1", "replica-2"}

    await wait_for(both_serve, 30, "both replicas serve again")


def test_up_with_changed_settings_restarts_replicas_one_at_a_time(replicated):
    """An upgrade or a settings change: `bindery up` restarts each replica, and the next only once HAProxy routes
    to the restarted one again, so the public address never fails a request."""
    before = {r["name"]: r["pid"] for r in embedded.status(replicated)["replicas"]}
    failures: list[str] = []
    done = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not done.is_set():
                try:
                    r = http.get(replicated.service.web_url + "versions")
                    if r.status_code != 200:
                        failures.append(str(r.status_code))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        embedded.up(replicated.model_copy(update={"keepalive_seconds": 6}), log=lambda line: None,
                    build_base=False)
    finally:
        done.set()
        thread.join(30)
    after = {r["name"]: r["pid"] for r in embedded.status(replicated)["replicas"]}
    assert after.keys() == before.keys() and all(after[n] != before[n] for n in before)
    assert failures == []


def test_up_reconciles_the_replica_count_and_down_stops_everything(replicated):
    paths = StackPaths.of(replicated)
    three = embedded.up(replicated.model_copy(update={"replicas": 3}), log=lambda line: None,
                        build_base=False)
    assert [r["name"] for r in three["replicas"]] == ["replica-1", "replica-2", "replica-3"]
    assert three["running"]
    served = {httpx.get(replicated.service.web_url + "versions", timeout=10).headers[REPLICA_HEADER] for _ in range(30)}
    assert served == {"replica-1", "replica-2", "replica-3"}
    pids = [r["pid"] for r in three["replicas"]] + [process.read_pid(paths, n) for n in ("balancer", "redis")]

    one = embedded.up(replicated.model_copy(update={"replicas": 1}), log=lambda line: None, build_base=False)
    assert [r["name"] for r in one["replicas"]] == ["web"] and one["running"]
    assert "balancer" not in one["parts"] and "redis" not in one["parts"]
    assert not any(alive(pid) for pid in pids)
    answer = httpx.get(replicated.service.web_url + "versions", timeout=10)
    assert answer.status_code == 200 and REPLICA_HEADER not in answer.headers  # the single process itself

    two = embedded.up(replicated, log=lambda line: None, build_base=False)
    everything = [r["pid"] for r in two["replicas"]] + [process.read_pid(paths, n) for n in ("balancer", "redis")]
    assert len(everything) == 4 and all(alive(pid) for pid in everything)
    embedded.down(replicated, log=lambda line: None)
    assert not any(alive(pid) for pid in everything)
    assert embedded.status(replicated)["replicas"] == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(replicated.service.web_url + "versions", timeout=5)
