"""A Kubernetes API server stand-in: the part of the core/v1 pods API bindery's build executor uses,
served over HTTP so the executor talks to it through the real kubernetes_asyncio client.

No Kubernetes API server can run on these machines (see shared/PLATFORM.md). kmock (PyPI) was
considered: its emulator stores objects and answers 409, but ignores label selectors on listings and
has no pods/log; a build's status and log come from whatever runs the pod anyway, so this stand-in
is a small Starlette app whose pods are run by tests/kubernetes/kubelet.py.

Served: create (201, 409 AlreadyExists), get (404 NotFound), list with an equality label selector,
delete (removes the pod at once, as with gracePeriodSeconds=0, and its container), pods/log with
``follow`` and ``container`` (400 while the container has not started). Errors are Status objects.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.kubernetes.kubelet import Kubelet

PODS = "/api/v1/namespaces/{namespace}/pods"


def status(code: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Failure", "reason": reason, "message": message,
                         "code": code}, code)


def go_bool(text: str) -> bool:
    """A query flag as the API server parses it (Go's strconv.ParseBool: the client sends "True")."""
    return text in ("1", "t", "T", "TRUE", "true", "True")


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selector ("a=b,c=d"), the form bindery uses."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def selected(pod: dict[str, Any], selector: str) -> bool:
    return selector_matches(selector, pod["metadata"].get("labels") or {})


class ApiServer:
    """The pods of every namespace, in memory; their containers run by the kubelet."""

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path): what the client asked
        self.queries: list[str] = []  # their query strings, in the same order
        self.app = Starlette(routes=[
            Route(PODS, self.create, methods=["POST"]),
            Route(PODS, self.list, methods=["GET"]),
            Route(PODS + "/{name}", self.get, methods=["GET"]),
            Route(PODS + "/{name}", self.delete, methods=["DELETE"]),
            Route(PODS + "/{name}/log", self.log, methods=["GET"]),
        ])
        self.app.add_middleware(_Recorder, server=self)

    # -- the API ----------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        pod = await request.json()
        name = pod.get("metadata", {}).get("name")
        if not name:
            return status(422, "Invalid", "metadata.name: Required value")
        key = (namespace, name)
        if key in self.pods:
            return status(409, "AlreadyExists", f'pods "{name}" already exists')
        pod = copy.deepcopy(pod)
        pod["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()),
                               creationTimestamp=datetime.now(UTC).isoformat())
        pod["status"] = {"phase": "Pending"}
        self.pods[key] = pod
        self.kubelet.admit(pod, lambda update, uid=pod["metadata"]["uid"]:
                           self._update_status(key, uid, update))
        return JSONResponse(pod, 201)

    def _update_status(self, key: tuple[str, str], uid: str, update: dict[str, Any]) -> None:
        pod = self.pods.get(key)
        if pod is not None and pod["metadata"]["uid"] == uid:  # not a later namesake
            pod["status"] = update

    async def list(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        selector = request.query_params.get("labelSelector", "")
        items = [p for (ns, _), p in self.pods.items() if ns == namespace and selected(p, selector)]
        return JSONResponse({"kind": "PodList", "apiVersion": "v1",
                             "metadata": {"resourceVersion": "1"}, "items": items})

    async def get(self, request: Request) -> Response:
        pod = self.pods.get((request.path_params["namespace"], request.path_params["name"]))
        if pod is None:
            return status(404, "NotFound", f'pods "{request.path_params["name"]}" not found')
        return JSONResponse(pod)

    async def delete(self, request: Request) -> Response:
        key = (request.path_params["namespace"], request.path_params["name"])
        pod = self.pods.pop(key, None)
        if pod is None:
            return status(404, "NotFound", f'pods "{key[1]}" not found')
        await self.kubelet.remove(pod)
        return JSONResponse(pod)

    async def log(self, request: Request) -> Response:
        name = request.path_params["name"]
        pod = self.pods.get((request.path_params["namespace"], name))
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        wanted = request.query_params.get("container")
        names = [c["name"] for c in pod["spec"]["containers"]]
        if wanted is None and len(names) > 1:
            return status(400, "BadRequest", f"a container name must be specified for pod {name}")
        if (wanted or names[0]) not in names:
            return status(400, "BadRequest", f"container {wanted} is not valid for pod {name}")
        follow = go_bool(request.query_params.get("follow", "false"))
        chunks = await self.kubelet.log(pod, follow)
        if chunks is None:
            return status(400, "BadRequest", f'container "{names[0]}" in pod "{name}" is waiting '
                          "to start: ContainerCreating")
        if follow:
            return StreamingResponse(chunks, media_type="text/plain")
        return PlainTextResponse(b"".join(chunks))

    def drop_all(self) -> None:
        """Remove every pod and its container (the end of a test's cluster)."""
        for pod in list(self.pods.values()):
            self.kubelet.remove_now(pod)
        self.pods.clear()


class _Recorder:
    """ASGI middleware noting each request, so tests can say what the client really sent."""

    def __init__(self, app, server: ApiServer) -> None:  # noqa: ANN001 - an ASGI app
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        if scope["type"] == "http":
            self.server.requests.append((scope["method"], scope["path"]))
            self.server.queries.append(scope.get("query_string", b"").decode())
        await self.app(scope, receive, send)
