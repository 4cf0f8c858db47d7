"""A Kubernetes API server stand-in speaking HTTP/JSON, for the Helm deploy driver's tests.

Why not kmock (tried first): its emulator lists objects without applying ``labelSelector`` and keeps no
``metadata.generation``, and the rollout wait depends on both (a selector bug would pass unseen); and the real helm
binary (3.17, client-go clientsets) writes its release Secrets as protobuf, which neither kmock nor this stand-in
can read. So this stand-in serves what kubernetes_asyncio needs for workloads and pods — namespaced list (with
equality label selectors), get, create, replace, delete; generation bumped on a spec change; status kept apart
like the status subresource — and a ``controller`` hook plays the cluster's controllers (the test decides whether
a rollout finishes or its pods report ImagePullBackOff).
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.asgi_thread import serve_in_thread
from tests.kubernetes.apiserver import selector_matches
from tests.kubernetes.apiserver import status as _status

Key = tuple[str, str, str]  # (plural, namespace, name)
KINDS = {"deployments": ("apps/v1", "Deployment"), "statefulsets": ("apps/v1", "StatefulSet"),
         "daemonsets": ("apps/v1", "DaemonSet"), "pods": ("v1", "Pod")}


@dataclass
class StandIn:
    """The stand-in's state: objects, the requests seen, faults to answer with, and the controller hook."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)  # Authorization headers seen
    faults: list[int] = field(default_factory=list)  # statuses to answer the next list requests with
    controller: Callable[[StandIn, dict[str, Any]], None] = lambda standin, obj: None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _rv: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    def put(self, plural: str, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace (as the API server does: generation moves only when the spec changes)."""
        api_version, kind = KINDS[plural]
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        key = (plural, namespace, meta["name"])
        old = self.objects.get(key)
        if old is None:
            meta.update(uid=str(uuid.uuid4()), generation=1,
                        creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            obj.setdefault("status", {})
        else:
            meta.update(uid=old["metadata"]["uid"], creationTimestamp=old["metadata"]["creationTimestamp"])
            changed = obj.get("spec") != old.get("spec")
            meta["generation"] = old["metadata"]["generation"] + (1 if changed else 0)
            obj["status"] = old.get("status", {})
        meta["resourceVersion"] = str(next(self._rv))
        obj.update(apiVersion=api_version, kind=kind)
        self.objects[key] = obj
        return obj

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    def set_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.objects[(plural, namespace, name)]["status"] = status

    def of_kind(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        return [o for (p, ns, _), o in sorted(self.objects.items()) if p == plural and ns == namespace]


def make_app(state: StandIn) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        path = request.url.path
        if path == "/version":
            return JSONResponse({"major": "1", "minor": "31", "gitVersion": "v1.31.0-standin"})
        if path == "/api":
            return JSONResponse({"kind": "APIVersions", "versions": ["v1"]})
        return JSONResponse({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})

    async def collection(request: Request) -> JSONResponse:
        ns, plural = request.path_params["ns"], request.path_params["plural"]
        state.requests.append((request.method, request.url.path))
        state.authorizations.add(request.headers.get("authorization", ""))
        if plural not in KINDS:
            return _status(404, "NotFound", f"the server could not find the requested resource ({plural})")
        if request.method == "POST":
            body = await request.json()
            with state.lock:
                if state.get(plural, ns, body["metadata"]["name"]) is not None:
                    return _status(409, "AlreadyExists", f"{plural} \"{body['metadata']['name']}\" already exists")
                obj = state.put(plural, ns, body)
                state.controller(state, obj)
            return JSONResponse(obj, 201)
        with state.lock:
            if state.faults:
                code = state.faults.pop(0)
                return _status(code, "InternalError" if code >= 500 else "Forbidden", f"injected {code}")
            selector = request.query_params.get("labelSelector", "")
            items = [o for o in state.of_kind(plural, ns)
                     if selector_matches(selector, o["metadata"].get("labels", {}))]
        api_version, kind = KINDS[plural]
        return JSONResponse({"kind": f"{kind}List", "apiVersion": api_version,
                             "metadata": {"resourceVersion": "1"}, "items": copy.deepcopy(items)})

    async def item(request: Request) -> JSONResponse:
        ns, plural, name = request.path_params["ns"], request.path_params["plural"], request.path_params["name"]
        state.requests.append((request.method, request.url.path))
        with state.lock:
            obj = state.get(plural, ns, name)
            if obj is None:
                return _status(404, "NotFound", f"{plural} \"{name}\" not found")
            if request.method == "PUT":
                obj = state.put(plural, ns, await request.json())
                state.controller(state, obj)
            elif request.method == "DELETE":
                del state.objects[(plural, ns, name)]
            return JSONResponse(copy.deepcopy(obj))

    routes = [Route(p, discovery) for p in ("/version", "/api", "/apis")]
    for prefix in ("/api/v1", "/apis/apps/v1"):
        routes += [Route(prefix + "/namespaces/{ns}/{plural}", collection, methods=["GET", "POST"]),
                   Route(prefix + "/namespaces/{ns}/{plural}/{name}", item, methods=["GET", "PUT", "DELETE"])]
    return Starlette(routes=routes)


@contextmanager
def running_standin(state: StandIn | None = None) -> Iterator[StandIn]:
    """Serve a stand-in on a free port of 127.0.0.1 in a thread (uvicorn), for the duration of the block."""
    state = state or StandIn()
    with serve_in_thread(make_app(state), "the Kubernetes stand-in") as url:
        state.url = url
        yield state
