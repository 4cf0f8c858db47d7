"""The one reader of server-sent event streams: parsing, and following a stream that may break.

Who reads one: the CLI (``bindery launch`` follows a launch), the deploy checks (a canary launch), the hub
client (a spawn's progress), and the tests and benchmarks. A launch's stream can break mid-way (a proxy timeout,
a replica restarting); the service resumes a launch for a client that comes back with ``Last-Event-ID``, as a
browser's EventSource does. :func:`follow` does the same: it remembers the last ``id:``, and when the stream
breaks or ends before ``done`` says the end has come, it connects again with that id, at most ``retries``
times in a row without a new event, pausing by the one backoff (bindery/backoff.py) between tries.

Parsing follows the HTML spec's rules for event streams, the parts bindery's servers use: ``data:`` lines (joined
with newlines), ``id:``, ``event:``, comment lines (keepalives) ignored, a blank line ends a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bindery.backoff import Backoff

RESUME = Backoff(attempts=5, deadline=60.0, first=0.5, factor=2.0, cap=5.0)
RECONNECTS = 20  # in all, even when each brought news: a stream that keeps breaking is not followed forever


@dataclass(frozen=True)
class Message:
    data: str
    id: str | None = None  # the last id the stream set, as EventSource keeps it
    event: str = "message"


class StreamRefused(Exception):
    """The server answered the stream's request with another status than 200."""

    def __init__(self, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{url} answered HTTP {status_code}")
        self.url, self.status_code, self.body = url, status_code, body


class StreamBroken(Exception):
    """The stream broke (or ended early) and could not be resumed within the bound."""


class StreamTimeout(TimeoutError):
    """The stream's last event did not come by the caller's deadline."""


class Parser:
    """Feed lines, get messages (one per blank line that ends some data)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._data: list[str] = []
        self._event = ""

    def feed(self, line: str) -> Message | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            message = Message("\n".join(self._data), self.last_id, self._event or "message")
            self._data, self._event = [], ""
            return message
        if line.startswith(":"):
            return None  # a comment: keepalive
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self.last_id = value
        elif field == "event":
            self._event = value
        return None


def messages(lines: Iterable[str]) -> Iterator[Message]:
    """Messages of a finished body's lines (a last message without its blank line counts too)."""
    parser = Parser()
    for line in [*lines, ""]:
        message = parser.feed(line)
        if message is not None:
            yield message


async def amessages(lines: AsyncIterable[str]) -> AsyncIterator[Message]:
    """Messages of a response's lines as they come (for readers that manage the connection themselves)."""
    parser = Parser()
    async for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


def _check(until: float | None, url: str) -> None:
    if until is not None and time.monotonic() > until:
        raise StreamTimeout(f"the event stream at {url} did not reach its end in time")


def _headers(headers: Mapping[str, str] | None, last_id: str | None) -> dict[str, str]:
    out = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
    if last_id:
        out["Last-Event-ID"] = last_id
    return out


def _broken(url: str, connections: int, why: str) -> StreamBroken:
    return StreamBroken(f"the event stream at {url} broke and could not be resumed "
                        f"({connections - 1} reconnections): {why}")


async def follow(client: httpx.AsyncClient, url: str, *, done: Callable[[Message], bool],
                 headers: Mapping[str, str] | None = None, timeout: httpx.Timeout | float | None = None,
                 last_id: str | None = None, retries: int = RESUME.attempts,
                 backoff: Backoff = RESUME, until: float | None = None,
                 reconnects: int = RECONNECTS) -> AsyncIterator[Message]:
    """Messages of the stream at ``url`` until one that is ``done`` (yielded too), resuming with Last-Event-ID.

    Raises StreamRefused on a status other than 200 and StreamBroken when ``retries`` reconnections in a row
    brought no message, or after ``reconnects`` reconnections in all. ``retries=0``: no resume (one connection).
    ``until`` (time.monotonic): StreamTimeout after it, checked on every line, keepalives too. A connection that
    fails before the stream gave an id raises httpx's own error (there is nothing to resume).
    """
    failures = connections = 0
    extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    while True:
        parser = Parser()
        parser.last_id = last_id
        why = "the stream ended before its last event"
        try:
            async with client.stream("GET", url, headers=_headers(headers, last_id), **extra) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise StreamRefused(url, response.status_code, response.text)
                async for line in response.aiter_lines():
                    _check(until, url)
                    message = parser.feed(line)
                    if message is None:
                        continue
                    failures = 0
                    last_id = parser.last_id
                    yield message
                    if done(message):
                        return
        except httpx.TransportError as exc:
            if not parser.last_id:
                raise  # nothing to resume: the caller sees the network's own error
            why = f"{type(exc).__name__}"
        last_id = parser.last_id
        failures += 1
        connections += 1
        # without an id there is nothing to resume
        if failures > retries or connections > reconnects or not last_id:
            raise _broken(url, connections, why)
        _check(until, url)
        await asyncio.sleep(backoff.delay(failures))


def follow_sync(client: httpx.Client, url: str, *, done: Callable[[Message], bool],
                headers: Mapping[str, str] | None = None, last_id: str | None = None,
                retries: int = RESUME.attempts, backoff: Backoff = RESUME,
                sleep: Callable[[float], Any] | None = None, until: float | None = None,
                reconnects: int = RECONNECTS) -> Iterator[Message]:
    """:func:`follow` for synchronous callers (the deploy checks)."""
    pause = sleep or time.sleep
    failures = connections = 0
    while True:
        parser = Parser()
        parser.last_id = last_id
        why = "the stream ended before its last event"
        try:
            with client.stream("GET", url, headers=_headers(headers, last_id)) as response:
                if response.status_code != 200:
                    response.read()
                    raise StreamRefused(url, response.status_code, response.text)
                for line in response.iter_lines():
                    _check(until, url)
                    message = parser.feed(line)
                    if message is None:
                        continue
                    failures = 0
                    last_id = parser.last_id
                    yield message
                    if done(message):
                        return
        except httpx.TransportError as exc:
            if not parser.last_id:
                raise  # nothing to resume: the caller sees the network's own error
            why = f"{type(exc).__name__}"
        last_id = parser.last_id
        failures += 1
        connections += 1
        if failures > retries or connections > reconnects or not last_id:
            raise _broken(url, connections, why)
        _check(until, url)
        pause(backoff.delay(failures))
