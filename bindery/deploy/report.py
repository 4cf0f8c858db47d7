"""The deploy report: every check, every attempt, its classification and evidence — as JSON and as text.

Why: the person paged at night needs to see at a glance whether a red deploy was a real failure or a flaky
network that was retried, and what exactly was observed. The JSON form is the record kept with verified versions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Attempt:
    number: int
    ok: bool
    seconds: float
    kind: str | None = None  # "transient" | "real" when not ok
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    """One named check (a stage of the deploy or a verification step) with all its attempts."""

    name: str
    ok: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)  # what the passing attempt produced (url, version...)

    @property
    def kind(self) -> str | None:
        return None if self.ok or not self.attempts else self.attempts[-1].kind

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


@dataclass
class Report:
    """One deploy (or rollback, or verification) of one instance."""

    instance: str
    action: str  # "deploy", "rollback", "verify"
    version: str
    previous_version: str | None = None
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    green: bool = False
    notes: list[str] = field(default_factory=list)
    rollback: Report | None = None

    def add(self, check: CheckResult) -> CheckResult:
        self.checks.append(check)
        return check

    def finish(self, green: bool) -> Report:
        self.green = green
        self.finished = now_iso()
        return self

    @property
    def first_failure(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.ok), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = "green" if self.green else "red"
        failure = self.first_failure
        data["failure"] = None if failure is None else {"check": failure.name, "kind": failure.kind,
                                                        "reason": failure.attempts[-1].reason if failure.attempts else ""}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def to_text(self) -> str:
        return "\n".join(self._lines())

    def _lines(self, indent: str = "") -> list[str]:
        verdict = "GREEN" if self.green else "RED"
        prev = f" (was {self.previous_version})" if self.previous_version else ""
        out = [f"{indent}{self.action} {self.instance} → {self.version}{prev}: {verdict}"]
        for c in self.checks:
            mark = "ok  " if c.ok else "FAIL"
            tries = f"{len(c.attempts)} attempt{'s' if len(c.attempts) != 1 else ''}"
            seconds = sum(a.seconds for a in c.attempts)
            line = f"{indent}  [{mark}] {c.name:<18} {tries}, {seconds:.1f} s"
            if not c.ok and c.kind:
                line += f" — {c.kind}: {c.attempts[-1].reason}"
            out.append(line)
            for a in c.attempts:
                if not a.ok and (c.retried or not c.ok):
                    ev = ", ".join(f"{k}={_short(v)}" for k, v in a.evidence.items())
                    out.append(f"{indent}         #{a.number} {a.kind}: {a.reason}" + (f" ({ev})" if ev else ""))
        out += [f"{indent}  note: {n}" for n in self.notes]
        if self.rollback is not None:
            out += self.rollback._lines(indent + "  ")
        return out


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
