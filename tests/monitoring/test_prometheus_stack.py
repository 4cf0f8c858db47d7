"""A real Prometheus (Debian's) scraping the real stack: every dashboard query returns series, and the
launch-failure alert goes pending on a seeded run of failures."""

from __future__ import annotations

import json

import httpx
import pytest

from bindery import backoff
from bindery.stack import prometheus_server
from tests.conftest import free_port
from tests.streams import collect, git_spec

WAIT = 60.0  # seconds for Prometheus to scrape what the test just did (it scrapes every second)


def query(settings, expr: str) -> list[dict]:
    answer = httpx.get(f"{prometheus_server.url(settings)}/api/v1/query", params={"query": expr},
                       timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def wait_until(what: str, check) -> None:
    backoff.wait_until(check, timeout=WAIT, what=f"Prometheus showing {what}", interval=0.5)


@pytest.fixture
def prometheus(stack):
    settings = stack.model_copy(update={"prometheus_port": free_port(),
                                        "prometheus_scrape_seconds": 1})
    prometheus_server.start(settings)
    try:
        yield settings
    finally:
        prometheus_server.stop(settings)


def failed_count(settings) -> float:
    found = query(settings, 'sum(bindery_launch_outcomes_total{status="failed"})')
    return float(found[0]["value"][1]) if found else 0.0


async def test_dashboard_queries_return_series_and_a_failure_run_raises_the_alert(
        prometheus, stack, git_repo_factory, git_server):
    _, url = git_repo_factory("watched", "RUN echo watched")
    ready = await collect(stack, "git", git_spec(url, "main"))
    assert ready[-1].phase == "ready", ready[-1]
    missing = git_spec(f"{git_server.base_url}/org/no-such-repository", "main")
    first = await collect(stack, "git", missing)
    assert first[-1].phase == "failed"
    # Prometheus knows the failed-launch counter before the run of failures (increase() counts
    # from a series' first sample).
    wait_until("the first failure", lambda: failed_count(prometheus) >= 1)
    before = failed_count(prometheus)
    for _ in range(4):
        assert (await collect(stack, "git", missing))[-1].phase == "failed"
    wait_until("the run of failures", lambda: failed_count(prometheus) >= before + 4)

    dashboard = json.loads(prometheus_server.DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            wait_until(f"series for {panel['title']!r} ({target['expr']})",
                       lambda: query(prometheus, target["expr"]))

    def alert_state() -> str | None:
        alerts = httpx.get(f"{prometheus_server.url(prometheus)}/api/v1/alerts",
                           timeout=10).json()["data"]["alerts"]
        return next((a["state"] for a in alerts
                     if a["labels"]["alertname"] == "BinderyLaunchesFailing"), None)

    wait_until("BinderyLaunchesFailing pending", lambda: alert_state() in ("pending", "firing"))
    rules = httpx.get(f"{prometheus_server.url(prometheus)}/api/v1/rules", timeout=10).json()
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert "BinderyStoreAboveHighMark" in names and "BinderyDependencyDown" in names
    assert not query(prometheus, "bindery_dependency_up == 0")  # every part answers
