"""/health: are the parts a launch needs answering? Cached briefly so probes cost little.

Shaped as BinderHub's (``{"ok", "checks": [{"service", "ok", ...}]}``, 503 when not ok), with its check
names ("JupyterHub API", "Docker registry", "Pod quota") beside bindery's own, so mybinder.org's
federation redirector reads a bindery as a member: out of rotation when a check fails or when "Pod
quota"'s ``total_pods`` comes within its headroom of ``quota``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


from bindery.engine_clients import http_client
from bindery.launches.services import Services
from bindery.state.base import StateStore

CHECK_TIMEOUT = 3.0
# BinderHub's check names (what its dashboards and mybinder.org's redirector know).
HUB, REGISTRY, POD_QUOTA = "JupyterHub API", "Docker registry", "Pod quota"


async def _engine(socket: str) -> None:
    """A Docker-API engine answers _ping (unix:// socket or tcp://host:port)."""
    async with http_client(socket, CHECK_TIMEOUT, read=CHECK_TIMEOUT) as client:
        response = await client.get("/_ping")
        response.raise_for_status()


class Health:
    def __init__(self, services: Services, ttl: float = 2.0,
                 store: StateStore | None = None) -> None:
        self.services = services
        self.store = store  # sessions, quotas and rates: nothing launches without it
        self.ttl = ttl
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> dict[str, Any]:
        async with self._lock:  # concurrent probes share one round of checks
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.ttl:
                return self._cached[1]
            report = await self._check()
            self._cached = (time.monotonic(), report)
            return report

    async def _check(self) -> dict[str, Any]:
        s = self.services
        probes = {
            HUB: s.hub.version(),
            REGISTRY: s.registry.ping(),
        }
        if s.settings.builds.build_executor == "kubernetes" and s.executor is not None:
            # No engine sockets on Kubernetes: the API that runs the build pods instead.
            probes["Kubernetes API"] = s.executor.running()
        else:
            probes["Build engine"] = _engine(s.settings.build_socket)
            probes["Run engine"] = _engine(s.settings.run_socket)
        if self.store is not None:
            probes["State store"] = self.store.check()  # reachable, and not damaged
        if s.settings.service.api_only:  # a build service launches nothing: no hub, no run side
            for unused in (HUB, "Run engine"):
                if unused in probes:
                    probes.pop(unused).close()
        results = await asyncio.gather(
            *(asyncio.wait_for(p, CHECK_TIMEOUT) for p in probes.values()), return_exceptions=True)
        checks: list[dict[str, Any]] = []
        for name, result in zip(probes, results):
            check: dict[str, Any] = {"service": name, "ok": not isinstance(result, BaseException)}
            if isinstance(result, BaseException):
                check["error"] = f"{type(result).__name__}: {result}".rstrip(": ")
            checks.append(check)
        queue = s.builds
        checks.append({"service": "Build queue", "ok": True, "queued": queue.queue_length,
                       "running": len(queue.running), "slots": queue.slots})
        checks.append(await self._pod_quota())
        # checked_at: when these checks ran (the same value while the result is served from cache).
        # A soft check (_ignore_failure, as BinderHub marks the pod quota) does not make it 503.
        ok = all(c["ok"] for c in checks if not c.get("_ignore_failure"))
        return {"ok": ok, "checks": checks, "checked_at": time.time()}

    async def _pod_quota(self) -> dict[str, Any]:
        """BinderHub's "Pod quota": servers running or starting plus builds running, against the
        servers quota (max_servers). Soft: a full site is healthy, it just takes no more launches,
        which is what a federation's redirector reads it for."""
        s = self.services
        quota = s.settings.launches.max_servers
        check: dict[str, Any] = {"service": POD_QUOTA, "ok": False, "quota": quota,
                                 "_ignore_failure": True}
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                users = 0 if s.settings.service.api_only else len((await s.hub.active_users())[1])
                builds = len(await s.executor.running()) if s.executor is not None \
                    else len(s.builds.running)
        except Exception as exc:  # the hub's own check says why; no count, no room
            check.update(total_pods=None, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
            return check
        total = users + builds
        check.update(ok=total <= quota, total_pods=total, user_pods=users, build_pods=builds)
        return check
