"""Transient vs real: the rule that decides what is retried."""

from __future__ import annotations

import httpx

from bindery.deploy.classify import CheckFailed, Kind, classify_exception, classify_health, classify_status


def test_network_trouble_is_transient() -> None:
    req = httpx.Request("GET", "http://x/")
    for exc in (httpx.ConnectError("refused", request=req), httpx.ReadTimeout("slow", request=req),
                ConnectionRefusedError(111, "refused"), TimeoutError("t"), httpx.RemoteProtocolError("eof", request=req)):
        assert classify_exception(exc).kind is Kind.TRANSIENT, exc


def test_bugs_are_real_not_retried_away() -> None:
    assert classify_exception(KeyError("url")).kind is Kind.REAL
    assert classify_exception(ValueError("bad json")).kind is Kind.REAL


def test_check_failed_passes_through() -> None:
    failed = CheckFailed.real("wrong version", versions={})
    assert classify_exception(failed) is failed


def test_status_codes() -> None:
    assert classify_status(200, "x") is None and classify_status(302, "x") is None
    assert classify_status(502, "x").kind is Kind.TRANSIENT
    assert classify_status(503, "x").kind is Kind.TRANSIENT
    forbidden = classify_status(403, "GET server")
    assert forbidden.kind is Kind.REAL and "403" in forbidden.reason and "token" in forbidden.reason
    assert classify_status(404, "x").kind is Kind.REAL


def test_health_naming_a_broken_part() -> None:
    payload = {"ok": False, "checks": [{"service": "JupyterHub", "ok": False}, {"service": "Registry", "ok": True}]}
    up = classify_health(503, payload, starting=False)
    assert up.kind is Kind.REAL and "JupyterHub" in up.reason and up.evidence["broken"] == ["JupyterHub"]
    assert classify_health(503, payload, starting=True).kind is Kind.TRANSIENT
    assert classify_health(200, {"ok": True, "checks": []}, starting=False) is None
    assert classify_health(502, None, starting=False).kind is Kind.TRANSIENT  # proxy in front, no JSON
