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


class _Resume:
    """The bookkeeping of one followed stream, shared by :func:`follow` and :func:`follow_sync`: the last id,
    the bounds on reconnecting, and the deadline."""

    def __init__(self, url: str, last_id: str | None, retries: int, reconnects: int, backoff: Backoff,
                 until: float | None) -> None:
        self.url, self.last_id, self.retries, self.reconnects = url, last_id, retries, reconnects
        self.backoff, self.until = backoff, until
        self.failures = self.connections = 0
        self.parser = Parser()

    def request_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        self.parser = Parser()
        self.parser.last_id = self.last_id
        out = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
        if self.last_id:
            out["Last-Event-ID"] = self.last_id
        return out

    def refused(self, response: httpx.Response) -> StreamRefused:
        return StreamRefused(self.url, response.status_code, response.text)

    def feed(self, line: str) -> Message | None:
        if self.until is not None and time.monotonic() > self.until:
            raise StreamTimeout(f"the event stream at {self.url} did not reach its end in time")
        message = self.parser.feed(line)
        if message is not None:
            self.failures, self.last_id = 0, self.parser.last_id
        return message

    def lost(self, exc: httpx.TransportError) -> str:
        if not self.parser.last_id:
            raise exc  # nothing to resume: the caller sees the network's own error
        return type(exc).__name__

    def pause(self, why: str) -> float:
        """The pause before connecting again, or StreamBroken/StreamTimeout when the bounds are reached."""
        self.last_id = self.parser.last_id
        self.failures += 1
        self.connections += 1
        if self.failures > self.retries or self.connections > self.reconnects or not self.last_id:
            raise StreamBroken(f"the event stream at {self.url} broke and could not be resumed "
                               f"({self.connections - 1} reconnections): {why}")
        if self.until is not None and time.monotonic() > self.until:
            raise StreamTimeout(f"the event stream at {self.url} did not reach its end in time")
        return self.backoff.delay(self.failures)


ENDED = "the stream ended before its last event"


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
    state = _Resume(url, last_id, retries, reconnects, backoff, until)
    extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    while True:
        why = ENDED
        try:
            async with client.stream("GET", url, headers=state.request_headers(headers), **extra) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise state.refused(response)
                async for line in response.aiter_lines():
                    if (message := state.feed(line)) is not None:
                        yield message
                        if done(message):
                            return
        except httpx.TransportError as exc:
            why = state.lost(exc)
        await asyncio.sleep(state.pause(why))


def follow_sync(client: httpx.Client, url: str, *, done: Callable[[Message], bool],
                headers: Mapping[str, str] | None = None, last_id: str | None = None,
                retries: int = RESUME.attempts, backoff: Backoff = RESUME,
                sleep: Callable[[float], Any] = time.sleep, until: float | None = None,
                reconnects: int = RECONNECTS) -> Iterator[Message]:
    """:func:`follow` for synchronous callers (the deploy checks)."""
    state = _Resume(url, last_id, retries, reconnects, backoff, until)
    while True:
        why = ENDED
        try:
            with client.stream("GET", url, headers=state.request_headers(headers)) as response:
                if response.status_code != 200:
                    response.read()
                    raise state.refused(response)
                for line in response.iter_lines():
                    if (message := state.feed(line)) is not None:
                        yield message
                        if done(message):
                            return
        except httpx.TransportError as exc:
            why = state.lost(exc)
        sleep(state.pause(why))
