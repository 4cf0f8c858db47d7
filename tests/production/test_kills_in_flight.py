"""Every part of the session stack killed with SIGKILL while launches are in flight (a build that
is running, a spawn the hub is working on): the supervisor brings the part back within a bound,
the in-flight launches end (`ready`, or a `failed` a person understands), and a launch started
after the part is back is `ready`, as is the build that was in flight, asked again. The stack is
left running and healthy.

Parts: build engine, run engine, registry, its token issuer, the hub, its proxy
(configurable-http-proxy, which the hub runs and restarts itself), the web service, and
Prometheus (`up --monitoring`).
"""

from __future__ import annotations

import httpx

from bindery import stack as embedded
from bindery.backoff import wait_until
from bindery.datadir import StackPaths
from bindery.stack import jupyterhub, process, prometheus_server, registry_server, supervisor, web_service
from tests.conftest import free_port
from tests.production.kill_mid_flight import BACK_WITHIN, InFlight, kill_round, launch_ready, marker, spawning
from tests.production.own_stack import release
from tests.production.watch import remove_users
from tests.streams import git_spec


def running(settings, part: str) -> bool:
    return embedded.status(settings)["parts"][part]["state"] == "running"


async def answers(ready: dict) -> int:
    """The status a launched server answers through the proxy with its token."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{ready['url']}api/status",
                                    headers={"Authorization": f"token {ready['token']}"})
        return response.status_code


async def test_each_part_killed_mid_launch(stack, git_repo_factory):
    # the supervisor as `up` starts it (its default interval), knowing the Prometheus started here
    settings = stack.model_copy(update={"prometheus_port": free_port()})
    paths = StackPaths.of(settings)
    web = settings.service.web_url
    _, spawned_url = git_repo_factory("kill-spawned", "RUN echo spawned")
    spawned = git_spec(spawned_url, "main")
    first = await launch_ready(web, spawned)  # built and pulled: its launches only spawn
    prometheus_server.start(settings, log=lambda _: None)
    supervisor.start(settings, say=lambda _: None)
    built = []

    def pid_of(name):
        return lambda: process.read_pid(paths, name)

    # part, its pid, "it is back", whether a build is in flight too: where the part serves builds
    # (engine, registry, tokens), where a build's launch meets the part down (hub), where a
    # build is taken over (web); a spawn is in flight in every round
    rounds = [
        ("engine_build", pid_of("engine-build"), lambda: running(settings, "engine_build"), True),
        ("engine_run", pid_of("engine-run"), lambda: running(settings, "engine_run"), False),
        ("registry", pid_of(registry_server.NAME), lambda: running(settings, "registry"), True),
        ("registry tokens", pid_of(registry_server.TOKENS), lambda: running(settings, "registry"), True),
        ("hub", pid_of(jupyterhub.NAME), lambda: running(settings, "hub"), True),
        ("proxy", lambda: jupyterhub.proxy_pid(settings), lambda: running(settings, "hub"), False),
        ("web", pid_of(web_service.NAME), lambda: web_service.ping(settings, 1.0), True),
        ("prometheus", pid_of(prometheus_server.NAME), lambda: running(settings, "prometheus"), False),
    ]
    try:
        for part, pid, back, with_build in rounds:
            word = part.replace(" ", "-")
            launches = [InFlight(spawned, spawning)]
            if with_build:
                step, printed = marker(word)
                _, url = git_repo_factory(f"kill-{word}", step)
                built.append(url)
                launches.insert(0, InFlight(git_spec(url, "main"), printed))
            cullers = set(jupyterhub.cullers(settings))
            await kill_round(part, web, pid, back, launches)
            if part == "engine_run":  # the hub's spawner waits for the engine and starts again
                assert launches[-1].seen.last.phase == "ready", launches[-1].seen.last.message
            # the part is back: a new launch is ready, and so is a build that was in flight when
            # it died, asked again (as a person presses "launch" again)
            ready = [launch.seen.last for launch in launches if launch.seen.last.phase == "ready"]
            ready.append(await launch_ready(web, spawned))
            ready += [await launch_ready(web, launch.spec) for launch in launches[:-1]
                      if launch.seen.last.phase != "ready"]
            for event in ready:
                await release(settings, event)
            if part == "hub":  # the killed hub's idle culler is gone; the new hub's runs
                wait_until(lambda: len(now := jupyterhub.cullers(settings)) == 1 and not now.keys() & cullers,
                           timeout=BACK_WITHIN, what="one idle culler, the new hub's", interval=0.2)
            if part == "proxy":  # routes the hub gives a new proxy: servers' and bindery's pages
                assert await answers(first.data()) == 200
                missing = httpx.get(f"{settings.hub_public}/user/b-nobody/lab", timeout=10,
                                    headers={"Accept": "text/html"})
                assert missing.status_code == 424 and "Binder not found" in missing.text, \
                    (missing.status_code, missing.text[:300])
        parts = embedded.status(settings)["parts"]
        restarted = ("engine_build", "engine_run", "registry", "hub", "web", "prometheus")
        assert all(parts[p].get("restarts", 0) >= 1 for p in restarted), parts
        assert supervisor.read(settings)["parts"]["proxy"]["restarts"] >= 1  # the hub's doing
        log = paths.log(supervisor.NAME).read_text()
        assert "engine_build is down" in log and "prometheus is back" in log
        assert "proxy is back: it died and the hub started it again" in log
    finally:
        supervisor.stop(settings)
        prometheus_server.stop(settings)
        for url in [*built, spawned_url]:
            await remove_users(settings, url)
        web_service.start(stack, log=lambda _: None)  # with the stack's own settings again
    assert embedded.status(stack)["running"]
