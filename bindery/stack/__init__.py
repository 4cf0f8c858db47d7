"""The embedded single-machine stack: build podman, run podman, registry, base image, hub, web.

``web`` is one `bindery serve`, or with ``settings.service.replicas`` > 1 that many behind HAProxy with Redis
(bindery/stack/replicas.py).

``up(settings)`` starts what is not running yet (idempotent, bounded waits) and returns ``status()``;
``down(settings)`` stops everything this data_dir started and removes the hub's server containers.
Everything lives in ``settings.data_dir``; stacks with different data dirs and ports run side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bindery.settings import Settings
from bindery.stack import base_image, builder_image, jupyterhub as hub, podman, prometheus_server, registry_server as registry, replicas, supervisor, web_service as web
from bindery.datadir import StackPaths
from bindery.stack import process
from bindery.stack.process import StackError

__all__ = ["StackError", "base_image_name", "down", "status", "up"]


def base_image_name(settings: Settings) -> str:
    """The image repositories are built FROM (and servers start with when none is given)."""
    return base_image.image_name(settings)


def up(
    settings: Settings,
    log: Callable[[str], None] = print,
    *,
    web_service: bool = True,
    build_base: bool = True,
    monitoring: bool = False,
) -> dict:
    """Start every part that is not running and answering; return :func:`status`.

    Raises StackError (naming the part and its log file) when a part does not come up.
    """
    paths = StackPaths.of(settings)
    paths.make()
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def step(name: str, fn) -> None:
        t = time.monotonic()
        fn()
        timings[name] = round(time.monotonic() - t, 2)

    log(f"bindery stack in {paths.data_dir}")
    _state_store(settings)
    step("engine_build", lambda: podman.start(settings, "build", log))
    step("engine_run", lambda: podman.start(settings, "run", log))
    step("registry", lambda: _registry(settings, log))
    if build_base:
        step("base_image", lambda: base_image.ensure(settings, log))
        step("builder_image", lambda: builder_image.ensure(settings, log))
    step("hub", lambda: hub.start(settings, log))
    if web_service:
        step("web", lambda: _web(settings, log))
    if monitoring:
        step("prometheus", lambda: prometheus_server.start(settings, log))
    if settings.stack.supervise:  # last: what it sees down from now on, it starts again
        step("supervisor", lambda: supervisor.start(settings, log))
    result = status(settings)
    result["seconds"] = round(time.monotonic() - t0, 2)
    result["timings"] = timings
    log(f"up in {result['seconds']}s: bindery {result['url']}  hub {settings.hub_public}")
    return result


def _registry(settings: Settings, log: Callable[[str], None]) -> None:
    """The registry, once its garbage collector is done with it (a start now would make it writable
    in the middle of a collection)."""
    with registry.maintenance(settings, wait=True) as free:
        if not free:
            raise StackError("the registry's garbage collection did not end within "
                             f"{settings.stack.stack_wait_timeout:.0f} s; try `bindery up` again")
        registry.start(settings, log)


def _state_store(settings: Settings) -> None:
    """A damaged embedded state store stops `up` with the reason, before anything starts: the web
    service could neither record nor follow a launch."""
    if settings.state.state_url:  # Redis: checked by /health once the web service runs
        return
    from bindery.state.sqlite_store import file_damage

    damage = file_damage(settings.state_path)
    if damage is not None:
        raise StackError(
            f"the state store {settings.state_path} is damaged ({damage}). bindery keeps launch "
            "sessions, records, quota places and rate limits there and cannot run without it. "
            "Move the file aside (what it held is lost; running servers are not) or restore it, "
            "then run `bindery up` again.")


def _web(settings: Settings, log: Callable[[str], None]) -> None:
    """One web process at the public address, or ``settings.service.replicas`` behind HAProxy (reconciling either way)."""
    if settings.service.replicas > 1:
        replicas.start(settings, log)
    else:
        replicas.stop_all_but_single(settings, log)
        web.start(settings, log)


def down(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Stop the parts this data_dir started (web, hub, registry, engines); remove server containers."""
    # first: it would start again what is stopped below
    stopped: list[str] = ["supervisor"] if supervisor.stop(settings) else []
    stopped += replicas.stop(settings)  # whatever `up --replicas N` started, whatever N is now
    if prometheus_server.stop(settings):
        stopped.append("prometheus")
    if web.stop(settings):
        stopped.append("web")
    if hub.stop(settings):
        stopped.append("hub")
    # The hub stops its servers on shutdown; remove whatever is left (a killed hub, a failed stop).
    removed = 0
    try:
        removed = podman.remove_stack_containers(settings, log)
        if podman.embedded(settings, "build"):
            res = podman.run(settings, "build", ["ps", "-a", "-q"], check=False, timeout=60)
            ids = res.stdout.split() if res.returncode == 0 else []
            if ids:
                podman.run(settings, "build", ["rm", "-f", "-t", "5", *ids], check=False,
                           timeout=120)  # fmt: skip
    except Exception as exc:  # cleanup must not stop `down` from stopping the rest
        log(f"  container cleanup: {exc}")
    if registry.stop(settings):
        stopped.append("registry")
    for side in ("run", "build"):
        if podman.stop(settings, side):
            stopped.append(f"engine_{side}")
    log(f"stopped: {', '.join(stopped) or 'nothing was running'}"
        + (f"; removed {removed} server container(s)" if removed else ""))  # fmt: skip
    return {"stopped": stopped, "containers_removed": removed}


def status(settings: Settings) -> dict:
    paths = StackPaths.of(settings)
    several = replicas.status(settings)
    single = web.status(settings)
    parts = {
        "web": single if not several["replicas"] else {**single, "pid": several.get("balancer", {}).get("pid")},
        "hub": hub.status(settings),
        "registry": registry.status(settings),
        "engine_build": podman.status(settings, "build"),
        "engine_run": podman.status(settings, "run"),
        **{name: several[name] for name in ("balancer", "redis") if name in several},
        **{r["name"]: r for r in several["replicas"]},
    }
    watching = prometheus_server.status(settings)
    # started with --monitoring: listed (and so started again by the supervisor) until `down`
    # stops it, also while it is dead (its pid file stays)
    if watching.get("running") or process.record(paths, prometheus_server.NAME):
        parts["prometheus"] = watching
    watcher = supervisor.status(settings)
    for name, seen in watcher.pop("parts", {}).items():  # what the supervisor had to start again
        if name in parts:
            parts[name]["restarts"] = seen.get("restarts", 0)
            for field in ("last_restart", "last_error"):
                if seen.get(field):
                    parts[name][field] = seen[field]
    if settings.stack.supervise or watcher["pid"]:
        parts["supervisor"] = watcher
    listed = several["replicas"] or ([{"name": "web", "url": single["url"], "pid": single["pid"],
                                       "state": single["state"]}] if single["pid"] else [])
    return {
        "url": settings.service.web_url,
        "hub_url": settings.hub_public,
        "base_image": base_image.image_name(settings),
        "parts": {**parts, "base_image": base_image.status(settings)},
        "replicas": listed,
        "running": all(p.get("state") == "running" for p in parts.values()),
        "data_dir": str(paths.data_dir),
    }
