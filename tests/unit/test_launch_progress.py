"""The launch forwards the spawn's own progress messages (issue 13, point 3): on Kubernetes there is
no pre-pull, and the image pull shows only in KubeSpawner's progress events, so each of them must
reach the person's event stream, in order, with its progress value.

The hub here is a stand-in speaking JupyterHub's REST API and progress stream over HTTP, with the
messages KubeSpawner relays from the pod's events; the launcher and hub client are bindery's own.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bindery.launches.hub_api import Hub
from bindery.launches.launcher import LaunchConfig, Launcher
from tests.asgi_thread import serve_in_thread

USER = "b-progress-1"
TOKEN = "person-token"
KUBESPAWNER_PROGRESS = [  # as KubeSpawner turns the pod's events into progress messages
    {"progress": 0, "message": "Server requested"},
    {"progress": 30, "message": "Pod jupyter-b-progress-1 assigned to node-7"},
    {"progress": 45, "message": "[Normal] Pulling image \"registry.example.org/bindery/r:abc\""},
    {"progress": 60, "message": "[Normal] Successfully pulled image "
                                "\"registry.example.org/bindery/r:abc\" in 41.2s"},
    {"progress": 80, "message": "[Normal] Started container notebook"},
]


def fake_hub() -> Starlette:
    async def create_user(request: Request) -> Response:
        return JSONResponse({"name": request.path_params["name"]}, 201)

    async def token(request: Request) -> Response:
        return JSONResponse({"token": TOKEN}, 201)

    async def start(request: Request) -> Response:
        return Response(status_code=202)  # pending: the pull takes a while

    async def progress(request: Request) -> Response:
        ready = {"progress": 100, "ready": True, "message": f"Server ready at /user/{USER}/",
                 "url": f"/user/{USER}/"}

        async def events():
            for event in [*KUBESPAWNER_PROGRESS, ready]:
                yield f"data: {json.dumps(event)}\n\n".encode()
        return StreamingResponse(events(), media_type="text/event-stream")

    async def server_api(request: Request) -> Response:
        ok = request.headers.get("authorization") == f"token {TOKEN}"
        return JSONResponse({"version": "2"}, 200 if ok else 403)

    return Starlette(routes=[
        Route("/hub/api/users/{name}", create_user, methods=["POST"]),
        Route("/hub/api/users/{name}/tokens", token, methods=["POST"]),
        Route("/hub/api/users/{name}/server", start, methods=["POST"]),
        Route("/hub/api/users/{name}/server/progress", progress),
        Route(f"/user/{USER}/api/status", server_api),
    ])


async def test_the_spawns_progress_messages_reach_the_launch_stream_in_order() -> None:
    with serve_in_thread(fake_hub(), "fake-hub") as url:
        hub = Hub(f"{url}/hub/api", "service-token", 10)
        launcher = Launcher(hub, LaunchConfig(hub_url=url, timeout=30, retries=1,
                                              token_lifetime=600))
        try:
            events = [e async for e in launcher.launch("registry.example.org/bindery/r:abc",
                                                       "https://example.org/r", user=USER)]
        finally:
            await launcher.aclose()
            await hub.aclose()
    forwarded = [(e.message.strip(), (e.model_extra or {}).get("progress"))
                 for e in events if e.phase == "launching"]
    wanted = [(p["message"], p["progress"]) for p in KUBESPAWNER_PROGRESS]
    assert [f for f in forwarded if f in wanted] == wanted  # every one, in order, with progress
    assert any("Pulling image" in message for message, _ in forwarded)
    assert events[-1].phase == "ready" and (events[-1].model_extra or {})["token"] == TOKEN
