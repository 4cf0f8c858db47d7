"""Running one check with the one bounded backoff (bindery/backoff.py): retry transient failures, stop at once on
real ones.

Why separate: every stage of a deploy (health wait, canary launch, server open) needs the same discipline — a bound
on attempts *and* on total time, and a record of each attempt for the report.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from bindery.backoff import Backoff
from bindery.deploy.classify import Kind, classify_exception
from bindery.deploy.report import Attempt, CheckResult


def run_check(
    name: str,
    check: Callable[[], dict[str, Any] | None],
    backoff: Backoff = Backoff(),
    *,
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """Call ``check`` until it returns (pass; its dict becomes the detail), fails for real, or the bound is hit."""
    pause = sleep or threading.Event().wait
    result = CheckResult(name)
    start = clock()
    for number in range(1, backoff.attempts + 1):
        t0 = clock()
        try:
            detail = check() or {}
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
            failed = classify_exception(exc)
            result.attempts.append(Attempt(number, False, clock() - t0, failed.kind.value, failed.reason,
                                           failed.evidence))
            if failed.kind is Kind.REAL:
                return result
            delay = backoff.delay(number)
            if number == backoff.attempts or clock() - start + delay > backoff.deadline:
                result.attempts[-1].reason += f" (gave up after {number} attempts, {clock() - start:.1f} s)"
                return result
            pause(delay)
            continue
        result.attempts.append(Attempt(number, True, clock() - t0))
        result.ok = True
        result.detail = detail
        return result
    return result
