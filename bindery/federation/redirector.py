"""The federation's front: launches (/build/...) go to one member, everything else to the prime.

A launch goes, in this order, to: the member named by the person's sticky cookie (set on the first
launch of that URL, for ``cookie_hours``), if it is in rotation; the member that last launched this
repository, if it is in rotation (its image is in that member's registry and likely on its nodes);
else the first in rendezvous order among the members in rotation. With none in rotation, the prime
takes it (the last resort). Unlike mybinder.org's redirector, which answers 307, the launch's event
stream is relayed, so a member whose launch fails mid-way (its stream breaks, a 5xx failure, or a
failure once the server is launching) is taken out of rotation at once instead of at its next check.
A reconnecting client (Last-Event-ID) carries the cookie back to the member that runs its launch.
/versions answers the prime's; /health the federation's own state.
"""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bindery import http_clients
from bindery.event_stream import Message, Parser
from bindery.federation.member_health import FederationConfig, Member, Members
from bindery.federation.rendezvous import rank, repository_key

COOKIE = "binder-member"
RELAYED_HEADERS = ("accept", "last-event-id", "origin", "sec-fetch-site", "user-agent",
                   "cache-control")
MAX_PAGE_BYTES = 10 * 2 ** 20  # a proxied non-launch answer (pages, badges, JSON)
BROKEN = {"phase": "failed", "status_code": 503,
          "message": "The Binder running this launch stopped answering; please launch again."}


class Router:
    def __init__(self, config: FederationConfig, members: Members) -> None:
        self.config = config
        self.members = members
        self.last_member: OrderedDict[str, str] = OrderedDict()  # repository key -> member

    def choose(self, key: str, cookie: str | None) -> tuple[Member, str]:
        healthy = self.members.healthy()
        if not healthy:
            return self.config.prime, "last_resort"
        if cookie in healthy:
            return healthy[cookie], "cookie"
        cached = self.last_member.get(key)
        if cached in healthy:
            return healthy[cached], "cache"
        best = rank(key, {name: m.weight for name, m in healthy.items()})[0]
        return healthy[best], "rendezvous"

    def remember(self, key: str, member: str) -> None:
        self.last_member[key] = member
        self.last_member.move_to_end(key)
        while len(self.last_member) > self.config.remember:
            self.last_member.popitem(last=False)


def failed_mid_way(event: dict, launching: bool) -> bool:
    """A member's fault, not the request's: a 5xx failure, or any failure once its server was
    being started (a bad spec, a missing ref, a quota or a broken repository's build are not)."""
    status = event.get("status_code")
    return (isinstance(status, int) and status >= 500) or (launching and status is None)


def create_app(config: FederationConfig) -> Starlette:
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Members are reached directly or through the operator's proxy settings, as any site.
        client = http_clients.async_client(timeout=config.timeout, limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=100))
        members = Members(config, client)
        await members.check_all()
        members.start()
        state.update(client=client, members=members, router=Router(config, members))
        try:
            yield
        finally:
            await members.aclose()
            await client.aclose()

    async def build(request: Request) -> Response:
        router: Router = state["router"]
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        key = repository_key(request.url.path)
        member, reason = router.choose(key, request.cookies.get(COOKIE))
        target = member.url + path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k in RELAYED_HEADERS}
        headers["x-forwarded-for"] = request.client.host if request.client else ""
        client: httpx.AsyncClient = state["client"]
        upstream = client.build_request("GET", target, headers=headers, timeout=httpx.Timeout(
            config.timeout * 5, read=config.proxy_timeout))
        try:
            answer = await client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            state["members"].take_out(member.name, f"launch request failed: {type(exc).__name__}")
            return JSONResponse({"phase": "failed", "status_code": 503, "message":
                                 "The Binder this launch went to did not answer; please retry."},
                                status_code=503)
        response = StreamingResponse(
            relay(answer, router, state["members"], member.name, key),
            status_code=answer.status_code,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                     "X-Binder-Member": member.name, "X-Binder-Route": reason},
            media_type=answer.headers.get("content-type", "text/event-stream"))
        response.set_cookie(COOKIE, member.name, max_age=int(config.cookie_hours * 3600),
                            path=request.url.path)
        return response

    async def versions(request: Request) -> Response:
        members: Members = state["members"]
        if members.prime_versions is None:
            return JSONResponse({"message": "the prime has not answered yet"}, status_code=503)
        return JSONResponse(members.prime_versions)

    async def health(request: Request) -> Response:
        members = config.members.values()
        body = {"ok": any(m.healthy for m in members), "members": [
            {"name": m.name, "url": m.url, "weight": m.weight, "prime": m.prime,
             "in_rotation": m.healthy, **({"reason": m.reason} if m.reason else {})}
            for m in members]}
        return JSONResponse(body, status_code=200 if body["ok"] else 503)

    async def to_prime(request: Request) -> Response:
        """Pages, badges and the rest come from the prime, under this front's address."""
        path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        target = config.prime.url + path + (f"?{request.url.query}" if request.url.query else "")
        headers = {k: v for k, v in request.headers.items() if k in RELAYED_HEADERS}
        try:
            async with state["client"].stream("GET", target, headers=headers,
                                              timeout=config.timeout * 5) as answer:
                body = b""
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_PAGE_BYTES:
                        return Response("answer too large to relay", status_code=502)
        except httpx.HTTPError:
            return Response("the prime Binder did not answer", status_code=502)
        keep = {k: v for k, v in answer.headers.items()
                if k in ("content-type", "cache-control", "location", "retry-after")}
        return Response(body, status_code=answer.status_code, headers=keep)

    return Starlette(routes=[
        Route("/build/{rest:path}", build),
        Route("/versions", versions),
        Route("/health", health),
        Route("/{rest:path}", to_prime),
    ], lifespan=lifespan)


def _event(message: Message | None) -> dict:
    if message is None:
        return {}
    try:
        event = json.loads(message.data)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


async def relay(answer: httpx.Response, router: Router, members: Members, member: str,
                key: str) -> AsyncIterator[bytes]:
    """The member's event stream, line by line; watches it for the launch's outcome."""
    launching = False
    parser = Parser()  # the one event-stream reader's parser; the lines themselves are passed on as they are
    try:
        async for line in answer.aiter_lines():
            # Judged before it is passed on: whoever reads the outcome sees the rotation after it.
            event = _event(parser.feed(line))
            phase = event.get("phase")
            if phase == "launching":
                launching = True
            elif phase == "ready":
                router.remember(key, member)
            elif phase == "failed":
                if failed_mid_way(event, launching):
                    message = str(event.get("message", ""))[:200]
                    members.take_out(member, f"a launch failed mid-way: {message}")
            yield (line + "\n").encode()
        # A stream that ends without a result is a member's process handing its launches over
        # (a restart): the client reconnects with Last-Event-ID, and its cookie brings it back.
    except httpx.HTTPError as exc:
        members.take_out(member, f"a launch's event stream broke: {type(exc).__name__}")
        yield f"data: {json.dumps(BROKEN)}\n\n".encode()
    finally:
        await answer.aclose()
