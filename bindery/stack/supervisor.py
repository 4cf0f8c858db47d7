"""The stack's supervisor: a process of its own that `bindery up` starts, which brings back any part
of the embedded stack that died (engines, registry and its token issuer, hub and its proxy, the web
service or its replicas, HAProxy and Redis, and Prometheus when `up --monitoring` started it).

Every ``supervise_interval_seconds`` it reads the stack's status, the one `bindery status` prints, and
starts each part that ran and is not running any more through the same idempotent start `bindery up` uses (a part
that runs but answers slowly is waited for, never killed). A part that does not come back is tried
again after a pause that doubles up to ``supervise_backoff_cap_seconds`` (bindery/backoff.py); every
death, restart and failed attempt is a line in its log (``<data_dir>/logs/supervisor.log``), and its
record (``<data_dir>/run/supervisor.json``: per part the restarts, the last one, the last error) is what
`bindery status` shows. The registry is left alone while its garbage collector holds it
(bindery/stack/registry_server.py ``maintenance``). `bindery down` stops the supervisor first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bindery.backoff import Backoff
from bindery.datadir import StackPaths, write_if_changed
from bindery.settings import Settings
from bindery.stack import process

NAME = "supervisor"
log = logging.getLogger(__name__)


def record_file(settings: Settings) -> Path:
    return StackPaths.of(settings).pids / "supervisor.json"


def _restarters(settings: Settings) -> dict[str, Callable[[Callable[[str], None]], object]]:
    """Part name (as in the stack's status) -> how to bring it back."""
    from bindery import stack
    from bindery.stack import jupyterhub, podman, prometheus_server, registry_server

    def registry(say: Callable[[str], None]) -> object:
        with registry_server.maintenance(settings, wait=False) as free:
            if not free:
                say("  registry: its garbage collection holds it; not touched")
                return None
            return registry_server.start(settings, say)

    web = lambda say: stack._web(settings, say)  # noqa: E731 (one restart for web, replicas, HAProxy, Redis)
    return {
        "engine_build": lambda say: podman.start(settings, "build", say),
        "engine_run": lambda say: podman.start(settings, "run", say),
        "registry": registry,
        "hub": lambda say: jupyterhub.start(settings, say),
        "web": web, "balancer": web, "redis": web,
        "prometheus": lambda say: prometheus_server.start(settings, say),  # `up --monitoring`
    }


class Supervisor:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.backoff = Backoff(first=1.0, factor=2.0, cap=settings.stack.supervise_backoff_cap_seconds)
        self.seen: set[str] = set()  # parts seen running: the ones to keep running
        self.parts: dict[str, dict] = {}  # part -> restarts, last_restart, last_error, failures, next_try
        self.restarters = _restarters(settings)
        self.proxy: tuple[int | None, int] | None = None  # (hub pid, its proxy's pid) last seen

    def round(self) -> list[str]:
        """Bring back what is down; the parts restarted this round."""
        from bindery import stack

        now = self.clock()
        parts = stack.status(self.settings)["parts"]
        # only what ran: a part `bindery up` was told not to start (--no-web) stays down
        self.seen.update(n for n, p in parts.items() if p.get("state") == "running")
        down = [name for name, part in parts.items() if name in self.seen
                and name not in ("base_image", NAME) and part.get("state") != "running"]
        restarted, done = [], set()
        for name in down:
            # a replica (replica-N) comes back through the web's restart, as `up` starts it
            replica = name.startswith(("web", "replica-"))
            restart = self.restarters.get(name) or (self.restarters["web"] if replica else None)
            if restart is None or id(restart) in done:
                continue
            done.add(id(restart))
            entry = self.parts.setdefault(name, {"restarts": 0, "failures": 0, "next_try": 0.0})
            if now < entry["next_try"]:
                continue
            log.warning("%s is down; starting it again", name, extra={"part": name})
            started = time.monotonic()
            try:
                restart(lambda line: log.info(line.strip(), extra={"part": name}))
            except Exception as exc:  # StackError, or anything else: try again after a pause
                entry["failures"] += 1
                entry["last_error"] = f"{type(exc).__name__}: {exc}"[:500]
                pause = self.backoff.delay(entry["failures"])
                entry["next_try"] = now + pause
                log.error("%s did not come back (%s); trying again in %.0f s", name,
                          entry["last_error"], pause, extra={"part": name})
                continue
            entry.update(failures=0, next_try=0.0, last_restart=self.clock(), last_error="")
            entry["restarts"] += 1
            restarted.append(name)
            log.warning("%s is back after %.1f s (restart %d)", name, time.monotonic() - started,
                        entry["restarts"], extra={"part": name, "restarts": entry["restarts"]})
        if self._proxy_started_again():
            restarted.append("proxy")
        self.write()
        return restarted

    def _proxy_started_again(self) -> bool:
        """The hub starts its proxy again itself, within a second (jupyterhub.PROXY_CHECK_SECONDS),
        often between two looks of this one: a new proxy under the same hub is that restart,
        logged and counted like the supervisor's own. (A new hub's new proxy is the hub's.)"""
        from bindery.stack import jupyterhub

        proxy = jupyterhub.proxy_pid(self.settings)
        if proxy is None:
            return False
        hub = process.read_pid(StackPaths.of(self.settings), jupyterhub.NAME)
        before, self.proxy = self.proxy, (hub, proxy)
        if before is None or before[0] != hub or before[1] == proxy:
            return False
        entry = self.parts.setdefault("proxy", {"restarts": 0, "failures": 0, "next_try": 0.0})
        entry.update(restarts=entry["restarts"] + 1, last_restart=self.clock(), last_error="")
        log.warning("proxy is back: it died and the hub started it again (pid %d, restart %d)",
                    proxy, entry["restarts"], extra={"part": "proxy", "restarts": entry["restarts"]})
        return True

    def write(self) -> None:
        record = {"pid": os.getpid(), "at": self.clock(),
                  "parts": {n: {k: v for k, v in e.items() if k != "next_try"}
                            for n, e in self.parts.items()}}
        write_if_changed(record_file(self.settings), json.dumps(record, indent=1) + "\n")

    def run(self) -> None:
        interval = self.settings.stack.supervise_interval_seconds
        while True:
            try:
                self.round()
            except Exception:  # the status itself failed: log it, look again next round
                log.exception("supervisor round failed")
            time.sleep(interval)


def read(settings: Settings) -> dict:
    """The supervisor's record ({} before its first round)."""
    try:
        return json.loads(record_file(settings).read_text())
    except (OSError, ValueError):
        return {}


def start(settings: Settings, say: Callable[[str], None] = print) -> dict:
    from bindery.stack.web_service import settings_env

    paths = StackPaths.of(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    child_env = settings_env(settings)
    env.update(child_env)
    began = time.time()
    return process.start(
        paths, NAME, [sys.executable, "-m", "bindery", "supervise"], env=env,
        ready=lambda: read(settings).get("at", 0) >= began - 1,
        timeout=settings.stack.stack_wait_timeout, what="stack supervisor",
        fingerprint=hashlib.sha256(json.dumps(child_env, sort_keys=True).encode()).hexdigest()[:16],
        log=say)


def status(settings: Settings) -> dict:
    pid = process.read_pid(StackPaths.of(settings), NAME)
    return {"state": "running" if pid else "stopped", "pid": pid, **{
        k: v for k, v in read(settings).items() if k == "parts"}}


def stop(settings: Settings) -> bool:
    return process.stop(StackPaths.of(settings), NAME)


def main() -> None:
    """`bindery supervise`: the supervisor's process (`bindery up` starts it)."""
    from bindery.service_log import configure

    settings = Settings()
    configure(settings.service.log_format, settings.service.log_level)
    # each look asks every part over HTTP: a line per request would fill the log with nothing
    logging.getLogger("httpx").setLevel(logging.WARNING)
    Supervisor(settings).run()
