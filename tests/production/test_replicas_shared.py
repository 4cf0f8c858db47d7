"""Issue 9's integrated tests: two replicas behind HAProxy sharing one Redis state store, with builds as
named containers on the real build engine. The parts (build containers, the state store, replicas) are
tested on their own elsewhere; these prove they work together, as a person launching through the public
address sees it:

1. concurrent requests for one unbuilt ref, spread over both replicas -> one build (the registry's
   count), every launch ready;
2. a stream started on replica A; A killed mid-build; the reconnect (Last-Event-ID, through the load
   balancer) lands on B and reaches `ready` on the same launch, one build, no orphans;
3. the CLI (`bindery launch`) resumes its stream the same way when its replica is killed mid-build;
4. max_servers_per_repo across replicas: exactly that many ready, the rest refused with 429.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from bindery import stack as embedded
from bindery.builds.runner import engine_executor
from bindery.stack import process, supervisor
from bindery.datadir import StackPaths
from bindery.stack.web_service import settings_env
from tests.conftest import free_port
from tests.production.kill_mid_flight import InFlight, kill_round, launch_ready, marker, spawning
from tests.production.own_stack import dedicated_stack, repo, wait_for
from tests.production.watch import (Watch, dumps, manifest_pushes, open_with_token, remove_users,
                                    server_containers, users_of, watch)
from tests.streams import git_spec

CONCURRENT = 20  # the number
PER_REPO = 3  # max_servers_per_repo
QUOTA_REQUESTS = 10
STALE = 3.0  # state_stale_seconds: a dead replica's launches are taken over after this


@pytest.fixture(scope="module")
def shared(tmp_path_factory, git_server):
    # The concurrency test's repository gets room for all of its launches (a quota tier); every other
    # repository has max_servers_per_repo = PER_REPO.
    with dedicated_stack(tmp_path_factory.mktemp("shared"), git_server.base_url, replicas=2,
                         redis_port=free_port(), max_servers_per_repo=PER_REPO,
                         quota_tiers={"crowd": CONCURRENT}, state_stale_seconds=STALE,
                         state_heartbeat_seconds=0.5, build_timeout=600) as settings:
        yield settings


async def no_build_containers(settings) -> None:
    executor = engine_executor(settings)

    async def none_left() -> bool:
        return not await executor.running()
    await wait_for(none_left, 60, "no build container left on the build engine", interval=0.5)


async def test_concurrent_requests_over_both_replicas_build_once(shared, git_server):
    _, url = repo(git_server, "crowd", "RUN echo crowd-build && sleep 3")
    spec = git_spec(url, "main")
    try:
        watches: list[Watch] = await asyncio.gather(
            *(watch(shared.service.web_url, "git", spec) for _ in range(CONCURRENT)))
        served = [w.served_by[0] for w in watches]
        assert set(served) == {"replica-1", "replica-2"}, served
        assert [w.last.phase for w in watches] == ["ready"] * CONCURRENT, \
            [dumps(w) for w in watches if w.last.phase != "ready"][:2]
        images = {w.last.data()["image"] for w in watches}
        assert len(images) == 1
        assert manifest_pushes(shared, images.pop()) == 1  # one build, however many asked, on either replica
        users = {w.last.data()["user"] for w in watches}
        assert len(users) == CONCURRENT
        statuses = await asyncio.gather(*(open_with_token(w.last) for w in watches))
        assert statuses == [200] * CONCURRENT
        print(f"\n{CONCURRENT} concurrent launches: replica-1 served {served.count('replica-1')}, "
              f"replica-2 {served.count('replica-2')}; 1 build")
    finally:
        await remove_users(shared, url)
    assert await users_of(shared, url) == []


async def test_stream_resumes_on_the_other_replica_after_a_kill_9(shared, git_server):
    _, url = repo(git_server, "failover", "RUN echo early-marker-$((6*7)) && sleep 15\n"
                  "RUN echo late-marker-$((6*9))")
    spec = git_spec(url, "main")
    paths = StackPaths.of(shared)
    try:
        seen = await watch(shared.service.web_url, "git", spec,
                           stop_when=lambda s: "early-marker-42" in s.event.message)
        assert seen.last.phase != "failed", dumps(seen)
        a = seen.served_by[0]
        b = {"replica-1": "replica-2", "replica-2": "replica-1"}[a]
        last_id = seen.last_id
        assert last_id, dumps(seen)
        os.kill(process.read_pid(paths, a), signal.SIGKILL)  # the build is in flight in its container
        killed = time.monotonic()
        done = await watch(shared.service.web_url, "git", spec, into=seen, last_event_id=last_id)
        assert done.served_by[1] == b  # through the load balancer, to the replica still alive
        resumed = done.events[len([s for s in done.events if s.at < killed]):]
        assert done.last.phase == "ready", dumps(done)
        # The same launch: the session prefix of every event id is the one A gave, indices continue.
        session = last_id.rpartition(".")[0]
        assert all(s.id.rpartition(".")[0] == session for s in resumed if s.id)
        assert any("continuing it here" in s.event.message for s in resumed), dumps(done)
        resumed_log = "".join(s.event.message for s in resumed)
        assert "already running on the build engine" in resumed_log, dumps(done)  # attached, not rebuilt
        assert "late-marker-54" in resumed_log
        image = done.last.data()["image"]
        assert manifest_pushes(shared, image) == 1  # B attached to A's build container
        assert await open_with_token(done.last) == 200
        # Zero orphans: the only user of this repository is the ready launch's; no build container left.
        assert [u["name"] for u in await users_of(shared, url)] == [done.last.data()["user"]]
        await no_build_containers(shared)
        first = resumed[0].at - killed
        takeover = next(s for s in resumed if "continuing it here" in s.event.message).at - killed
        print(f"\n{a} killed mid-build -> resumed stream's first event on {b} after {first:.2f} s, "
              f"takeover ('continuing it here') after {takeover:.2f} s, ready after "
              f"{done.events[-1].at - killed:.1f} s (state_stale_seconds {STALE})")
    finally:
        await remove_users(shared, url)
    assert await users_of(shared, url) == []
    # `bindery up` brings A back on its port; the public address serves from both again.
    embedded.up(shared, log=lambda line: None, build_base=False)
    assert embedded.status(shared)["running"]


async def test_cli_resumes_its_launch_across_a_replica_restart(shared, git_server):
    """`bindery launch` as a person runs it: its replica is killed mid-build; the CLI reconnects
    through the load balancer with Last-Event-ID, the other replica continues the same launch (one
    build), and the CLI prints a URL that opens the server."""
    _, url = repo(git_server, "cli-resume", "RUN echo cli-early-$((6*7)) && sleep 15\n"
                  "RUN echo cli-late-$((6*9))")
    paths = StackPaths.of(shared)
    logs = {name: paths.log(name) for name in ("replica-1", "replica-2")}
    sizes = {name: log.stat().st_size for name, log in logs.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(settings_env(shared))
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bindery", "launch", url, "--ref", "main", "--json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    printed: list[str] = []

    async def read_until(marker: str) -> None:
        while not any(marker in line for line in printed):
            line = await cli.stderr.readline()
            assert line, f"the CLI ended before printing {marker!r}:\n{''.join(printed)}"
            printed.append(line.decode(errors="replace"))

    try:
        await asyncio.wait_for(read_until("cli-early-42"), 300)
        # The replica whose access log has this launch's stream (the request's path names the repo).
        serving = [name for name, log in logs.items()
                   if "cli-resume" in log.read_bytes()[sizes[name]:].decode(errors="replace")]
        assert len(serving) == 1, serving
        os.kill(process.read_pid(paths, serving[0]), signal.SIGKILL)
        stdout, stderr = await asyncio.wait_for(
            asyncio.gather(cli.stdout.read(), cli.stderr.read()), 300)
        printed.append(stderr.decode(errors="replace"))
        await asyncio.wait_for(cli.wait(), 30)
        output = "".join(printed)
        assert cli.returncode == 0, output
        assert "continuing it here" in output  # the other replica took the same launch over
        assert "cli-late-54" in output  # the rest of the same build's log
        ready = json.loads(stdout.decode().strip().splitlines()[-1])
        assert manifest_pushes(shared, ready["image"]) == 1  # attached to the build, not rebuilt
        async with httpx.AsyncClient(timeout=15) as client:
            opened = await client.get(f"{ready['url']}api",
                                      headers={"Authorization": f"token {ready['token']}"})
        assert opened.status_code == 200
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()
        await remove_users(shared, url)
        embedded.up(shared, log=lambda line: None, build_base=False)  # the killed replica back
    assert embedded.status(shared)["running"]


async def test_per_repository_quota_holds_across_replicas(shared, git_server):
    _, url = repo(git_server, "quota", "RUN echo quota-build")
    spec = git_spec(url, "main")
    try:
        watches = await asyncio.gather(*(watch(shared.service.web_url, "git", spec) for _ in range(QUOTA_REQUESTS)))
        assert {w.served_by[0] for w in watches} == {"replica-1", "replica-2"}
        ready = [w for w in watches if w.last.phase == "ready"]
        refused = [w for w in watches if w.last.phase == "failed" and w.last.data().get("status_code") == 429]
        assert len(ready) == PER_REPO, [w.last.data() for w in watches]
        assert len(refused) == QUOTA_REQUESTS - PER_REPO, [w.last.data() for w in watches]
        assert all(f"its limit is {PER_REPO}" in w.last.message for w in refused), refused[0].last.message
        assert await asyncio.gather(*(open_with_token(w.last) for w in ready)) == [200] * PER_REPO
        assert len(await users_of(shared, url)) == PER_REPO
    finally:
        await remove_users(shared, url)
    assert await users_of(shared, url) == []
    await wait_for(lambda: not server_containers(shared), 60, "no server containers left")


async def test_redis_haproxy_and_a_replica_killed_mid_launch(shared, git_server):
    """Issue 21 on the replica stack: Redis, HAProxy and one replica each SIGKILLed while a build
    and a spawn are in flight; the supervisor brings each back, the launches end (`ready` or a
    `failed` a person understands; streams dropped by HAProxy are resumed), a new launch is ready."""
    # the supervisor with the stack's own settings: the replicas it starts are the same
    settings = shared
    paths = StackPaths.of(settings)
    web = settings.service.web_url
    _, spawned_url = repo(git_server, "kill-replica-spawned")
    spawned = git_spec(spawned_url, "main")
    built = [spawned_url]
    await launch_ready(web, spawned)
    await remove_users(settings, spawned_url)
    supervisor.start(settings, say=lambda _: None)
    try:
        def part_running(name: str) -> bool:
            return embedded.status(settings)["parts"][name]["state"] == "running"

        for part in ("redis", "balancer", "replica"):  # a build in flight where it is shared state
            launches = [InFlight(spawned, spawning)]
            if part != "balancer":
                step, printed = marker(part)
                _, url = repo(git_server, f"kill-{part}", step)
                built.append(url)
                launches.insert(0, InFlight(git_spec(url, "main"), printed))
            # the replica killed is the one serving the spawn
            name = (lambda: launches[-1].seen.served_by[0]) if part == "replica" else (lambda: part)
            await kill_round(part, web, lambda: process.read_pid(paths, name()),
                             lambda: part_running(name()), launches)
            await launch_ready(web, spawned)
            for launch in launches[:-1]:
                if launch.seen.last.phase != "ready":  # asked again, as a person does
                    await launch_ready(web, launch.spec)
            await remove_users(settings, spawned_url)
    finally:
        supervisor.stop(settings)
        for url in built:
            await remove_users(settings, url)
    assert embedded.status(shared)["running"]
