"""bindery's HTTP service: the event stream, /health, /versions, /metrics, and the UI's pages.

This layer only turns pipeline events into HTTP; the launch itself lives in `bindery.launches.pipeline`.
"""

from __future__ import annotations

import contextlib
import logging
from importlib import metadata
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bindery.launches import pipeline
from bindery._version import __version__
from bindery import service_log
from bindery.storage.keeper import StorageKeeper
from bindery.state import failure_log
from bindery.events import Event, failed
from bindery.launches.services import Services
from bindery.builds.waiting_line import SharedWaitingLine
from bindery.launches.pools import Pools, pools_enabled
from bindery.launches.reservations import StoreReservationBook
from bindery.launches.warm_images import WarmImages, wanted_images
from bindery.settings import Settings
from bindery.stack.base_image import image_name as base_image_name
from bindery.metrics import StackRestarts
from bindery.stack import supervisor
from bindery.state import StoreDamaged, open_store, unavailable_errors
from bindery.web import build_log_pages as buildlogs, home_pages, ui
from bindery.launches.homes import RESUME, resume_key, resume_spec, resume_urls, valid_secret
from bindery.launches import launch_records as launches
from bindery.web.door import Door, Refusal
from bindery.web.health import Health
from bindery.web.signin import SignIn, enabled as signin_enabled
from bindery.launches.sessions import BadEventId, Bounds, Sessions


log = logging.getLogger(__name__)


def raw_spec(request: Request, prefix: str) -> str:
    """The spec exactly as sent: Starlette decodes %2F in path params, but git/gl specs need it."""
    raw = request.scope.get("raw_path", b"").decode("latin-1")
    provider = request.path_params["provider"]
    marker = f"{prefix}/{provider}/"
    return raw.split(marker, 1)[1] if marker in raw else request.path_params["spec"]


def create_app(settings: Settings) -> Starlette:
    state: dict = {}
    store = open_store(settings)  # what outlives this process: sessions, records, quotas, rates
    book = launches.LaunchBook(store, settings.launches.cull_max_age_seconds)  # for 424 pages

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = Services.create(settings, store=store)
        # An unfinished launch cannot hold a place longer than its longest possible run.
        services.reservations = StoreReservationBook(store, max_pending=settings.builds.build_timeout
                                                     + settings.launches.prepull_timeout
                                                     + settings.launches.launch_timeout * 2)
        state["services"] = services

        async def remove_user(user: str) -> None:  # a launch another process left behind
            await services.reservations.release(user)
            if not settings.service.api_only:
                await services.launcher.remove(user, "abandoned")

        async def on_ready(session, event) -> None:
            user = (event.model_extra or {}).get("user")
            if user and session.provider == RESUME:  # relaunch the repository, not the link
                provider, _, spec = str((event.model_extra or {}).get(
                    "binder_persistent_request", "")).removeprefix("v2/").partition("/")
                if spec:
                    await book.remember(user, provider, spec)
            elif user:
                await book.remember(user, session.provider, session.spec)

        sessions = Sessions(
            lambda p, s, **options: pipeline.launch(services, p, s, **options), store,
            remove_user, Bounds(
                grace=settings.launches.abandon_grace_seconds, heartbeat=settings.state.state_heartbeat_seconds,
                stale=settings.state.state_stale_seconds, max_open=settings.security.max_open_launches,
                max_open_per_client=settings.security.max_open_launches_per_client,
                kept_bytes=settings.builds.session_log_max_bytes),
            on_ready=on_ready)
        state["sessions"] = sessions
        # Build queue positions and order are the same in every process of the service.
        services.builds.line = SharedWaitingLine(
            store, sessions.owner, stale_after=max(15.0, 10 * settings.builds.build_slot_poll_seconds))
        if pools_enabled(settings) and not settings.service.api_only:  # warm pools, shared by replicas
            services.pools = Pools(
                settings, store, services.hub, services.launcher, services.reservations,
                lambda p, s: pipeline.prepare_image(services, p, s), sessions.owner,
                services.metrics.registry)
            services.pools.start()
        if services.prepuller is not None and settings.launches.warm_images:
            services.warm_images = WarmImages(
                services.prepuller, base_image_name(settings),
                services.pools.book if services.pools is not None else None,
                settings.launches.warm_images_interval)
            services.warm_images.start()
        async def building() -> list[str]:
            # this process's builds from the moment they are asked for (queued, or starting: no
            # container yet), and every process's running ones (their containers or pods)
            running = await services.executor.running() if services.executor else []
            return [*services.builds.active, *(b.image for b in running)]

        keeper = StorageKeeper(
            settings, store, services.metrics, sessions.owner,
            wanted=lambda: wanted_images(base_image_name(settings),
                                         services.pools.book if services.pools else None),
            building=building, homes=services.homes)
        services.image_used = keeper.used
        services.store_full = keeper.store_full
        if not settings.service.api_only:  # the embedded stack's supervisor, when it has run
            services.metrics.registry.register(StackRestarts(lambda: {
                name: int(part.get("restarts", 0))
                for name, part in supervisor.read(settings).get("parts", {}).items()}))
        services.on_failure = lambda failure: failure_log.remember(store, failure)
        keeper.start()
        state["health"] = Health(services, store=store)
        state["drain"] = sessions.hand_over  # called by the SIGTERM handler (web/drain.py)
        sessions.start_monitor()
        try:
            yield
        finally:
            await keeper.aclose()
            await sessions.aclose()
            await services.aclose()
            if signin is not None:
                await signin.aclose()
            await store.aclose()

    door = Door(settings, store)
    # People sign in through the hub (a build service has no people).
    signin = SignIn(settings) if signin_enabled(settings) and not settings.service.api_only else None

    store_down = unavailable_errors()

    async def build_stream(request: Request) -> Response:
        try:
            return await open_stream(request)
        except store_down as exc:
            return EventSourceResponse(_one(store_failure(exc)))

    async def open_stream(request: Request) -> Response:
        sessions: Sessions = state["sessions"]
        provider = request.path_params["provider"]
        spec = raw_spec(request, "/build")
        secret = None
        if provider == RESUME:  # only the secret's hash goes further (sessions, logs, the store)
            secret = spec.split("?", 1)[0]
            if not valid_secret(secret):
                return EventSourceResponse(_one(failed(
                    "This resume link is not known here: it was never issued by this service.",
                    404)))
        last_id = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        try:
            resumed = await sessions.resume(last_id)
        except BadEventId as exc:
            return EventSourceResponse(_one(failed(str(exc), 400)), headers=headers)
        if resumed is None:
            client = door.client_key(request)
            busy = await sessions.over_limit(client)
            if busy is not None:  # before the door: a refused launch spends no rate budget
                log.info("launch of %s/%s refused: %s", provider, spec[:200], busy,
                         extra={"outcome": "launch", "status": "refused", "status_code": 429})
                return EventSourceResponse(_one(failed(busy, 429)), headers=headers)
            build_only = settings.service.api_only or _true(request.query_params.get("build_only"))
            refusal = (build_only_refusal(settings) if build_only else None) \
                or await door.admit(request, provider, spec)
            if refusal is not None:
                log.info("launch of %s/%s refused: %s", provider, spec[:200], refusal.message,
                         extra={"outcome": "launch", "status": "refused",
                                "status_code": refusal.status_code})
                event = failed(refusal.message, refusal.status_code)
                return EventSourceResponse(_one(event), headers={**headers, **refusal.headers})
            person = await signin.person(request) if signin is not None else None
            if person is None and settings.signin.sign_in == "required":
                return EventSourceResponse(_one(failed(SIGN_IN_REQUIRED, 401)), headers=headers)
            headers.update(await door.headers(request))
            if secret is not None:
                spec = resume_spec(resume_key(secret), request.query_params.get("ref"))
            # A signed-in person's launch is theirs: the session (in the store) carries who.
            options = {"person": person} if person else {}
            sid, after = await sessions.start(
                provider, spec, client, build_only=build_only,
                request_origin=request_origin(request),
                build_token=bool(request.query_params.get("build_token")), **options), -1
        else:
            sid, after = resumed
        # This request's own lines (its access line too) name the launch it starts or follows.
        service_log.set_current(service_log.LaunchContext(
            launch_id=service_log.launch_id(sid), spec=f"{provider}/{spec}"))
        if resumed is not None:
            log.info("stream resumed after event %d", after)
        ready_extra = resume_urls(settings.service.web_url, secret) if secret else None
        return EventSourceResponse(_follow(sessions, sid, after, store_down, ready_extra),
                                   headers=headers,
                                   ping=settings.service.keepalive_seconds)

    async def incomplete_build_url(request: Request) -> Response:
        event = failed("A launch URL looks like /build/<provider>/<spec>, e.g. "
                       "/build/gh/org/repo/main.", 400)
        return EventSourceResponse(_one(event))

    versions_body = {"bindery": __version__, "binderhub": __version__,
                     "builder_info": {"repo2docker-version": _installed("jupyter-repo2docker")}}

    # Any page may read /versions (as BinderHub's), unless the operator chose the origins.
    versions_headers = {} if settings.service.cors_allow_origin else {
        "Access-Control-Allow-Origin": "*"}

    async def versions(request: Request) -> Response:
        return JSONResponse(versions_body, headers=versions_headers)

    async def health(request: Request) -> Response:
        if state.get("sessions") is not None and state["sessions"].draining:
            return JSONResponse({"ok": False, "draining": True, "message": DRAINING},
                                status_code=503)  # so a load balancer stops sending here
        report = await state["health"].report()
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    async def metrics(request: Request) -> Response:
        health: Health | None = state.get("health")
        if health is not None:  # whether each part answers, for alerts (cached: one round a scrape)
            for check in (await health.report())["checks"]:
                state["services"].metrics.dependency_up.labels(check["service"]).set(
                    1 if check["ok"] else 0)
        return Response(generate_latest(state["services"].metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/build/{provider}/{spec:path}", build_stream),
        Route("/build/{rest:path}", incomplete_build_url),
        Route("/build", incomplete_build_url),
        Route("/versions", versions),
        Route("/health", health),
        Route("/metrics", metrics),
        *buildlogs.routes(settings, lambda: getattr(state.get("services"), "executor", None)),
        *([] if settings.service.api_only else home_pages.routes(
            settings, lambda: getattr(state.get("services"), "homes", None))),
        # A build service (api_only) has no pages: nobody lands on a server from it.
        *(signin.routes() if signin is not None else []),
        *([] if settings.service.api_only else ui.routes(settings, book, signin)),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[*cross_origin(settings), Middleware(RefuseWhileDraining, state=state)])
    app.state.bindery = state
    return app


def request_origin(request: Request) -> str:
    """What BinderHub's launch events record as request_origin: the Origin header (a page
    elsewhere, e.g. a book's live code), else Sec-Fetch-Site (a browser on this site sends
    "same-origin"; scripts send neither), else ""."""
    return request.headers.get("origin") or request.headers.get("sec-fetch-site") or ""


def cross_origin(settings: Settings) -> list[Middleware]:
    """BinderHub's cors_allow_origin: pages from that origin (e.g. a book's live code through Thebe)
    may open the event stream and read the JSON endpoints, answers and preflights alike. Outermost,
    so refusals (429, draining 503) reach such a page readable too."""
    origin = settings.service.cors_allow_origin
    if not origin:
        return []
    # EventSource sends Cache-Control and, when it reconnects, Last-Event-ID.
    return [Middleware(CORSMiddleware, allow_origins=[origin], allow_methods=["GET", "HEAD"],
                       allow_headers=["cache-control", "last-event-id"], max_age=600)]


STORE_DAMAGED = ("bindery's state store (where launches are recorded) is damaged, so launches "
                 "cannot be started or followed; nothing was launched. The operators can see the "
                 "cause on /health. Please try again later.")
STORE_DOWN = ("bindery cannot reach its state store (where launches are recorded), so it cannot "
              "start or resume launches right now. Please try again in a minute.")
SIGN_IN_REQUIRED = ("This Binder launches servers only for people who have signed in: open the "
                    "launch page to sign in, then launch again.")
DRAINING = ("This bindery process is shutting down (a restart or deploy); your launch goes on: "
            "reconnect, and another process continues it.")


class RefuseWhileDraining:
    """After SIGTERM every new request gets 503 (health included), so clients and the load
    balancer go to another process; streams already open are ended by the sessions."""

    def __init__(self, app: ASGIApp, state: dict) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sessions = self.state.get("sessions")
        if scope["type"] == "http" and sessions is not None and sessions.draining \
                and scope["path"] != "/health":
            response = JSONResponse({"status_code": 503, "message": DRAINING}, status_code=503,
                                    headers={"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def build_only_refusal(settings: Settings) -> Refusal | None:
    """Building without launching is for build clients the operator trusts (as in BinderHub):
    it needs build tokens or an allow list, which the door then checks."""
    if settings.security.build_token_secret is None and not settings.security.allowed_specs:
        return Refusal(403, "Building without launching is not enabled on this service: it needs "
                       "a build token secret or an allow list of repositories.")
    return None


def _installed(distribution: str) -> str:
    """The installed version of a package (read once at start-up, not per request)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


async def _one(event) -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(data=event.to_json())


async def _follow(sessions: Sessions, sid: str, after: int,
                  store_down: tuple[type[BaseException], ...],
                  ready_extra: dict[str, str] | None = None) -> AsyncIterator[ServerSentEvent]:
    """The session's events; `ready_extra` joins its `ready` event on the way out (a resume link's
    own URLs: the link's secret is in this request's path, never in the stored events)."""
    try:
        async with contextlib.aclosing(sessions.follow(sid, after)) as events:
            async for event_id, event in events:
                if ready_extra and event.phase == "ready":
                    event = Event(**{**event.data(), **ready_extra})
                yield ServerSentEvent(data=event.to_json(), id=event_id)
    except store_down as exc:  # the launch's events cannot be read: end it clearly, not cut
        yield ServerSentEvent(data=store_failure(exc).to_json())


def store_failure(exc: BaseException) -> Event:
    """The `failed` event of a launch the state store cannot carry (logged for the operators)."""
    log.error("state store unavailable: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, StoreDamaged):
        return failed(STORE_DAMAGED, 503)
    return failed(STORE_DOWN, 503)
