"""/health, /metrics and idle culling (issue 3, points 8 and 10) on the dedicated fault stack.

/health turns 503 naming the failed check when the hub, the registry or the run engine is down,
and 200 again after; /metrics carries BinderHub's names and labels plus bindery's and they move
with launches; the hub's idle culler removes an idle launched server and its user.
"""

from __future__ import annotations

import time

import httpx
import pytest

from bindery.stack import jupyterhub as stack_hub
from bindery.stack import podman
from bindery.stack import registry_server as stack_registry
from tests.production.own_stack import (
    CULL_IDLE,
    assert_no_orphans,
    fault_stack,
    hub_users,
    metric_samples,
    release,
    repo,
    server_containers,
    versions_ok,
    wait_for,
)
from tests.streams import collect, git_spec, open_server

HEALTH_TTL = 2.0  # bindery.web.health.Health's cache
CHECK_TIMEOUT = 3.0  # bindery.web.health.CHECK_TIMEOUT


@pytest.fixture(scope="module")
def observed(request, tmp_path_factory, git_server):
    return fault_stack(request.config, tmp_path_factory, git_server)


def health(settings) -> tuple[int, dict]:
    response = httpx.get(settings.service.web_url.rstrip("/") + "/health", timeout=15)
    return response.status_code, response.json()


def unhealthy(settings) -> tuple[int, dict] | None:
    code, report = health(settings)
    return (code, report) if code == 503 else None


def failing(report: dict) -> list[str]:
    return [c["service"] for c in report["checks"] if not c["ok"]]


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_have_binderhub_names_and_move_with_launches(observed, git_server):
    _, url = repo(git_server, "metered")
    _, broken = repo(git_server, "no-server", 'ENTRYPOINT ["/bin/false"]')
    before = metric_samples(observed)
    events = await collect(observed, "git", git_spec(url, "main"))
    assert events[-1].phase == "ready", events[-1]
    failed = await collect(observed, "git", git_spec(broken, "main"))
    assert failed[-1].phase == "failed", failed[-1]
    after = metric_samples(observed)
    families = {name for name, _ in after}
    for name in ("binderhub_build_time_seconds_count", "binderhub_launch_time_seconds_count",
                 "binderhub_build_count_total", "binderhub_launch_count_total",
                 "binderhub_inprogress_builds", "binderhub_inprogress_launches",
                 "bindery_build_queue_length", "bindery_build_slots_used",
                 "bindery_launch_cleanups_total"):
        assert name in families, name
    # Labels as BinderHub has them, and the values moved by exactly these launches.
    for repo_url in (url, broken):
        assert sample(after, "binderhub_build_count_total", status="success", provider="git",
                      repo=repo_url) == 1
    assert sample(after, "binderhub_launch_count_total", status="success", provider="git",
                  repo=url) == 1
    assert sample(after, "binderhub_launch_count_total", status="failure", provider="git",
                  repo=broken) == 1
    for name, labels, delta in (
            ("binderhub_build_time_seconds_count", {"status": "success"}, 2),
            ("binderhub_launch_time_seconds_count", {"status": "success", "retries": "0"}, 1),
            # BinderHub's meaning: a failed last attempt has retries "-1".
            ("binderhub_launch_time_seconds_count", {"status": "failure", "retries": "-1"}, 1),
            ("bindery_launch_cleanups_total", {"outcome": "failed"}, 1)):
        assert sample(after, name, **labels) - sample(before, name, **labels) == delta, name
    assert sample(after, "binderhub_inprogress_launches") == 0
    assert sample(after, "binderhub_inprogress_builds") == 0
    assert sample(after, "bindery_build_queue_length") == 0
    assert sample(after, "bindery_build_slots_used") == 0
    assert not [u for u in await hub_users(observed) if u["name"] != events[-1].data()["user"]]
    await release(observed, events[-1])


async def test_health_names_the_failed_part_and_recovers(observed):
    code, report = health(observed)
    assert code == 200 and report["ok"], report
    services = [c["service"] for c in report["checks"]]
    # BinderHub's names where BinderHub has the check (its dashboards and mybinder.org's federation
    # redirector read them), bindery's own beside them.
    assert services == ["JupyterHub API", "Docker registry", "Build engine", "Run engine",
                        "State store", "Build queue", "Pod quota"]
    queue = report["checks"][-2]
    assert {"queued", "running", "slots"} <= set(queue)
    # Cached briefly: an immediate second probe gets the same round of checks.
    assert health(observed)[1]["checked_at"] == report["checked_at"]
    bound = HEALTH_TTL + CHECK_TIMEOUT + 5
    faults = (
        ("JupyterHub API", lambda: stack_hub.stop(observed),
         lambda: stack_hub.start(observed, log=lambda line: None)),
        ("Docker registry", lambda: stack_registry.stop(observed),
         lambda: stack_registry.start(observed, log=lambda line: None)),
        ("Run engine", lambda: podman.stop(observed, "run"),
         lambda: podman.start(observed, "run", log=lambda line: None)),
    )
    for name, stop, start in faults:
        stop()
        try:
            t0 = time.monotonic()
            code, report = await wait_for(lambda: unhealthy(observed), bound,
                                          f"/health 503 with {name} down")
            print(f"\n[health] {name} down: 503 after {time.monotonic() - t0:.1f} s")
            # The hub down also leaves the pod quota uncounted (a soft check: no 503 by itself).
            assert [f for f in failing(report) if f != "Pod quota"] == [name], report
            error = next(c for c in report["checks"] if c["service"] == name)["error"]
            assert error
            assert versions_ok(observed)
        finally:
            start()
        t0 = time.monotonic()
        await wait_for(lambda: health(observed)[0] == 200, bound, f"/health 200 after {name}")
        print(f"[health] {name} back: 200 after {time.monotonic() - t0:.1f} s")


def pod_quota(settings) -> dict:
    return next(c for c in health(settings)[1]["checks"] if c["service"] == "Pod quota")


async def test_pod_quota_counts_the_real_servers(observed, git_server):
    """"Pod quota" as BinderHub shapes it (total_pods, quota; soft), counted from the hub's real
    servers: one more while a launched server runs, one less once it is gone."""
    await assert_no_orphans(observed)
    before = await wait_for(lambda: (lambda c: c if c["total_pods"] == 0 else None)(
        pod_quota(observed)), HEALTH_TTL + 10, "no servers counted on an empty stack")
    assert before == {"service": "Pod quota", "ok": True, "quota": observed.launches.max_servers,
                      "total_pods": 0, "user_pods": 0, "build_pods": 0, "_ignore_failure": True}
    _, url = repo(git_server, "counted")
    events = await collect(observed, "git", git_spec(url, "main"))
    assert events[-1].phase == "ready", events[-1]
    await wait_for(lambda: pod_quota(observed)["user_pods"] == 1, HEALTH_TTL + 10,
                   "the running server counted")
    await release(observed, events[-1])
    await wait_for(lambda: pod_quota(observed)["total_pods"] == 0, HEALTH_TTL + 30,
                   "the released server no longer counted")


async def test_idle_culler_removes_an_idle_server_and_its_user(observed, git_server):
    _, url = repo(git_server, "idle")
    events = await collect(observed, "git", git_spec(url, "main"))
    assert events[-1].phase == "ready", events[-1]
    assert (await open_server(events[-1])).status_code == 200
    user = events[-1].data()["user"]
    assert [u for u in await hub_users(observed) if u["name"] == user]
    t0 = time.monotonic()
    # Bound: idle timeout + one culler period + the server's stop.
    bound = CULL_IDLE + CULL_IDLE // 2 + 20

    async def culled():
        return not [u for u in await hub_users(observed) if u["name"] == user] or None
    await wait_for(culled, bound, f"user {user} culled", interval=0.5)
    print(f"\n[culler] idle server and user removed {time.monotonic() - t0:.1f} s after ready")
    await wait_for(lambda: not server_containers(observed), 30, "its container removed")
