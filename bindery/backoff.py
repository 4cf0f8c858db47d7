"""The one backoff and the one wait-until: every retry and every poll in bindery is bounded the same way.

Why one place: retry loops and "wait until it is up" pollers each used to carry their own pause, their own
bound (or none) and their own words on giving up. Here:

- :class:`Backoff` says how many tries, how long in all, and how the pause grows between tries;
- :func:`wait_until` / :func:`wait_until_async` ask a question until it answers (a truthy value, returned) and at
  the bound raise :class:`WaitTimeout` saying what was awaited, for how long, and the last answer or error.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """At most ``attempts`` tries and ``deadline`` seconds; delays double from ``first`` up to ``cap``."""

    attempts: int = 6
    deadline: float = 120.0
    first: float = 0.5
    factor: float = 2.0
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """The pause after try number ``attempt`` (1-based)."""
        try:
            return min(self.cap, self.first * self.factor ** max(0, attempt - 1))
        except OverflowError:  # thousands of fast polls: the growth has long reached the cap
            return self.cap


class WaitTimeout(TimeoutError):
    """What was awaited did not come within the bound; the message says what, how long, and the last answer."""


def _give_up(what: str, timeout: float, tries: int, last: Any, error: BaseException | None) -> WaitTimeout:
    seen = f"last error: {type(error).__name__}: {error}" if error is not None else f"last answer: {last!r}"
    return WaitTimeout(f"{what} did not happen within {timeout:g} s ({tries} checks; {seen})")


def _polls(interval: float, cap: float | None) -> Backoff:
    return Backoff(attempts=1 << 30, first=interval, factor=1.0 if cap is None else 1.5, cap=cap or interval)


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1,
               cap: float | None = None, errors: tuple[type[BaseException], ...] = (),
               sleep: Callable[[float], Any] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> T:
    """Call ``check`` until it returns something truthy (returned) or ``timeout`` seconds pass.

    Pauses start at ``interval`` and grow to ``cap`` (None: a steady ``interval``); exceptions of ``errors``
    count as "not yet" (e.g. a connection refused while a service starts); others propagate.
    """
    pauses = _polls(interval, cap)
    deadline = clock() + timeout
    tries, last, error = 0, None, None
    while True:
        tries += 1
        try:
            last, error = check(), None
        except errors as exc:
            error = exc
        else:
            if last:
                return last
        left = deadline - clock()
        if left <= 0:
            raise _give_up(what, timeout, tries, last, error)
        sleep(min(pauses.delay(tries), left))


async def wait_until_async(check: Callable[[], T | Awaitable[T]], *, timeout: float, what: str,
                           interval: float = 0.1, cap: float | None = None,
                           errors: tuple[type[BaseException], ...] = ()) -> T:
    """:func:`wait_until` on the event loop; ``check`` may be a coroutine function."""
    pauses = _polls(interval, cap)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    tries, last, error = 0, None, None
    while True:
        tries += 1
        try:
            answer = check()
            if inspect.isawaitable(answer):
                answer = await asyncio.wait_for(answer, max(0.001, deadline - loop.time()))
            last, error = answer, None
        except errors as exc:
            error = exc
        except TimeoutError as exc:  # the check itself ran into the bound
            if loop.time() < deadline:
                raise
            error = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        left = deadline - loop.time()
        if left <= 0:
            raise _give_up(what, timeout, tries, last, error)
        await asyncio.sleep(min(pauses.delay(tries), left))
