"""The one backoff and wait-until: bounded, pauses that grow to a cap, and a message that says what was awaited."""

from __future__ import annotations

import asyncio
import time

import pytest

from bindery.backoff import Backoff, WaitTimeout, wait_until, wait_until_async


def test_delays_double_to_the_cap():
    b = Backoff(first=0.5, factor=2.0, cap=3.0)
    assert [b.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.delay(10**6) == 3.0


def test_wait_until_returns_the_answer_once_it_comes():
    answers = iter([None, 0, "", "here"])
    pauses: list[float] = []
    assert wait_until(lambda: next(answers), timeout=60, what="x", interval=0.1, cap=1.0,
                      sleep=pauses.append) == "here"
    assert pauses == pytest.approx([0.1, 0.15, 0.225])


def test_wait_until_gives_up_at_the_bound_saying_what_and_the_last_error():
    now = [0.0]

    def refused() -> bool:
        raise ConnectionRefusedError("nobody home")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(WaitTimeout) as caught:
        wait_until(refused, timeout=2, what="the hub answering", errors=(ConnectionError,), sleep=sleep,
                   clock=lambda: now[0])
    assert str(caught.value).startswith("the hub answering did not happen within 2 s (")
    assert "ConnectionRefusedError: nobody home" in str(caught.value)
    assert now[0] == pytest.approx(2.0)
    with pytest.raises(ValueError):  # errors not named are not "not yet"
        wait_until(lambda: int("x"), timeout=2, what="y", sleep=sleep)


async def test_async_wait_until_takes_coroutines_and_is_bounded():
    calls = 0

    async def ready() -> bool:
        nonlocal calls
        calls += 1
        return calls >= 3

    assert await wait_until_async(ready, timeout=10, what="ready", interval=0.01) is True
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout, match="never did not happen within 0.3 s"):
        await wait_until_async(lambda: False, timeout=0.3, what="never", interval=0.05)
    assert time.monotonic() - t0 < 5

    async def hangs() -> bool:
        await asyncio.sleep(30)
        return True

    with pytest.raises(WaitTimeout):
        await wait_until_async(hangs, timeout=0.3, what="a hanging check")
