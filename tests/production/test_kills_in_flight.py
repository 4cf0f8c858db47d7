"""Every part of the session stack killed with SIGKILL while launches are in flight (a build that
is running, a spawn the hub is working on): the supervisor brings the part back within a bound,
the in-flight launches end (`ready`, or a `failed` a person understands), and a launch started
after the part is back is `ready`. The stack is left running and healthy.

Parts: build engine, run engine, registry, its token issuer, the hub, its proxy
(configurable-http-proxy, which the hub runs and restarts itself) and the web service.
"""

from __future__ import annotations

import httpx

from bindery import stack as embedded
from bindery.datadir import StackPaths
from bindery.stack import jupyterhub, process, registry_server, supervisor, web_service
from tests.production.kill_mid_flight import InFlight, kill_round, launch_ready, marker, spawning
from tests.production.own_stack import release
from tests.production.watch import remove_users
from tests.streams import git_spec


def running(settings, part: str) -> bool:
    return embedded.status(settings)["parts"][part]["state"] == "running"


def proxy_pid(settings) -> int | None:
    """configurable-http-proxy's pid, as the hub recorded it (the hub starts it)."""
    try:
        pid = int((StackPaths.of(settings).hub / "proxy.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    argv = dict(process.running()).get(pid, [])
    return pid if "configurable-http-proxy" in " ".join(argv) else None


async def test_each_part_killed_mid_launch(stack, git_repo_factory):
    settings = stack.model_copy(update={"supervise": True, "supervise_interval_seconds": 1.0})
    paths = StackPaths.of(settings)
    web = settings.service.web_url
    _, spawned_url = git_repo_factory("kill-spawned", "RUN echo spawned")
    spawned = git_spec(spawned_url, "main")
    first = await launch_ready(web, spawned)  # built and pulled: its launches only spawn
    supervisor.start(settings, say=lambda _: None)
    outcomes, built = [], []
    try:
        def pid_of(name):
            return lambda: process.read_pid(paths, name)

        rounds = [
            ("engine_build", pid_of("engine-build"), lambda: running(settings, "engine_build")),
            ("engine_run", pid_of("engine-run"), lambda: running(settings, "engine_run")),
            ("registry", pid_of(registry_server.NAME), lambda: running(settings, "registry")),
            ("registry tokens", pid_of(registry_server.TOKENS), lambda: running(settings, "registry")),
            ("hub", pid_of(jupyterhub.NAME), lambda: running(settings, "hub")),
            ("proxy", lambda: proxy_pid(settings), lambda: running(settings, "hub")),
            ("web", pid_of(web_service.NAME), lambda: web_service.ping(settings, 1.0)),
        ]
        for part, pid, back in rounds:
            word = part.replace(" ", "-")
            step, printed = marker(word)
            _, url = git_repo_factory(f"kill-{word}", step)
            built.append(url)
            building = InFlight(git_spec(url, "main"), printed)
            outcomes.append(await kill_round(part, web, pid, back,
                                             [building, InFlight(spawned, spawning)]))
            # the part is back: a new launch is ready, and so is the build that was in flight
            # when it died, asked again (as a person presses "launch" again)
            ready = [await launch_ready(web, spawned)]
            if building.seen.last.phase != "ready":
                ready.append(await launch_ready(web, building.spec))
            ready += [s.seen.last for s in outcomes[-1].launches if s.seen.last.phase == "ready"]
            for event in ready:
                await release(settings, event)
            if part == "proxy":  # routes the hub gives a new proxy: servers' and bindery's own
                assert await answers(first.data()) == 200
                missing = httpx.get(f"{settings.hub_public}/user/b-nobody/lab", timeout=10,
                                    headers={"Accept": "text/html"})
                assert missing.status_code == 424 and "Binder not found" in missing.text, \
                    (missing.status_code, missing.text[:300])
        parts = embedded.status(settings)["parts"]
        assert all(parts[p]["restarts"] >= 1 for p in ("engine_build", "engine_run", "registry", "hub", "web"))
        log = paths.log(supervisor.NAME).read_text()
        assert "engine_build is down" in log and "web is back" in log
    finally:
        supervisor.stop(settings)
        for url in [*built, spawned_url]:
            await remove_users(settings, url)
    assert embedded.status(stack)["running"]


async def answers(ready: dict) -> int:
    """The status a launched server answers through the proxy with its token."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{ready['url']}api/status",
                                    headers={"Authorization": f"token {ready['token']}"})
        return response.status_code

