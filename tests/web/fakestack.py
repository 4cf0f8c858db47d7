"""A stand-in for bindery's event stream and a Jupyter server, to test the front door's browser
side and the published npm client now, without the real stack (tests/web/test_*_stack.py use that).

The stream follows the contract in bindery/web/door.py and the lead's /build handler: ids on every
event, resume after ``Last-Event-ID``, door refusals as one in-band ``failed`` event. Specs steer it:
``.../broken/...`` fails its build, ``.../flaky/...`` drops the first connection mid-build,
``.../noticed/...`` ends ready with a notice (what the environment changed), ``.../kept/...`` with
a resume link (RESUME_URL).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bindery.settings import Settings
from bindery.web import ui
from bindery.web.door import Door
from tests.asgi_thread import serve_in_thread
from tests.conftest import free_port
from tests.web.conftest import launch_book

TOKEN = "fake-token-123"
USER = "fake-user"
NOTICE = ["environment.yml: 'nodejs' left out: not a Python package",
          "<b>markup</b> in a notice stays text"]


@dataclass
class Record:
    """What the fake saw, for assertions: stream requests and launches per spec."""

    streams: list[tuple[str, str | None]] = field(default_factory=list)  # (spec, Last-Event-ID)
    launches: Counter[str] = field(default_factory=Counter)


RESUME_URL = "http://binder.example.org/v2/resume/" + "k" * 43


def script(spec: str, server_url: str) -> list[dict]:
    events: list[dict] = [
        {"phase": "waiting", "message": "Waiting for a build slot\n", "position": 2},
        {"phase": "waiting", "message": "Waiting for a build slot\n", "position": 1},
        {"phase": "fetching", "message": "Fetching repository\n"},
    ]
    events += [{"phase": "building", "message": f"Step {i}/6 : RUN echo {i}\n"} for i in range(1, 7)]
    if "/broken/" in f"/{spec}/":
        return events + [{"phase": "failed", "message": "Build failed: RUN false returned 1\n"}]
    return events + [
        {"phase": "pushing", "message": "Pushing image\n"},
        {"phase": "built", "message": "Built image\n", "imageName": "registry/fake:1"},
        {"phase": "launching", "message": "Launching server\n"},
        {"phase": "ready", "message": f"server running at {server_url}\n", "url": server_url,
         "token": TOKEN, "image": "registry/fake:1", "repo_url": "https://example.org/repo",
         "binder_ref_url": "https://example.org/repo/tree/main", "binder_launch_host": "",
         "binder_request": f"v2/{spec}", "binder_persistent_request": f"v2/{spec}",
         **({"notice": NOTICE} if "/noticed/" in f"/{spec}/" else {}),
         **({"resume_url": RESUME_URL, "home_download_url": RESUME_URL + "/home.tar.gz",
             "home_delete_url": RESUME_URL + "/delete"} if "/kept/" in f"/{spec}/" else {})},
    ]


def make_app(settings: Settings, record: Record, delay: float = 0.05) -> Starlette:
    door = Door(settings)
    book = launch_book()

    async def build(request: Request) -> Response:
        provider, spec = request.path_params["provider"], request.path_params["spec"]
        key = f"{provider}/{spec}"
        last = request.headers.get("last-event-id")
        record.streams.append((key, last))
        start = int(last.rsplit(".", 1)[-1]) + 1 if last else 0
        refusal = None if last else await door.admit(request, provider, spec)
        base = settings.service.web_url.rstrip("/")
        events = [refusal.event()] if refusal else script(key, f"{base}/user/{USER}/")
        if refusal is None and not last:
            record.launches[key] += 1
            await book.remember(USER, provider, spec)
        drop_at = 5 if ("/flaky/" in f"/{key}/" and not last) else None

        async def stream() -> AsyncIterator[str]:
            yield "retry: 500\n\n"
            for i in range(start, len(events)):
                if i == drop_at:
                    return  # a dropped connection: no terminal event
                await asyncio.sleep(delay)
                yield f"id: s1.{i}\ndata: {json.dumps(events[i])}\n\n"
                if i < len(events) - 1:
                    yield ": keepalive\n\n"

        headers = {"Cache-Control": "no-cache", **(await door.headers(request)),
                   **(refusal.headers if refusal else {})}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def server(request: Request) -> Response:
        if request.query_params.get("token") != TOKEN:
            return JSONResponse({"message": "Forbidden"}, status_code=403)
        if request.path_params["path"].startswith("api"):
            return JSONResponse({"version": "fake"})
        return HTMLResponse(f"<!doctype html><title>Fake Jupyter</title><h1 id=jupyter>Fake "
                            f"Jupyter Server</h1><p id=path>{request.url.path}</p>")

    return Starlette(routes=[
        Route("/build/{provider}/{spec:path}", build),
        Route(f"/user/{USER}/{{path:path}}", server),
        *ui.routes(settings, book),
    ])


@contextmanager
def serve(**settings: object) -> Iterator[tuple[str, Record]]:
    """Run the fake on a free port in a thread; yield its base URL and record."""
    port = free_port()
    config = Settings(host="127.0.0.1", port=port, **settings)
    record = Record()
    with serve_in_thread(make_app(config, record), "fake stack", port):
        yield config.service.web_url, record
