"""End-to-end verification of an instance: the checks that make a deploy green.

Why this order: health and version first (cheap; a wrong version makes the rest meaningless), then a real launch of
the canary repository through the public event stream, the server opened with its token, and the server shut down
again so canaries never pile up. A later check is not run once an earlier one failed for real.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bindery import http_clients
from bindery.deploy import probes
from bindery.deploy.report import CheckResult
from bindery.backoff import Backoff
from bindery.deploy.retry import run_check


@dataclass(frozen=True)
class Target:
    """What to verify: the public URL people use, the version it must run, the repository to launch."""

    base_url: str
    version: str
    canary_spec: str  # "<provider>/<spec>" as in /build/<provider>/<spec>
    launch_timeout: float = 300.0


def verify(target: Target, client: httpx.Client, backoff: Backoff = Backoff()) -> list[CheckResult]:
    """Run the checks in order; stop at the first that fails (after its own bounded retries)."""
    results: list[CheckResult] = []

    def step(name: str, fn) -> CheckResult:  # noqa: ANN001
        result = run_check(name, fn, backoff)
        results.append(result)
        return result

    if not step("health", lambda: probes.health(client, target.base_url)).ok:
        return results
    if not step("versions", lambda: probes.versions(client, target.base_url, target.version)).ok:
        return results
    launched = step("canary launch",
                    lambda: probes.launch(client, target.base_url, target.canary_spec, target.launch_timeout))
    if not launched.ok:
        return results
    ready = launched.detail["ready"]
    opened = step("open server", lambda: probes.open_server(client, ready))
    stopped = step("stop server", lambda: probes.stop_server(client, ready))  # even if opening failed
    if opened.ok and stopped.ok:
        step("health after", lambda: probes.health(client, target.base_url))
    return results


def http_client(timeout: float = 30.0) -> httpx.Client:
    """The client verification uses: bounded connect/read timeouts, no proxies from the environment."""
    return http_clients.client(timeout=http_clients.bounds(timeout, connect=5.0), proxy=http_clients.DIRECT)
