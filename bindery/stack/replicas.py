"""Several bindery web processes behind HAProxy (``bindery up --replicas N``), and back to one.

With ``settings.service.replicas`` > 1 the public address (``host:port``) belongs to the load balancer
(bindery/stack/balancer.py); replica ``i`` is ``bindery serve`` on its own loopback port, recorded in its pid file
so a restart keeps it (HAProxy's configuration need not change). Every replica gets:

* ``public_url`` = the load balancer's URL (links, ``binder_launch_host``, badges name the public address);
* ``trusted_proxies`` = 127.0.0.1 (the load balancer) plus the operator's own proxies, and nothing else;
* ``state_url`` = the operator's, or the stack's Redis (bindery/stack/redis_server.py), so sessions, launch records,
  reservations and rate buckets are shared.

``up`` reconciles: replicas beyond N and the single web process are stopped, missing ones started. A replica
whose settings or code changed is restarted and must answer before the next one is touched (a rolling restart:
HAProxy's health check and retry route around the one restarting).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from bindery.settings import Settings
from bindery.stack import balancer, process, redis_server as redis, web_service as web
from bindery.datadir import StackPaths

LOAD_BALANCER = "127.0.0.1/32"  # where HAProxy connects to the replicas from
_NAME = re.compile(r"^replica-(\d+)$")


def name_of(index: int) -> str:
    return f"replica-{index}"


def running_names(paths: StackPaths) -> list[str]:
    """Names of the replica processes this stack has records of (running or not), in index order."""
    found = [(int(m.group(1)), m.group(0)) for p in paths.pids.glob("replica-*.pid")
             if (m := _NAME.match(p.stem))]  # fmt: skip
    return [name for _, name in sorted(found)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state_url(settings: Settings) -> str:
    """The state store every replica uses: the operator's ``state_url``, else the stack's Redis."""
    return settings.state.state_url or redis.url(settings)


def replica_settings(settings: Settings, port: int) -> Settings:
    trusted = [LOAD_BALANCER, *(n for n in settings.security.trusted_proxies if n != LOAD_BALANCER)]
    return settings.model_copy(update={
        "host": "127.0.0.1", "port": port, "replicas": 1, "public_url": settings.service.web_url,
        "trusted_proxies": trusted,
    })  # fmt: skip


def _port_of(paths: StackPaths, name: str) -> int:
    """The port replica ``name`` had (kept across restarts while it is free), else a free one."""
    port = process.record(paths, name).get("port")
    return int(port) if isinstance(port, int) else _free_port()


def start(settings: Settings, log: Callable[[str], None] = print) -> dict:
    """Bring the public address to ``settings.service.replicas`` replicas behind HAProxy (N > 1)."""
    paths = StackPaths.of(settings)
    wanted = [name_of(i) for i in range(1, settings.service.replicas + 1)]
    if web.stop(settings):
        log("  single web process stopped: the load balancer takes its address")
    extra_env = {}
    if not settings.state.state_url:
        redis.start(settings, log)
    extra_env["BINDERY_STATE_URL"] = state_url(settings)
    backends: list[tuple[str, int]] = []
    balancing = process.read_pid(paths, balancer.NAME) is not None
    for name in wanted:
        port = _port_of(paths, name)
        info = web.start(replica_settings(settings, port), log, name=name, extra_env=extra_env, meta={"port": port})
        backends.append((name, port))
        # A restarted replica (new settings or code) must be back in rotation before the next one is touched,
        # or HAProxy could have none left. (A new one is not configured in HAProxy yet: nothing to wait for.)
        if info["started"] and balancing and name in balancer.server_states(paths) \
                and not balancer.wait_in_rotation(paths, name, settings.stack.stack_wait_timeout):
            raise process.StackError(
                f"{name} answers on port {port} but the load balancer does not route to it after "
                f"{settings.stack.stack_wait_timeout:.0f}s; see {paths.log(balancer.NAME)}")
    balancer.start(settings, backends, ready=lambda: web.ping(settings), log=log)
    # Only now that HAProxy no longer names them: stop replicas beyond N.
    for name in running_names(paths):
        if name not in wanted and process.stop(paths, name):
            log(f"  {name} stopped (replicas: {settings.service.replicas})")
    return status(settings)


def stop(settings: Settings) -> list[str]:
    """Stop the load balancer, every replica and the stack's Redis; returns what ran."""
    paths = StackPaths.of(settings)
    stopped = ["balancer"] if balancer.stop(settings) else []
    stopped += [name for name in running_names(paths) if process.stop(paths, name)]
    if redis.stop(settings):
        stopped.append("redis")
    return stopped


def stop_all_but_single(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Reconcile towards one process: what several replicas needed goes (``up`` then starts ``web``)."""
    stopped = stop(settings)
    if stopped:
        log(f"  stopped {', '.join(stopped)} (replicas: 1)")


def status(settings: Settings) -> dict:
    """``replicas`` (name, url, pid, state each) and, when present, ``balancer`` and ``redis``."""
    paths = StackPaths.of(settings)
    replicas = []
    for name in running_names(paths):
        entry = process.state(paths, name)
        port = process.record(paths, name).get("port")
        if not entry["running"] and name not in [name_of(i) for i in range(1, settings.service.replicas + 1)]:
            continue
        url = f"http://127.0.0.1:{port}/" if port else ""
        answers = bool(port) and web.ping(replica_settings(settings, int(port)), 1.0)
        replicas.append({"name": name, "url": url, "pid": entry["pid"],
                         "state": "running" if answers else "stopped", "log": entry["log"]})
    out: dict = {"replicas": replicas}
    if process.read_pid(paths, balancer.NAME) is not None or settings.service.replicas > 1:
        out["balancer"] = balancer.status(settings)
    if process.read_pid(paths, redis.NAME) is not None or (settings.service.replicas > 1
                                                            and not settings.state.state_url):
        out["redis"] = redis.status(settings)
    return out
