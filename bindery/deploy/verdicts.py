"""The record of verification verdicts: which version was verified green or red on which instance, when.

Why: promotion to prod must be allowed only for a version staging verified green, and the reason for a refusal
must be concrete ("staging's verification of V was red at T: canary launch — real: launch failed: ..."). The record
is an append-only JSON-lines file in the deploy folder, so it is versioned with the instance files.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bindery.deploy.report import Report

RECORD_NAME = "verified.jsonl"


@dataclass(frozen=True)
class Verdict:
    instance: str
    version: str
    green: bool
    time: str
    action: str
    summary: str  # the first failure, or "all checks passed"


def record_path(deploy_dir: Path) -> Path:
    return deploy_dir / RECORD_NAME


def append(deploy_dir: Path, report: Report) -> Verdict:
    """Record the verdict of a deploy, rollback or verification report."""
    failure = report.first_failure
    summary = "all checks passed" if report.green else (
        f"{failure.name} — {failure.kind}: {failure.attempts[-1].reason}" if failure and failure.attempts
        else "red")
    verdict = Verdict(report.instance, report.version, report.green, report.finished or report.started,
                      report.action, summary)
    deploy_dir.mkdir(parents=True, exist_ok=True)
    with open(record_path(deploy_dir), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(asdict(verdict)) + "\n")
    return verdict


def history(deploy_dir: Path) -> list[Verdict]:
    try:
        lines = record_path(deploy_dir).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [Verdict(**json.loads(line)) for line in lines if line.strip()]


def latest(deploy_dir: Path, instance: str, version: str) -> Verdict | None:
    """The newest verdict for ``version`` on ``instance`` (a later red overrides an earlier green)."""
    matches = [v for v in history(deploy_dir) if v.instance == instance and v.version == version]
    return matches[-1] if matches else None
