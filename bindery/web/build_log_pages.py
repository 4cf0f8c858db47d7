"""Build log pages: /build-logs/<build name> (a page) and /build-logs/<build name>.txt (plain text).

Each image build's log is kept after the build (bindery/builds/build_logs.py), so a person whose launch
failed, or who wants to see how an image was made, can read it later; a build still running shows
its log so far (the page reloads itself). A private repository's log is served only with its key
(bindery/builds/log_access.py). The log is untrusted output: the page escapes all of it,
and the text form is served as text/plain with nosniff.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bindery._version import __version__
from bindery.builds.build_logs import BuildLogs
from bindery.builds.log_access import KEY_PARAM, key_matches
from bindery.builds.executors.base import BuildExecutor
from bindery.builds.runner import build_logs
from bindery.settings import Settings
from bindery.web.ui import _base, templates

HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def routes(settings: Settings, executor: Callable[[], BuildExecutor | None]) -> list[Route]:
    """`executor()`: the service's build executor (None before the service has started)."""
    logs: BuildLogs = build_logs(settings)

    async def find(name: str, key: str | None) -> tuple[str | None, bool]:
        """(log text, still running) of one build, or (None, False) when there is none, or when
        it is a private repository's and `key` is not its key (the same answer: a name says
        nothing about whether such a build exists)."""
        if not BuildLogs.valid(name):
            return None, False
        if logs.is_private(name) and not key_matches(settings, name, key):
            return None, False
        text = logs.text(name)
        if text is not None:
            return text, False
        running = executor()
        try:
            live = await running.log_so_far(name) if running is not None else None
        except Exception:  # the engine is down: say there is no log rather than fail
            live = None
        if live is not None:
            return live, True
        return logs.text(name), False  # it may have ended (and been kept) meanwhile

    async def text(request: Request) -> Response:
        name = request.path_params["name"]
        body, running = await find(name, request.query_params.get(KEY_PARAM))
        if body is None:
            return PlainTextResponse(f"No build log {name} (they are kept for "
                                     f"{settings.builds.build_log_keep_days:g} days).\n", 404,
                                     headers=HEADERS)
        return PlainTextResponse(body, headers={**HEADERS, "X-Build-Running": str(running).lower()})

    async def page(request: Request) -> Response:
        name = request.path_params["name"]
        key = request.query_params.get(KEY_PARAM)
        body, running = await find(name, key)
        record = logs.record(name) if body is not None and not running else None
        query = f"?{urlencode({KEY_PARAM: key})}" if body is not None and key else ""
        context = {"base": _base(request), "version": __version__, "name": name, "log": body,
                   "query": query,
                   "running": running, "record": record,
                   "keep_days": f"{settings.builds.build_log_keep_days:g}"}
        return templates.TemplateResponse(request, "build_log.html", context,
                                          status_code=200 if body is not None else 404,
                                          headers=HEADERS)

    return [
        Route("/build-logs/{name:str}.txt", text, methods=["GET", "HEAD"]),
        Route("/build-logs/{name:str}", page, methods=["GET", "HEAD"]),
    ]
