"""/health: are the parts a launch needs answering? Cached briefly so probes cost little."""

from __future__ import annotations

import asyncio
import time
from typing import Any


from bindery.engine_clients import http_client
from bindery.launches.pipeline import Services
from bindery.state.base import StateStore

CHECK_TIMEOUT = 3.0


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
            "JupyterHub": s.hub.version(),
            "Registry": s.registry.ping(),
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
            for unused in ("JupyterHub", "Run engine"):
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
        # checked_at: when these checks ran (the same value while the result is served from cache).
        return {"ok": all(c["ok"] for c in checks), "checks": checks, "checked_at": time.time()}
