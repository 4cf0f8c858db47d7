"""JSON web APIs of repository hosts and DOI services, with conditional requests.

Every answer with an ``ETag`` is remembered (bounded, per URL and credential); the next request for
the same URL sends ``If-None-Match`` and a ``304 Not Modified`` reuses the remembered body, which
GitHub does not count against its rate limit.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from bindery import http_clients


MAX_HOPS = 5  # redirects followed one checked hop at a time
REDIRECTS = (301, 302, 303, 307, 308)
# hop(url) -> (URL to request, extra headers, httpx extensions): checks where one request goes
# (raising to refuse it) and may pin it to the address it checked.
Hop = Callable[[str], Awaitable[tuple[str, dict[str, str], dict[str, Any]]]]


class ApiUnavailable(Exception):
    """The API did not answer usefully (network error, 5xx, rate limit): try another way."""


@dataclass(frozen=True)
class ApiAnswer:
    status: int
    body: Any  # parsed JSON (None when the body is not JSON)
    cached: bool = False  # from a 304: the remembered body


class ApiClient:
    def __init__(self, timeout: float, max_entries: int = 4096) -> None:
        # APIs answer a renamed repository with a redirect to its new API address: followed.
        self.client = http_clients.async_client(timeout=timeout, follow_redirects=True)
        self.max_entries = max_entries
        self._etags: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self.requests = 0  # requests sent (for tests and metrics)
        self.not_modified = 0
        # What the last answer carrying GitHub's rate-limit header said (for /metrics).
        self.rate_limit_remaining: int | None = None

    async def get_json(self, url: str, headers: dict[str, str] | None = None,
                       params: dict[str, str] | None = None, hop: Hop | None = None) -> ApiAnswer:
        """GET `url` as JSON. With `hop`, redirects are followed one hop at a time, each (the
        first included) checked and pinned by it; without, httpx follows them."""
        headers = {"Accept": "application/json", **(headers or {})}
        key = self._key(url, params, headers)
        remembered = self._etags.get(key)
        if remembered is not None:
            headers["If-None-Match"] = remembered[0]
        self.requests += 1
        try:
            response = await self._get(url, headers, params, hop)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"{type(exc).__name__} from {url}") from None
        remaining = response.headers.get("x-ratelimit-remaining", "")
        if remaining.isdigit():
            self.rate_limit_remaining = int(remaining)
        if response.status_code == 304 and remembered is not None:
            self.not_modified += 1
            self._etags.move_to_end(key)
            return ApiAnswer(200, remembered[1], cached=True)
        # 403: GitHub's primary and secondary rate limits (the latter without a header to tell).
        if response.status_code >= 500 or response.status_code in (403, 429):
            raise ApiUnavailable(f"HTTP {response.status_code} from {url}")
        try:
            body = response.json()
        except ValueError:
            body = None
        etag = response.headers.get("etag")
        if response.status_code == 200 and etag:
            self._etags[key] = (etag, body)
            self._etags.move_to_end(key)
            while len(self._etags) > self.max_entries:
                self._etags.popitem(last=False)
        return ApiAnswer(response.status_code, body)

    async def _get(self, url: str, headers: dict[str, str], params: dict[str, str] | None,
                   hop: Hop | None) -> httpx.Response:
        if hop is None:
            return await self.client.get(url, headers=headers, params=params)
        for _ in range(MAX_HOPS + 1):
            target, extra, extensions = await hop(url)
            response = await self.client.get(target, headers={**headers, **extra}, params=params,
                                             extensions=extensions, follow_redirects=False)
            location = response.headers.get("location")
            if response.status_code not in REDIRECTS or not location:
                return response
            # relative to the URL as named (not the pinned address); the Location has its query
            url, params = urljoin(str(httpx.URL(url, params=params)), location), None
        raise ApiUnavailable(f"more than {MAX_HOPS} redirects from {url}")

    @staticmethod
    def _key(url: str, params: dict[str, str] | None, headers: dict[str, str]) -> str:
        # Per credential: one token's private answer is never served to a request without it.
        who = hashlib.sha256(headers.get("Authorization", "").encode()).hexdigest()[:16]
        return f"{url}?{sorted((params or {}).items())}#{who}"

    async def aclose(self) -> None:
        await self.client.aclose()
