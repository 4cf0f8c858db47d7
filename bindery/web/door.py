"""The front door: who may start a launch, checked before any work is done.

Contract with the event-stream handler (``bindery/web/app.py``)::

    door = Door(settings)
    refusal = await door.admit(request, provider, spec)   # Refusal | None
    if refusal is not None:
        # send ONE in-band event and end the stream (HTTP 200, text/event-stream), because
        # EventSource and @jupyterhub/binderhub-client cannot read a 4xx body:
        #   {"phase": "failed", "status_code": refusal.status_code, "message": refusal.message}
        # with refusal.headers on the response (rate-limit headers, Retry-After on 429).
        # Plain HTTP callers can use refusal.response() (JSON body, real status code).
    headers = await door.headers(request)   # RateLimit-* for the client, to add to admitted responses

``admit`` returns a ``Refusal`` dataclass (not a Response) so the caller can choose the wire form.
Checks, cheapest and most definite first, so a refused request never spends rate-limit budget:
blocked client network (403), allowed/banned spec patterns (403), build token (403), rate limit (429).
Reconnections to a launch already under way (``Last-Event-ID``) should not be sent through ``admit``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse

from bindery.launches.homes import RESUME
from bindery.outbound import networks
from bindery.settings import Settings
from bindery.specrules import SpecRules
from bindery.web import tokens
from bindery.web.client_keys import client_key
from bindery.state.base import StateStore
from bindery.web.ratelimit import Quota, SharedTokenBucket, TokenBucket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Refusal:
    status_code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def event(self) -> dict[str, object]:
        """The in-band ``failed`` event for event-stream clients."""
        return {"phase": "failed", "status_code": self.status_code, "message": self.message}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"status_code": self.status_code, "message": self.message},
            status_code=self.status_code,
            headers=self.headers,
        )


def _address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


class Door:
    def __init__(self, settings: Settings, store: StateStore | None = None) -> None:
        self.settings = settings
        self.blocked = networks(settings.security.blocked_networks)
        self.trusted = networks(settings.security.trusted_proxies)
        self.rules = SpecRules(settings)
        # With a state store the buckets are shared by every process of the service.
        limit = settings.security.rate_limit_per_minute
        self.bucket: TokenBucket | SharedTokenBucket | None = None
        if limit > 0:
            self.bucket = SharedTokenBucket(limit, 60.0, store) if store is not None \
                else TokenBucket(limit, 60.0)
        secret = settings.security.build_token_secret
        self.secret = secret.get_secret_value().encode() if secret else None

    # -- who is asking -------------------------------------------------------------------------
    def client_address(self, request: Request) -> str:
        """The client's address: the peer, or, behind trusted proxies, the nearest untrusted hop
        of X-Forwarded-For (read right to left, since only trusted proxies' appends are honest)."""
        peer = request.client.host if request.client else ""
        address = _address(peer)
        if address is None or not self._trusted(address):
            return peer
        hops = [h for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            hop_address = _address(hop)
            if hop_address is None:
                break  # garbage from the client side: stop at the last address we can vouch for
            address = hop_address
            if not self._trusted(address):
                break
        return str(address)

    def client_key(self, request: Request) -> str:
        """What the client's limits count under: its address, or its /64 for IPv6
        (bindery/web/client_keys.py)."""
        return client_key(self.client_address(request))

    def _trusted(self, address: Address) -> bool:
        return any(address in net for net in self.trusted)

    def request_origin(self, request: Request) -> str:
        # Browsers send no Origin on same-origin GETs (EventSource), but they do send Referer.
        return tokens.origin_of(request.headers.get("origin") or request.headers.get("referer", ""))

    def page_origin(self, request: Request) -> str:
        """Origin a page served for this request is seen under, for binding build tokens."""
        return tokens.origin_of(self.settings.service.public_url or str(request.base_url))

    # -- build tokens --------------------------------------------------------------------------
    @property
    def tokens_required(self) -> bool:
        return self.secret is not None

    def issue_token(self, request: Request, provider: str, spec: str) -> str | None:
        if self.secret is None:
            return None
        return tokens.issue(self.secret, provider, spec, self.page_origin(request),
                            self.settings.security.build_token_expiry_seconds)

    # -- the checks ----------------------------------------------------------------------------
    async def admit(self, request: Request, provider: str, spec: str) -> Refusal | None:
        address = _address(self.client_address(request))
        if address is not None and any(address in net for net in self.blocked):
            return Refusal(403, "Launches from your network are not allowed on this service.")

        # A resume link names no repository: the launch judges the one it recorded.
        refused = None if provider == RESUME else self.rules.refusal(provider, spec)
        if refused is not None:
            return Refusal(403, refused)

        if self.secret is not None:
            token = request.query_params.get("build_token", "")
            if not token:
                return Refusal(403, "This service needs a build token to launch. Start the launch "
                               "from its launch page (/v2/...), which provides one.")
            try:
                tokens.verify(self.secret, token, provider, spec, self.request_origin(request))
            except tokens.BadToken as e:
                return Refusal(403, str(e))

        if self.bucket is not None:
            quota = self.bucket.take(self.client_key(request))
            if not isinstance(quota, Quota):
                quota = await quota
            if not quota.allowed:
                return Refusal(
                    429,
                    f"Too many launches from your address: the limit is {quota.limit} per minute. "
                    f"Try again in {quota.retry_after} seconds.",
                    quota.headers(),
                )
        return None

    async def headers(self, request: Request) -> dict[str, str]:
        """Standard rate-limit headers for this client (empty when there is no limit)."""
        if self.bucket is None:
            return {}
        quota = self.bucket.peek(self.client_key(request))
        return (quota if isinstance(quota, Quota) else await quota).headers()
