"""The stack's Redis (Debian's ``redis-server``): the shared state store of several web replicas.

Started only when ``bindery up`` runs more than one replica and no ``state_url`` is configured. It listens on
loopback only (``settings.service.redis_port``) and needs a password (``<data_dir>/secrets/redis``, mode 600), so
launched servers and other local users cannot read or write sessions; its data lives in ``<data_dir>/redis``.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable

from bindery.settings import Settings
from bindery.stack import process
from bindery.datadir import StackPaths, secret_file, write_if_changed

NAME = "redis"
PING_TIMEOUT = 2.0


def password(settings: Settings) -> str:
    return secret_file(StackPaths.of(settings).secrets / "redis")


def url(settings: Settings) -> str:
    """The ``state_url`` replicas are given (database 0)."""
    return f"redis://:{password(settings)}@127.0.0.1:{settings.service.redis_port}/0"


def config_text(settings: Settings) -> str:
    paths = StackPaths.of(settings)
    return "\n".join([
        "# written by `bindery up`; edits are overwritten",
        "bind 127.0.0.1",
        "protected-mode yes",
        f"port {settings.service.redis_port}",
        f"requirepass {password(settings)}",
        f"dir {paths.redis_data}",
        "daemonize no",
        "set-proc-title no",  # keep the command line, so the pid file's record recognises it
        'logfile ""',
        # Sessions and reservations must survive a restart of Redis itself: append-only file, fsync each second.
        "appendonly yes",
        "appendfsync everysec",
        "save 60 1",
        "",
    ])


def ping(settings: Settings, timeout: float = PING_TIMEOUT) -> bool:
    """AUTH + PING in Redis' wire protocol: true when this stack's Redis (its password) answers PONG."""
    secret = password(settings).encode()
    request = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(secret), secret)
    try:
        with socket.create_connection(("127.0.0.1", settings.service.redis_port), timeout) as conn:
            conn.sendall(request)
            answer = b""
            while answer.count(b"\r\n") < 2 and len(answer) < 512:
                chunk = conn.recv(512)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return False
    return answer == b"+OK\r\n+PONG\r\n"


def start(settings: Settings, log: Callable[[str], None] = print) -> dict:
    paths = StackPaths.of(settings)
    paths.redis_data.mkdir(parents=True, exist_ok=True)
    conf = paths.conf / "redis.conf"
    text = config_text(settings)
    write_if_changed(conf, text, mode=0o600)
    info = process.start(
        paths, NAME, ["redis-server", str(conf)], ready=lambda: ping(settings),
        timeout=settings.stack.stack_wait_timeout, what=f"redis (127.0.0.1:{settings.service.redis_port})",
        fingerprint=hashlib.sha256(text.encode()).hexdigest()[:16], log=log,
    )  # fmt: skip
    return {**info, "state": "running"}


def status(settings: Settings) -> dict:
    out = {"url": f"redis://127.0.0.1:{settings.service.redis_port}/0",
           "state": "running" if ping(settings, 1.0) else "stopped"}
    out.update(process.state(StackPaths.of(settings), NAME))
    return out


def stop(settings: Settings) -> bool:
    return process.stop(StackPaths.of(settings), NAME)
