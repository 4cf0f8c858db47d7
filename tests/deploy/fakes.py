"""A fake instance (HTTP via httpx.MockTransport) and a fake runtime, so the deploy flow runs without a stack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from bindery.deploy.flow import Slot
from bindery.artifacts.store import Artifact

PUBLIC = 9585


@dataclass
class FakeMachine:
    """Processes by port; the front forwards the public port to ``front``. Behaviour per version is scripted."""

    live_slot: Slot | None = None
    front: int | None = None
    procs: dict[int, Slot] = field(default_factory=dict)
    installed: list[str] = field(default_factory=list)
    broken_launch: set[str] = field(default_factory=set)  # versions whose launches fail
    forbidden: set[str] = field(default_factory=set)  # versions whose server answers 403
    unhealthy: set[str] = field(default_factory=set)  # versions whose /health names a broken part forever
    starting_polls: int = 2  # /health polls answering 503/refused before a new process is healthy
    hub_blips: int = 0  # next N launches see "connection refused" (transient)
    log: list[str] = field(default_factory=list)
    stack_ups: int = 0  # ensure_stack calls (the instance's shared stack)
    polls: dict[int, int] = field(default_factory=dict)
    served_by: list[str] = field(default_factory=list)  # version that answered each public request
    balanced: list[int] = field(default_factory=list)  # replica ports behind the load balancer (rolling deploys)
    serving_during: list[int] = field(default_factory=list)  # replicas serving whenever one was stopped

    # -- runtime protocol ----------------------------------------------------------------------
    def live(self) -> Slot | None:
        return self.live_slot

    def install(self, artifact: Artifact) -> None:
        self.installed.append(artifact.version)

    def ensure_stack(self) -> dict:
        self.stack_ups += 1
        return {"stack": "up"}

    def start(self, version: str, port: int) -> Slot:
        slot = Slot(version, port, pid=port)
        self.procs[port] = slot
        self.polls[port] = 0
        self.log.append(f"start {version}@{port}")
        return slot

    def running(self, slot: Slot) -> bool:
        return self.procs.get(slot.port) == slot

    def switch(self, slot: Slot) -> None:
        self.front = slot.port
        self.live_slot = slot
        self.log.append(f"switch {slot.version}@{slot.port}")

    def stop(self, slot: Slot) -> None:
        if self.procs.get(slot.port) == slot:
            del self.procs[slot.port]
            if self.balanced:
                self.serving_during.append(sum(p in self.procs for p in self.balanced))
        self.log.append(f"stop {slot.version}@{slot.port}")

    def slot_on(self, port: int) -> Slot | None:
        return self.procs.get(port)

    def balance(self, ports: list[int]) -> dict:
        self.balanced = list(ports)
        return {"ports": ports}

    def in_rotation(self, slot: Slot) -> dict:
        self.log.append(f"in rotation {slot.version}@{slot.port}")
        return {}

    def set_live(self, slot: Slot) -> None:
        self.live_slot = slot

    # -- HTTP ----------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port
        if port == PUBLIC and self.balanced:  # HAProxy: the first replica that runs (it routes around the others)
            port = next((p for p in self.balanced if p in self.procs), -1)
        elif port == PUBLIC:
            if self.front is None or self.front not in self.procs:
                raise httpx.ConnectError("connection refused", request=request)
            port = self.front
        if port == 18000:  # the hub's proxy: launched servers and the hub API
            return self._server(request)
        slot = self.procs.get(port)
        if slot is None:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.port == PUBLIC:
            self.served_by.append(slot.version)
        path = request.url.path
        if path == "/health":
            self.polls[port] += 1
            if slot.version in self.unhealthy:
                return httpx.Response(503, json={"ok": False, "checks": [
                    {"service": "JupyterHub", "ok": False, "error": "ConnectError"}, {"service": "Registry", "ok": True}]})
            if self.polls[port] <= self.starting_polls:
                return httpx.Response(503, json={"ok": False, "checks": [{"service": "JupyterHub", "ok": False}]})
            return httpx.Response(200, json={"ok": True, "checks": [{"service": "JupyterHub", "ok": True}]})
        if path == "/versions":
            return httpx.Response(200, json={"bindery": slot.version})
        if path.startswith("/build/"):
            if self.hub_blips:
                self.hub_blips -= 1
                raise httpx.ConnectError("connection refused (hub restarting)", request=request)
            events = [{"phase": "waiting", "message": "queued"}, {"phase": "launching", "message": "starting"}]
            if slot.version in self.broken_launch:
                events.append({"phase": "failed", "message": "spawn never followed to ready"})
            else:
                events.append({"phase": "ready", "message": "ready", "url": "http://127.0.0.1:18000/user/canary-1/",
                               "token": f"tok-{slot.version}"})
            body = ": keepalive\n\n" + "".join(f"data: {json.dumps(e)}\n\n" for e in events)
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(404)

    def _server(self, request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("token") or request.headers.get("authorization", "").removeprefix("token ")
        version = token.removeprefix("tok-")
        if request.method == "POST" and request.url.path.endswith("/api/shutdown"):
            return httpx.Response(200)
        if version in self.forbidden:
            return httpx.Response(403, text="Forbidden")
        return httpx.Response(200, text="<html>jupyter</html>")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))
