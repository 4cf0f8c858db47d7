"""A resume link's own routes, authenticated by the link's secret alone: download its home as a
tar.gz, delete it. (Launching through it is the /v2 page and /build stream, provider ``resume``.)

    GET  /resume/<secret>/home.tar.gz   the home's files, streamed from the run engine
    POST /resume/<secret>/delete        forget the link; its volume is removed now, or by the
                                        home cleaner once no server uses it

A wrong or expired secret answers 404 / 410 with a message, never a 500. The secret never reaches
a log line (bindery/service_log.py redacts resume/<secret>).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import docker.errors
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from bindery.engine_clients import docker_client
from bindery.events import LaunchError
from bindery.launches.homes import RESUME, Homes, resume_key, valid_secret
from bindery.settings import Settings
from bindery.stack import base_image, home_volumes
from bindery.stack.jupyterhub import home_folder

log = logging.getLogger(__name__)


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status_code": status, "message": message}, status_code=status)


def routes(settings: Settings, homes: Callable[[], Homes | None]) -> list[BaseRoute]:
    async def home_of(request: Request):
        book = homes()
        secret = request.path_params["secret"]
        if book is None:
            raise LaunchError("This service keeps no homes.", 404)
        if not valid_secret(secret):
            raise LaunchError("This resume link is not known here.", 404)
        return book, resume_key(secret)

    async def download(request: Request) -> Response:
        try:
            book, key = await home_of(request)
            home = await book.resume_home(key)
        except LaunchError as exc:
            return _refusal(exc.status_code or 404, exc.message)
        api = docker_client(settings.run_socket, settings.launches.home_archive_timeout).api
        deadline = time.monotonic() + settings.launches.home_archive_timeout
        try:  # a launch that failed before its server started made no volume: nothing to archive
            api.inspect_volume(home.volume)
        except docker.errors.NotFound:
            api.close()
            return _refusal(404, "This home has no files yet: its server never started.")

        def body() -> Iterator[bytes]:
            try:
                yield from home_volumes.archive(api, home.volume, base_image.image_name(settings),
                                                deadline=deadline)
            except (docker.errors.APIError, home_volumes.HomeError) as exc:
                # the response has begun: a truncated archive is all that can signal it
                log.warning("archive of a home failed: %s", exc)
            finally:
                api.close()

        log.info("home archive requested", extra={"volume": home.volume})
        return StreamingResponse(body(), media_type="application/gzip", headers={
            "Content-Disposition": 'attachment; filename="home.tar.gz"',
            "Cache-Control": "no-store"})

    async def delete(request: Request) -> Response:
        try:
            book, key = await home_of(request)
            home = await book.delete_resume(key)
        except LaunchError as exc:
            return _refusal(exc.status_code or 404, exc.message)
        removed = False
        api = docker_client(settings.run_socket, 30).api
        try:
            removed = home_volumes.remove(api, home.volume, home_folder(settings))
        except docker.errors.APIError as exc:  # the cleaner removes it later
            log.warning("could not remove home volume %s now: %s", home.volume, exc)
        finally:
            api.close()
        log.info("home deleted through its resume link", extra={"volume": home.volume,
                                                                 "removed_now": removed})
        return JSONResponse({"deleted": True, "message": "Your home is deleted" + (
            "." if removed else "; its files go once its server has stopped.")})

    return [
        Route(f"/{RESUME}/{{secret}}/home.tar.gz", download, methods=["GET"]),
        Route(f"/{RESUME}/{{secret}}/delete", delete, methods=["POST"]),
    ]
