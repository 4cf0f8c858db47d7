"""Bounded retries record every attempt; the report shows checks, attempts, classification and evidence."""

from __future__ import annotations

import json

import httpx

from bindery.deploy.classify import CheckFailed
from bindery.deploy.report import Report
from bindery.backoff import Backoff
from bindery.deploy.retry import run_check

NO_WAIT = Backoff(attempts=5, deadline=60, first=0.0)


def test_transient_then_success_is_green_with_retries_visible() -> None:
    calls = iter([httpx.ConnectError("refused"), httpx.ConnectError("refused"), None])

    def check() -> dict:
        exc = next(calls)
        if exc:
            raise exc
        return {"status": 200}

    result = run_check("health", check, NO_WAIT, sleep=lambda s: None)
    assert result.ok and result.retried and len(result.attempts) == 3
    assert [a.kind for a in result.attempts] == ["transient", "transient", None]
    assert result.detail == {"status": 200}


def test_real_failure_is_not_retried() -> None:
    calls = []

    def check() -> dict:
        calls.append(1)
        raise CheckFailed.real("launch failed: boom", event={"phase": "failed"})

    result = run_check("canary launch", check, NO_WAIT, sleep=lambda s: None)
    assert not result.ok and len(calls) == 1 and result.kind == "real"


def test_transient_gives_up_at_the_bound() -> None:
    sleeps: list[float] = []
    result = run_check("health", lambda: (_ for _ in ()).throw(TimeoutError("slow")),
                       Backoff(attempts=4, deadline=100, first=1, factor=2, cap=3), sleep=sleeps.append)
    assert not result.ok and len(result.attempts) == 4 and sleeps == [1, 2, 3]
    assert "gave up after 4 attempts" in result.attempts[-1].reason


def test_deadline_bounds_total_time() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    result = run_check("x", lambda: (_ for _ in ()).throw(TimeoutError()), Backoff(attempts=100, deadline=10,
                       first=4, factor=1), sleep=sleep, clock=lambda: now[0])
    assert not result.ok and now[0] <= 10


def test_report_text_and_json() -> None:
    report = Report("staging", "deploy", "0.1.dev5+gbbb", "0.1.dev4+gaaa")
    report.add(run_check("healthy", lambda: {}, NO_WAIT))
    flaky = iter([httpx.ConnectError("connection refused"), None])
    report.add(run_check("canary launch", lambda: (e := next(flaky)) and (_ for _ in ()).throw(e) or {}, NO_WAIT,
                         sleep=lambda s: None))
    report.add(run_check("open server", lambda: (_ for _ in ()).throw(
        CheckFailed.real("GET server answered 403 Forbidden (token refused)", status=403)), NO_WAIT))
    report.finish(False)
    text = report.to_text()
    assert "deploy staging → 0.1.dev5+gbbb (was 0.1.dev4+gaaa): RED" in text
    assert "[ok  ] healthy" in text
    assert "[ok  ] canary launch      2 attempts" in text and "#1 transient: ConnectError: connection refused" in text
    assert "[FAIL] open server" in text and "real: GET server answered 403" in text and "status=403" in text
    data = json.loads(report.to_json())
    assert data["verdict"] == "red"
    assert data["failure"] == {"check": "open server", "kind": "real",
                               "reason": "GET server answered 403 Forbidden (token refused)"}
    assert [len(c["attempts"]) for c in data["checks"]] == [1, 2, 1]
