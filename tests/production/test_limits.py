"""Untrusted code is contained (issue 3, point 7), on a dedicated stack with small limits.

Launched servers get memory, CPU and process limits and none of bindery's credentials; their
tokens cannot use the hub API beyond their own server; a memory hog is OOM-killed and a fork bomb
stays inside the pids limit, while the service and the other server live on.
"""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import pytest

from bindery import datadir
from bindery.datadir import StackPaths
from tests.production.own_stack import (
    dedicated_stack,
    release,
    repo,
    run_client,
    server_containers,
    versions_ok,
    wait_for,
)
from tests.streams import collect, git_spec, open_server

MEM = "256M"
CPU = 0.5
PIDS = 128


@pytest.fixture(scope="module")
def limited(tmp_path_factory, git_server):
    with dedicated_stack(tmp_path_factory.mktemp("limits"), git_server.base_url,
                         server_mem_limit=MEM, server_cpu_limit=CPU,
                         server_pids_limit=PIDS) as settings:
        yield settings


@pytest.fixture(scope="module")
async def servers(limited, git_server):
    """Two launched servers of one repository: (ready event A, ready event B)."""
    _, url = repo(git_server, "contained")
    launched = []
    for _ in range(2):
        events = await collect(limited, "git", git_spec(url, "main"))
        assert events[-1].phase == "ready", events[-1]
        launched.append(events[-1])
    yield tuple(launched)
    for event in launched:
        await release(limited, event)


def container_of(settings, event):
    user = event.data()["user"]
    for container in server_containers(settings, all_=False):
        if f"JUPYTERHUB_USER={user}" in container.attrs["Config"]["Env"]:
            return container
    raise AssertionError(f"no running container for {user}")


def env_of(container) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])


async def test_servers_get_limits_and_no_credential_of_binderys(limited, servers):
    a, _ = servers
    container = container_of(limited, a)
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 256 * 1024**2
    assert host["PidsLimit"] == PIDS
    cpus = host.get("NanoCpus") or 0
    if not cpus and host.get("CpuQuota"):
        cpus = host["CpuQuota"] / host["CpuPeriod"] * 1e9
    assert cpus == pytest.approx(CPU * 1e9)
    env = env_of(container)
    assert not [k for k in env if k.startswith("BINDERY")]
    paths = StackPaths.of(limited)
    secrets = [datadir.hub_token(limited), (paths.hub / "proxy-auth-token").read_text().strip()]
    secrets += [p.read_text().strip() for p in paths.secrets.iterdir() if p.is_file()]
    leaked = [k for k, v in env.items() for s in secrets if s and s in v]
    assert not leaked, f"bindery secrets in the server's environment: {leaked}"
    # Its own token is there, and it is not bindery's.
    assert env["JUPYTERHUB_API_TOKEN"] and env["JUPYTERHUB_API_TOKEN"] != datadir.hub_token(limited)
    assert env["JUPYTERHUB_USER"] == a.data()["user"]


async def test_server_tokens_cannot_use_the_hub_beyond_their_own_server(limited, servers):
    a, b = servers
    own, other = a.data()["user"], b.data()["user"]
    server_token = env_of(container_of(limited, a))["JUPYTERHUB_API_TOKEN"]
    api = datadir.hub_api(limited)
    for token in (server_token, a.data()["token"]):  # the server's token and the person's
        async with httpx.AsyncClient(headers={"Authorization": f"token {token}"},
                                     timeout=10) as hub:
            me = await hub.get(f"{api}/user")
            assert me.status_code == 200 and me.json()["name"] == own  # the token works...
            # ...but not for anything beyond its own server.
            assert (await hub.get(f"{api}/users")).status_code == 403
            # Another user's things: refused (the hub answers 404 where 403 would say it exists).
            assert (await hub.get(f"{api}/users/{other}")).status_code in (403, 404)
            assert (await hub.post(f"{api}/users/{other}/server")).status_code in (403, 404)
            assert (await hub.delete(f"{api}/users/{other}/server")).status_code in (403, 404)
            assert (await hub.post(f"{api}/users/{other}/tokens", json={})).status_code in (403, 404)
            assert (await hub.post(f"{api}/users/b-intruder")).status_code == 403
            assert (await hub.get(f"{api}/services")).status_code == 403
    # The other server still runs, as bindery's own hub token sees it.
    async with httpx.AsyncClient(headers={"Authorization": f"token {datadir.hub_token(limited)}"},
                                 timeout=10) as hub:
        assert (await hub.get(f"{api}/users/{other}")).json()["servers"][""]["ready"]
    assert (await open_server(b)).status_code == 200


async def test_memory_hog_is_oom_killed_and_harms_nobody(limited, servers):
    a, b = servers
    container = container_of(limited, a)
    t0 = time.monotonic()
    # 1 GiB of touched memory in a server limited to 256 MiB.
    result = container.exec_run(["python3", "-c", "x = b'x' * (1 << 30); print('survived')"])
    print(f"\n[limits] memory hog ended after {time.monotonic() - t0:.1f} s, exit {result.exit_code}")
    assert result.exit_code == 137, result  # SIGKILL by the cgroup's OOM killer
    assert b"survived" not in result.output
    assert (await open_server(b)).status_code == 200
    assert (await open_server(a)).status_code == 200  # the hog died, not the server
    assert versions_ok(limited)


async def test_fork_bomb_stays_inside_the_pids_limit(limited, servers):
    a, b = servers
    container = container_of(limited, a)
    # Every process forks forever and retries when refused, so the bomb stays at its ceiling
    # (a shell bomb's processes die when forks fail, and it can sink below it between samples).
    bomb = ("import os, time\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        time.sleep(0.05)\n")
    container.exec_run(["python3", "-c", bomb], detach=True)
    seen: list[int] = []

    def pids() -> int | None:
        stats = container.stats(stream=False)
        current = int(stats.get("pids_stats", {}).get("current") or 0)
        seen.append(current)
        return current >= PIDS * 0.9 or None  # the bomb has reached its ceiling

    await wait_for(pids, 30, "the fork bomb reaching the pids limit", interval=0.3)
    print(f"\n[limits] fork bomb: max pids seen {max(seen)} (limit {PIDS})")
    assert max(seen) <= PIDS
    # The machine, the service and the other server live on.
    assert (await asyncio.to_thread(subprocess.run, ["true"], check=False)).returncode == 0
    assert versions_ok(limited)
    assert (await open_server(b)).status_code == 200
    # The bombed server is removed through the hub like any other.
    await release(limited, a)
    client = run_client(limited)
    try:
        await wait_for(lambda: not [c for c in client.containers.list(all=True)
                                    if c.id == container.id], 60, "bombed container removed")
    finally:
        client.close()
