"""`bindery canary`: launch the canary repository against an instance on a schedule, between deploys.

Why: mybinder.org outages went unnoticed for hours because nothing launched anything between deploys. Each round
runs the same end-to-end probes as a deploy's verification (event stream to ready, server opened with its token,
server stopped), exports success and duration as Prometheus metrics, and after ``alert_after`` consecutive failures
logs loudly on every further failure until a success clears it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bindery.deploy.report import CheckResult
from bindery.backoff import Backoff
from bindery.deploy.verify import Target, verify

log = logging.getLogger(__name__)


@dataclass
class CanaryMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.duration = Histogram("bindery_canary_launch_seconds", "Duration of a canary round (launch to stop)",
                                  ["instance", "status"], registry=r,
                                  buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600))
        self.rounds = Counter("bindery_canary_launches", "Canary rounds by result", ["instance", "status"],
                              registry=r)
        self.consecutive = Gauge("bindery_canary_consecutive_failures", "Canary failures in a row",
                                 ["instance"], registry=r)
        self.last_success = Gauge("bindery_canary_last_success_timestamp_seconds",
                                  "Unix time of the last successful canary round", ["instance"], registry=r)
        self.up = Gauge("bindery_canary_success", "1 if the last canary round succeeded, else 0", ["instance"],
                        registry=r)


@dataclass
class Canary:
    instance: str
    target: Target
    client: httpx.Client
    metrics: CanaryMetrics = field(default_factory=CanaryMetrics)
    alert_after: int = 3
    backoff: Backoff = Backoff(attempts=2, deadline=30)
    failures: int = 0
    on_alert: Callable[[str], None] | None = None

    def round(self) -> list[CheckResult]:
        """One canary launch; updates metrics and the failure streak; returns the checks."""
        start = time.monotonic()
        checks = verify(self.target, self.client, self.backoff)
        ok = bool(checks) and all(c.ok for c in checks)
        status = "success" if ok else "failure"
        self.metrics.duration.labels(self.instance, status).observe(time.monotonic() - start)
        self.metrics.rounds.labels(self.instance, status).inc()
        self.metrics.up.labels(self.instance).set(1 if ok else 0)
        if ok:
            if self.failures >= self.alert_after:
                log.warning("canary on %s recovered after %d consecutive failures", self.instance, self.failures)
            self.failures = 0
            self.metrics.last_success.labels(self.instance).set(time.time())
        else:
            self.failures += 1
            failed = next(c for c in checks if not c.ok)
            reason = f"{failed.name} — {failed.kind}: {failed.attempts[-1].reason if failed.attempts else ''}"
            if self.failures >= self.alert_after:
                message = (f"CANARY FAILING on {self.instance} ({self.target.base_url}): {self.failures} consecutive "
                           f"failures; last: {reason}")
                log.error("!" * 20 + " %s " + "!" * 20, message)
                if self.on_alert:
                    self.on_alert(message)
            else:
                log.warning("canary on %s failed (%d in a row): %s", self.instance, self.failures, reason)
        self.metrics.consecutive.labels(self.instance).set(self.failures)
        return checks

    def run(self, interval: float, stop: threading.Event, rounds: int | None = None) -> None:
        """Run rounds every ``interval`` seconds until ``stop`` is set (or ``rounds`` were run)."""
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            self.round()
            done += 1
            stop.wait(interval)
