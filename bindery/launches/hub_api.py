"""The JupyterHub adapter: the few REST API calls bindery makes, each with a timeout.

Connection failures and 5xx answers raise `HubUnavailable` (transient: the launcher may retry);
anything else unexpected raises `HubError` with the hub's own message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from bindery import event_stream, http_clients


PAGINATION = "application/jupyterhub-pagination+json"
MAX_PAGES = 100  # of up to 200 users each (the hub's page limit)


def server_path(name: str) -> str:
    """The API path of a server: ``user`` is that user's default server (an anonymous launch's),
    ``person/server`` a named server of a signed-in person (bindery/launches/people.py)."""
    person, slash, server = name.rpartition("/")
    if not slash:
        return f"/users/{quote(name)}/server"
    return f"/users/{quote(person)}/servers/{quote(server)}"


class HubError(Exception):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class HubUnavailable(HubError):
    """The hub did not answer or answered 5xx: worth another try."""


class Hub:
    def __init__(self, api_url: str, token: str, timeout: float) -> None:
        self.api_url = api_url.rstrip("/")
        self.client = http_clients.async_client(
            base_url=self.api_url,
            headers={"Authorization": f"token {token}"},
            timeout=timeout,
            # Every launch holds a progress stream open for the whole spawn: httpx's default pool
            # (100 connections) made launch 101 fail with PoolTimeout under a crowd.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )
        self._listing: asyncio.Future[tuple[float, list[dict[str, Any]]]] | None = None

    async def _request(self, method: str, path: str, ok: tuple[int, ...],
                       json_body: Any = None, timeout: float | None = None,
                       params: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> httpx.Response:
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = await self.client.request(method, path, json=json_body, **kwargs)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"JupyterHub did not answer {method} {path}: "
                                 f"{type(exc).__name__} {exc}".strip()) from exc
        if response.status_code in ok:
            return response
        message = _hub_message(response)
        cls = HubUnavailable if response.status_code >= 500 else HubError
        raise cls(f"JupyterHub answered {response.status_code} to {method} {path}: {message}",
                  response.status_code)

    async def version(self) -> str:
        response = await self._request("GET", "/", ok=(200,))
        return str(response.json().get("version", ""))

    async def create_user(self, name: str) -> None:
        await self._request("POST", f"/users/{quote(name)}", ok=(201,))

    async def get_user(self, name: str) -> dict[str, Any] | None:
        response = await self._request("GET", f"/users/{quote(name)}", ok=(200, 404))
        return response.json() if response.status_code == 200 else None

    async def list_users(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every user (`state="active"`: those with a server, ready or pending), all pages.

        Without the pagination Accept header the hub silently cuts the list at its page limit
        (200): quotas above that would undercount. Bounded by MAX_PAGES requests.
        """
        users: list[dict[str, Any]] = []
        params: dict[str, Any] = {"state": state} if state else {}
        for _ in range(MAX_PAGES):
            response = await self._request("GET", "/users", ok=(200,), params=params,
                                           headers={"Accept": PAGINATION})
            page = response.json()
            if isinstance(page, list):  # a hub without pagination answers the plain list
                return users + page
            users.extend(page.get("items", []))
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return users
            params = {**params, "offset": following["offset"], "limit": following["limit"]}
        raise HubError(f"JupyterHub lists more than {MAX_PAGES} pages of users")

    async def active_users(self) -> tuple[float, list[dict[str, Any]]]:
        """(when asked, users with a server): one listing shared by every caller while it runs.

        A crowd of launches each asks for the quota snapshot; sharing the listing in flight
        turns N listings of N users (quadratic work in the hub's single process) into a few.
        The time is when the shared listing was asked (wall clock, as quota snapshots need).
        """
        if self._listing is None or self._listing.done():
            self._listing = asyncio.ensure_future(self._stamped_active_users())
        return await asyncio.shield(self._listing)

    async def _stamped_active_users(self) -> tuple[float, list[dict[str, Any]]]:
        taken_at = time.time()
        return taken_at, await self.list_users(state="active")

    async def delete_user(self, name: str) -> bool:
        """Delete the user; False when the hub refuses because its server is still stopping."""
        response = await self._request("DELETE", f"/users/{quote(name)}", ok=(204, 404, 400))
        return response.status_code != 400

    async def start_server(self, name: str, options: dict[str, Any], timeout: float) -> int:
        """POST the start request; returns 201 (ready) or 202 (spawn still pending)."""
        response = await self._request("POST", server_path(name), ok=(201, 202),
                                       json_body=options, timeout=timeout)
        return response.status_code

    async def stop_server(self, name: str) -> None:
        """Stop the server; a person's named server is removed too (gone from their list and
        their limit; its home, if any, is a volume of its own and stays)."""
        body = {"remove": True} if "/" in name else None
        await self._request("DELETE", server_path(name), ok=(202, 204, 400, 404), json_body=body)

    async def mint_token(self, name: str, expires_in: int, note: str, scopes: list[str]) -> str:
        response = await self._request("POST", f"/users/{quote(name)}/tokens", ok=(200, 201),
                                       json_body={"expires_in": expires_in, "note": note,
                                                  "scopes": scopes})
        return str(response.json()["token"])

    async def progress(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Events of the user's spawn (replayed from its start) until ready/failed.

        Raises HubError(400) when no spawn is pending (yet), so callers can ask again.
        """
        path = server_path(name) + "/progress"
        try:
            async with self.client.stream("GET", path, timeout=httpx.Timeout(
                    self.client.timeout.connect, read=None)) as response:
                if response.status_code != 200:
                    await response.aread()
                    cls = HubUnavailable if response.status_code >= 500 else HubError
                    raise cls(f"JupyterHub answered {response.status_code} to GET {path}: "
                              f"{_hub_message(response)}", response.status_code)
                async for message in event_stream.amessages(response.aiter_lines()):
                    try:
                        yield json.loads(message.data)
                    except ValueError:
                        continue
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"Lost JupyterHub's progress stream: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        await self.client.aclose()


def _hub_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", "")) or response.reason_phrase
    except ValueError:
        return response.text[:200] or response.reason_phrase
