"""HAProxy (Debian's) at the public address, in front of several bindery web replicas.

Why these settings:
* Event streams: HAProxy forwards response data as it arrives (no buffering in HTTP mode), and the client, server
  and tunnel timeouts are long so a quiet launch (keepalives every ``keepalive_seconds``) is never cut.
* Who is asking: a client-sent ``X-Forwarded-For`` (and ``Forwarded``, ``X-Real-IP``) is deleted, then
  ``option forwardfor`` adds the peer HAProxy sees. So the header a replica gets has exactly one hop, written by
  the load balancer, which is the replicas' only trusted proxy: a spoofed header cannot pick another rate-limit
  bucket. Only when the operator put their own proxies in front (``trusted_proxies``) is their header kept and the
  peer appended, and the replicas trust those proxies too.
* Failover: ``/health`` is checked every second; two failures take a replica out, one success brings it back. A
  request that finds a replica's port closed is retried on another (``retry-on conn-failure`` + ``redispatch``),
  so a dead replica costs no request even before the check notices. A replica that answers ``/health`` with 503
  (a shared part such as the hub is down) stays in: every replica would say the same, and its 503 page and in-band
  ``failed`` events tell people more than HAProxy's own 503 would. Except a *draining* replica (it got SIGTERM:
  a rolling restart, ``bindery down``; bindery/web/drain.py): its ``/health`` 503 says ``"draining":true`` and
  takes it out, and the 503 it answers every other request with (before acting on it) is retried on another
  replica (``retry-on 503``; every route is a GET), so a restart costs no request.
* ``leastconn``: event streams last minutes; spreading open connections spreads the work.
* Each response says which replica served it (``X-Bindery-Replica``), for operators and tests.
* A stats socket (``StackPaths.short_socket``, mode 600) tells whether HAProxy routes to a replica again, so a
  rolling restart waits for that before it touches the next one (else both could be out of rotation at once).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from bindery.backoff import WaitTimeout, wait_until
from bindery.settings import Settings
from bindery.stack import process
from bindery.datadir import StackPaths, write_if_changed

NAME = "balancer"
CHECK_INTERVAL_MS = 1000
REPLICA_HEADER = "X-Bindery-Replica"
BACKEND = "replicas"
STATS_TIMEOUT = 2.0


def stats_socket(paths: StackPaths) -> Path:
    return paths.short_socket(NAME)


def config_text(settings: Settings, backends: Sequence[tuple[str, int]]) -> str:
    """HAProxy's configuration for ``backends`` (replica name, loopback port)."""
    trusted = " ".join(settings.security.trusted_proxies)
    # Keep a client's forwarding headers only when it is one of the operator's own proxies.
    unless = f" unless {{ src {trusted} }}" if trusted else ""
    tunnel = max(3600, int(settings.launches.launch_timeout) * 2)
    door = settings.security
    # The replicas trust HAProxy, so their per-client connection cap does not apply to its
    # connections: the same cap is kept here, per source (an IPv6 client is its /64), with the
    # operator's own proxies exempt (their connections carry many clients).
    cap = door.max_connections_per_client
    exempt = f" !{{ src {trusted} }}" if trusted else ""
    per_client = [
        "    stick-table type ipv6 size 200k expire 60s store conn_cur",
        "    tcp-request connection track-sc0 src,ipmask(32,64)",
        f"    tcp-request connection reject if {{ sc0_conn_cur gt {cap} }}{exempt}",
    ] if cap > 0 else []
    lines = [
        "# written by `bindery up`; edits are overwritten",
        "global",
        "    maxconn 4096",
        "    log stdout format raw local0 info",
        f"    stats socket {stats_socket(StackPaths.of(settings))} mode 600 level operator",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    timeout connect 2s",
        "    timeout check 3s",
        # a request's head must arrive this soon (silent and half-sent connections are shed)
        f"    timeout http-request {max(1, round(door.header_timeout_seconds))}s",
        f"    timeout http-keep-alive {max(1, door.idle_timeout_seconds)}s",
        "    timeout queue 30s",
        f"    timeout client {tunnel}s",
        f"    timeout server {tunnel}s",
        f"    timeout tunnel {tunnel}s",
        "    timeout client-fin 10s",
        "    timeout server-fin 10s",
        "    retries 3",
        "    option redispatch 1",
        # 503: a replica that got SIGTERM (a rolling restart, `bindery down`) refuses every request
        # with 503 before acting on it (bindery/web/app.py); another replica serves it instead.
        # Every route is a GET, so a retry never repeats a change.
        "    retry-on conn-failure empty-response 503",
        "",
        "frontend public",
        f"    bind {settings.service.host}:{settings.service.port}",
        *per_client,
        f"    http-request del-header X-Forwarded-For{unless}",
        f"    http-request del-header Forwarded{unless}",
        f"    http-request del-header X-Real-IP{unless}",
        "    option forwardfor",
        f"    http-response set-header {REPLICA_HEADER} %s",
        "    default_backend replicas",
        "",
        f"backend {BACKEND}",
        "    balance leastconn",
        "    option httpchk",
        "    http-check send meth GET uri /health",
        "    http-check expect rstatus ^(200|503)$",
        # ...but a draining replica (SIGTERM) says so in its 503: that one is taken out of rotation.
        '    http-check expect ! string "\\"draining\\":true"',
        f"    default-server check inter {CHECK_INTERVAL_MS}ms fastinter 500ms downinter 1s fall 2 rise 1"
        " on-marked-down shutdown-sessions",
        *(f"    server {name} 127.0.0.1:{port}" for name, port in backends),
        "",
    ]
    return "\n".join(lines)


def start(settings: Settings, backends: Sequence[tuple[str, int]], ready: Callable[[], bool],
          log: Callable[[str], None] = print) -> dict:
    """Start (or, when the backends or settings changed, restart) HAProxy at <host>:<port>."""
    paths = StackPaths.of(settings)
    conf = paths.conf / "haproxy.cfg"
    text = config_text(settings, backends)
    write_if_changed(conf, text)
    info = process.start(
        paths, NAME, ["haproxy", "-db", "-f", str(conf)], ready=ready,
        timeout=settings.stack.stack_wait_timeout, what=f"load balancer (HAProxy on {settings.service.host}:{settings.service.port})",
        fingerprint=hashlib.sha256(text.encode()).hexdigest()[:16], log=log,
    )  # fmt: skip
    return {**info, "state": "running"}


def server_states(paths: StackPaths) -> dict[str, str]:
    """HAProxy's view of each replica (``UP``, ``DOWN``, ``MAINT``...), from its stats socket; {} if unreachable."""
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(STATS_TIMEOUT)
            conn.connect(str(stats_socket(paths)))
            conn.sendall(b"show stat\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    except OSError:
        return {}
    lines = data.decode(errors="replace").splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    pxname, svname, status = header.index("pxname"), header.index("svname"), header.index("status")
    states = {}
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) > status and fields[pxname] == BACKEND and fields[svname] != "BACKEND":
            states[fields[svname]] = fields[status]
    return states


def wait_in_rotation(paths: StackPaths, name: str, timeout: float) -> bool:
    """Bounded wait until HAProxy routes to replica ``name`` (its health check passed since it started)."""
    try:
        return wait_until(lambda: server_states(paths).get(name, "").startswith("UP"), timeout=timeout,
                          what=f"HAProxy routing to {name}")
    except WaitTimeout:
        return False


def status(settings: Settings) -> dict:
    state = process.state(StackPaths.of(settings), NAME)
    return {"url": settings.service.web_url, "state": "running" if state["running"] else "stopped", **state}


def stop(settings: Settings) -> bool:
    return process.stop(StackPaths.of(settings), NAME)
