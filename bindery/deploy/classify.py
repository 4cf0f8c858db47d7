"""Classifying a failed check as transient (retry it) or real (stop, report, roll back).

Why: a deploy job that did not wait for rollouts made real and spurious failures look alike. The rule here is
small and explicit so the report can say *why* something was retried or not:

* transient — the thing is not there *yet*: connection refused or reset during a restart, timeouts, a 5xx (or a
  health check naming a broken part) while the component is still starting. Retried with bounded backoff.
* real — the thing answered and the answer is wrong: a ``failed`` launch event, 403 (or any other 4xx), a wrong
  version on ``/versions``, a health check naming a broken part once the instance is up. Never retried.

Two sharpenings (bindery/deploy/probes.py): a ``failed`` event with ``status_code`` 503 is the instance saying a
part it needs (the hub) did not answer even after its own retries — transient, retried within the bound. And once
``ready`` was announced, any answer of the server URL other than a 200 from the server itself (a 503 "not running",
a redirect to the hub's spawn-pending or login page) is real: that is a launcher saying ready too early, exactly what
a retry would hide. Only network errors on the way to the server stay transient.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Any

import httpx


class Kind(StrEnum):
    TRANSIENT = "transient"
    REAL = "real"


class CheckFailed(Exception):
    """A check's verdict: what went wrong, whether it is worth retrying, and the evidence for the report."""

    def __init__(self, kind: Kind, reason: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.evidence = evidence or {}

    @classmethod
    def transient(cls, reason: str, **evidence: Any) -> CheckFailed:
        return cls(Kind.TRANSIENT, reason, evidence)

    @classmethod
    def real(cls, reason: str, **evidence: Any) -> CheckFailed:
        return cls(Kind.REAL, reason, evidence)


_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,  # connect/read/write/pool timeouts, refused, reset, remote protocol errors
    ConnectionError,  # refused, reset, aborted (OSError subclasses)
    TimeoutError,
    socket.timeout,
)


def classify_exception(exc: BaseException) -> CheckFailed:
    """An exception raised while checking becomes a verdict. Network-level trouble is transient; anything else
    (a bug, a bad answer we could not parse) is real so it is never papered over by retries."""
    if isinstance(exc, CheckFailed):
        return exc
    name = type(exc).__name__
    if isinstance(exc, _TRANSIENT_ERRORS):
        return CheckFailed.transient(f"{name}: {exc}".rstrip(": "), error=name)
    return CheckFailed.real(f"unexpected {name}: {exc}", error=name)


def classify_status(status: int, what: str, *, starting: bool = False, body: str = "") -> CheckFailed | None:
    """None when ``status`` is a success; else the verdict. 5xx is transient (a part still starting or
    restarting; bounded retries decide), 4xx is real: 403 above all means a broken token path, never retry it."""
    evidence = {"status": status, "body": body[:500]} if body else {"status": status}
    if 200 <= status < 400:
        return None
    if status >= 500:
        return CheckFailed.transient(f"{what} answered {status}", **evidence)
    if status == 403:
        return CheckFailed.real(f"{what} answered 403 Forbidden (token refused)", **evidence)
    return CheckFailed.real(f"{what} answered {status}", **evidence)


def classify_health(status: int, payload: Any, *, starting: bool) -> CheckFailed | None:
    """Judge a ``/health`` answer (``{"ok": bool, "checks": [{"name"/"service", "ok", ...}]}``).

    A health answer that names broken parts is real once the instance is up, transient while it is starting
    (the hub takes seconds to answer after its process starts)."""
    if not isinstance(payload, dict) or "ok" not in payload:
        failed = classify_status(status, "/health", starting=starting)
        return failed or CheckFailed.real("/health answered without an 'ok' field", status=status)
    if payload.get("ok") and status < 400:
        return None
    broken = [_part_name(c) for c in payload.get("checks", []) if isinstance(c, dict) and not c.get("ok", True)]
    reason = f"/health not ok: broken {', '.join(broken)}" if broken else f"/health not ok (status {status})"
    evidence = {"status": status, "broken": broken, "checks": payload.get("checks", [])}
    return CheckFailed(Kind.TRANSIENT if starting else Kind.REAL, reason, evidence)


def _part_name(check: dict[str, Any]) -> str:
    return str(check.get("name") or check.get("service") or check.get("check") or "unnamed part")


# Why a pod of a rollout is not ready, as Kubernetes names it (container waiting/terminated reasons, the scheduler's
# condition reason). These do not heal by waiting longer: a wrong image or tag, a crashing process, a config that
# names a missing Secret, a pod no node can take. Everything else (ContainerCreating, PodInitializing, pods not
# created yet, readiness still failing) is a rollout still in progress: transient.
REAL_POD_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CrashLoopBackOff", "RunContainerError", "CreateContainerError", "CreateContainerConfigError", "OOMKilled",
    "Unschedulable",
})


def classify_rollout(reasons: list[str]) -> Kind:
    """A rollout that did not finish within its bound: real when a pod shows a reason that does not heal."""
    return Kind.REAL if any(r in REAL_POD_REASONS for r in reasons) else Kind.TRANSIENT
