"""Faults injected for real into a dedicated stack (issue 3, point 6).

Each fault ends the affected launch with a clear `failed` within a bound derived from the settings,
the service keeps answering, the next launch after recovery works, and nothing is left behind (no
temporary hub users, no server containers). The build side's image store sits on a small tmpfs, so
a build can really run out of disk.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from bindery.launches.launcher import HUB_BACKOFF
from bindery.settings import Settings
from bindery.stack import jupyterhub as stack_hub
from bindery.stack import podman
from bindery.stack import registry_server as stack_registry
from bindery.engine_clients import docker_client
from tests.production.own_stack import (
    assert_no_orphans,
    fault_stack,
    hub_users,
    release,
    repo,
    server_containers,
    versions_ok,
    wait_for,
)
from tests.streams import collect, git_spec, open_server, phases

SLOW_START = 4  # seconds a "slow" image sleeps before its Jupyter server starts



@pytest.fixture(scope="module")
def faults(request, tmp_path_factory, git_server):
    return fault_stack(request.config, tmp_path_factory, git_server)


async def launch(settings: Settings, url: str) -> tuple[list, float]:
    t0 = time.monotonic()
    events = await collect(settings, "git", git_spec(url, "main"))
    return events, time.monotonic() - t0


async def launch_works(settings: Settings, url: str) -> None:
    """The next launch after recovery reaches a working server (then leaves)."""
    events, _ = await launch(settings, url)
    assert events[-1].phase == "ready", events[-1]
    assert (await open_server(events[-1])).status_code == 200
    await release(settings, events[-1])


def build_side_images(settings: Settings) -> set[str]:
    client = docker_client(settings.build_socket, 30)
    try:
        return {image.id for image in client.images.list(all=True)}
    finally:
        client.close()


def repo2docker_pids(url: str) -> list[int]:
    """repo2docker processes building `url` (its argv ends with `-- <url>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"repo2docker" in a for a in argv[:3]) and url.encode() in argv:
            found.append(int(entry.name))
    return found


def print_bound(name: str, took: float, bound: float) -> None:
    print(f"\n[bound] {name}: ended after {took:.1f} s (bound {bound:.0f} s)")


async def test_registry_unreachable_fails_clearly_and_never_builds(faults, git_server):
    _, url = repo(git_server, "reg-down")
    before = build_side_images(faults)
    stack_registry.stop(faults)
    try:
        events, took = await launch(faults, url)
    finally:
        stack_registry.start(faults, log=lambda line: None)
    last = events[-1]
    assert last.phase == "failed", last
    assert "registry" in last.message and "not rebuilding" in last.message, last.message
    # Bound: retries × (timeout + backoff ≤ 2 s) plus resolving the ref.
    bound = faults.registry_retries * (faults.registry_timeout + 2) + 5
    print_bound("registry down", took, bound)
    assert took <= bound
    # No build started: no building phase, no repo2docker, nothing new in the build store.
    assert not {"waiting", "building", "pushing"} & set(phases(events)), phases(events)
    assert not repo2docker_pids(url)
    assert build_side_images(faults) == before
    assert versions_ok(faults)
    await launch_works(faults, url)
    await assert_no_orphans(faults)


async def test_hub_down_fails_after_bounded_retries(faults, git_server):
    _, url = repo(git_server, "hub-down")
    stack_hub.stop(faults)
    try:
        events, took = await launch(faults, url)
        assert versions_ok(faults)  # the service answers while the hub is gone
    finally:
        stack_hub.start(faults, log=lambda line: None)
    last = events[-1]
    assert last.phase == "failed", last
    assert "JupyterHub is not answering" in last.message, last.message
    assert f"after {faults.launch_retries} attempts" in last.message, last.message
    retries = faults.launch_retries
    bound = retries * faults.hub_timeout + sum(HUB_BACKOFF.delay(n) for n in range(1, retries + 1)) + 5
    print_bound("hub down", took, bound)
    assert took <= bound
    await launch_works(faults, url)
    await assert_no_orphans(faults)


async def test_hub_restarted_mid_launch_never_hangs_nor_leaves_orphans(faults, git_server):
    """The hub is stopped and started again while a slow server spawns."""
    entry = (f'RUN printf \'#!/bin/sh\\nsleep {SLOW_START}\\nexec "$@"\\n\' '
             '> /opt/venv/bin/slow-start && chmod +x /opt/venv/bin/slow-start\n'
             'ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/opt/venv/bin/slow-start"]')
    _, url = repo(git_server, "hub-restart", entry)
    task = asyncio.create_task(launch(faults, url))
    # Mid-launch: the server's container exists (it sleeps before Jupyter starts).
    await wait_for(lambda: task.done() or server_containers(faults, all_=False), 120,
                   "a server container of the slow launch")
    assert not task.done(), task.result()[0][-1]
    t_fault = time.monotonic()
    await asyncio.to_thread(stack_hub.stop, faults)
    await asyncio.to_thread(stack_hub.start, faults, lambda line: None)
    assert versions_ok(faults)
    # Never hung: one launch attempt (launch_timeout) plus its cleanup and retries at most.
    bound = faults.launch_retries * (faults.launch_timeout + 10)
    events, _ = await asyncio.wait_for(task, bound)
    took = time.monotonic() - t_fault
    print_bound("hub restarted mid-launch", took, bound)
    last = events[-1]
    print(f"[outcome] hub restarted mid-launch: {last.phase}: {last.message.strip()}")
    assert last.phase in ("ready", "failed")
    if last.phase == "ready":  # retried to ready once the hub was back: that is the next launch
        assert (await open_server(last)).status_code == 200
        await release(faults, last)
        await assert_no_orphans(faults)
    else:
        assert "JupyterHub" in last.message or "server" in last.message, last.message
        await assert_no_orphans(faults)
        await launch_works(faults, url)
        await assert_no_orphans(faults)


async def test_build_engine_gone_fails_clearly(faults, git_server):
    _, url = repo(git_server, "engine-gone")
    podman.stop(faults, "build")  # the build side's podman service ends, its socket is removed
    assert not Path(faults.build_socket.removeprefix("unix://")).exists()
    try:
        events, took = await launch(faults, url)
        assert versions_ok(faults)
    finally:
        podman.start(faults, "build", log=lambda line: None)
    last = events[-1]
    assert last.phase == "failed", last
    assert "build engine" in last.message and "not answering" in last.message, last.message
    bound = 30.0  # repo2docker gives up at once when the engine socket is gone
    print_bound("build engine gone", took, bound)
    assert took <= bound
    await launch_works(faults, url)
    await assert_no_orphans(faults)


async def test_killed_build_process_fails_clearly(faults, git_server):
    _, url = repo(git_server, "killed", "RUN sleep 120")
    task = asyncio.create_task(launch(faults, url))
    pids = await wait_for(lambda: task.done() or repo2docker_pids(url), 60, "repo2docker running")
    assert not task.done(), task.result()[0][-1]
    t_kill = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    bound = 10.0  # the service sees its child die at once
    events, _ = await asyncio.wait_for(task, bound)
    took = time.monotonic() - t_kill
    print_bound("build process killed", took, bound)
    last = events[-1]
    assert last.phase == "failed", last
    assert "build process was killed (signal 9)" in last.message, last.message
    assert versions_ok(faults)
    assert not await hub_users(faults)  # it never got to launching
    _, url2 = repo(git_server, "after-kill")
    await launch_works(faults, url2)
    await assert_no_orphans(faults)


async def test_disk_full_during_build_fails_clearly(faults, git_server):
    # Writes until the build store's filesystem is full (the RUN step fails with ENOSPC).
    _, url = repo(git_server, "disk-full", "RUN dd if=/dev/zero of=/home/jovyan/fill bs=1M")
    events, took = await launch(faults, url)
    last = events[-1]
    assert last.phase == "failed", last
    assert "ran out of disk space (no space left on device)" in last.message, last.message
    # the engine's store is full, not the repository at fault: 507, as for a pull into a full store
    assert last.model_extra.get("status_code") == 507 and "not the repository's fault" in last.message
    assert "no space left on device" in "".join(e.message for e in events).lower()
    bound = faults.build_timeout
    print_bound("disk full during build", took, bound)
    assert took <= bound
    assert versions_ok(faults)
    # The failed step's layer is dropped, so the store has room again: the next launch works.
    _, url2 = repo(git_server, "after-disk-full")
    await launch_works(faults, url2)
    await assert_no_orphans(faults)
