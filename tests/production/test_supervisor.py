"""The stack's supervisor brings back parts that die: the registry, its token issuer, the hub, the
run engine and the web service killed with SIGKILL on the session stack are running again within a bound, `bindery status` and
/metrics count the restarts, the supervisor's log says what happened, and a launch afterwards is
ready."""

from __future__ import annotations

import os
import signal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bindery.backoff import wait_until
from bindery.datadir import StackPaths
from bindery import stack as embedded
from bindery.stack import jupyterhub, podman, process, registry_server, supervisor, web_service
from tests.streams import collect, git_spec

BACK_WITHIN = 60.0  # seconds: two rounds of the supervisor and a start (the hub's takes ~6 s)


def _kill_and_wait(settings, name: str, answers) -> int:
    paths = StackPaths.of(settings)
    old = process.read_pid(paths, name)
    assert old is not None, f"{name} is not running"
    os.kill(old, signal.SIGKILL)
    return wait_until(lambda: answers() and (process.read_pid(paths, name) or old) != old and
                      process.read_pid(paths, name), timeout=BACK_WITHIN,
                      what=f"the supervisor to start {name} again", interval=0.2, cap=1.0)


async def test_killed_parts_come_back_and_launches_work(stack, git_repo_factory):
    settings = stack.model_copy(update={"supervise": True, "supervise_interval_seconds": 1.0})
    supervisor.start(settings, say=lambda _: None)
    try:
        new_registry = _kill_and_wait(settings, registry_server.NAME,
                                      lambda: registry_server.ping(settings, 1.0))
        _kill_and_wait(settings, registry_server.TOKENS,  # pulls need its tokens
                       lambda: registry_server.status(settings)["state"] == "running")
        new_hub = _kill_and_wait(settings, jupyterhub.NAME,
                                 lambda: jupyterhub.status(settings)["state"] == "running")
        _kill_and_wait(settings, "engine-run",  # servers' engine (its containers live on)
                       lambda: podman.ping(podman.socket_path(settings, "run"), 1.0))
        _kill_and_wait(settings, web_service.NAME, lambda: web_service.ping(settings, 1.0))
        parts = embedded.status(settings)["parts"]
        assert parts["registry"]["restarts"] >= 1 and parts["registry"]["pid"] == new_registry
        assert parts["hub"]["restarts"] >= 1 and parts["hub"]["pid"] == new_hub
        assert parts["supervisor"]["state"] == "running"
        lines = StackPaths.of(settings).log(supervisor.NAME).read_text()
        assert "registry is down" in lines and "hub is back" in lines
        # the web service counts them (it reads the supervisor's record, written after each round)
        def counted() -> bool:
            text = httpx.get(f"{stack.service.web_url}metrics", timeout=10).text
            samples = {s.labels["part"]: s.value for f in text_string_to_metric_families(text)
                       for s in f.samples if s.name == "bindery_stack_restarts_total"}
            return all(samples.get(p, 0) >= 1 for p in ("registry", "hub", "engine_run", "web"))

        wait_until(counted, timeout=10, what="/metrics to count every restart", interval=0.2)

        _, url = git_repo_factory("supervised", "RUN echo supervised")
        events = await collect(stack, "git", git_spec(url, "main"))
        assert events[-1].phase == "ready", events[-1]  # built (pushed), then launched by the hub
    finally:
        supervisor.stop(settings)
