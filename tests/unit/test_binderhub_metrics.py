"""bindery's /metrics against BinderHub's definitions, so the PromQL of BinderHub's Grafana
dashboards reads the same series: names, types, label names, bucket sets, and meanings (launch time
per attempt with `status` and `retries`, launches counted once in the launch stage, the GitHub rate
limit remaining).

The definitions below are facts from BinderHub's published source (binderhub/builder.py and
binderhub/repoproviders.py), written down here, not imported: BinderHub is not installed. The hub is
a stand-in speaking JupyterHub's REST API here, because a real hub cannot be made to fail exactly one
start request; the launcher and its hub client are bindery's own.
"""

from __future__ import annotations

import json
import math

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bindery.launches.hub_api import Hub
from bindery.launches.launcher import LaunchConfig, Launcher
from bindery.metrics import Metrics
from bindery.providers.httpapi import ApiClient
from tests.asgi_thread import serve_in_thread

INF = math.inf
BINDERHUB = {  # name: (type, label names, histogram buckets)
    "binderhub_build_time_seconds": ("histogram", {"status"},
                                     [60, 120, 300, 600, 1800, 3600, 7200, INF]),
    "binderhub_launch_time_seconds": ("histogram", {"status", "retries"},
                                      [2, 5, 10, 20, 30, 60, 120, 300, 600, INF]),
    "binderhub_build_count": ("counter", {"status", "provider", "repo"}, None),
    "binderhub_launch_count": ("counter", {"status", "provider", "repo"}, None),
    "binderhub_inprogress_builds": ("gauge", set(), None),
    "binderhub_inprogress_launches": ("gauge", set(), None),
    "binderhub_github_rate_limit_remaining": ("gauge", set(), None),
}


def families(metrics: Metrics) -> dict:
    text = generate_latest(metrics.registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_names_types_labels_and_buckets_are_binderhubs():
    metrics = Metrics()
    metrics.watch_github_rate_limit(lambda: 4000)
    metrics.build_time.labels("success").observe(1)
    metrics.launch_time.labels("success", "0").observe(1)
    metrics.build_count.labels("success", "gh", "r").inc()
    metrics.launch_count.labels("success", "gh", "r").inc()
    found = families(metrics)
    for name, (kind, labels, buckets) in BINDERHUB.items():
        family = found[name]
        assert family.type == kind, name
        own = {k for s in family.samples for k in s.labels if k != "le"}
        assert own == labels, name
        if buckets is not None:
            les = sorted({float(s.labels["le"]) for s in family.samples if "le" in s.labels})
            assert les == buckets, name


def standin_hub(failures_before_success: int) -> Starlette:
    """JupyterHub's REST API for one launch whose first user creations answer 503."""
    state = {"creates": 0}

    async def create_user(request: Request) -> Response:
        state["creates"] += 1
        if state["creates"] <= failures_before_success:
            return JSONResponse({"message": "hub busy"}, 503)
        return JSONResponse({"name": request.path_params["name"]}, 201)

    async def gone(request: Request) -> Response:
        return Response(status_code=204)

    async def token(request: Request) -> Response:
        return JSONResponse({"token": "t"}, 201)

    async def start(request: Request) -> Response:
        return Response(status_code=201)

    async def progress(request: Request) -> Response:
        name = request.path_params["name"]

        async def events():
            yield f"data: {json.dumps({'ready': True, 'url': f'/user/{name}/'})}\n\n".encode()
        return StreamingResponse(events(), media_type="text/event-stream")

    async def server_api(request: Request) -> Response:
        return JSONResponse({}, 200 if request.headers.get("authorization") == "token t" else 403)

    return Starlette(routes=[
        Route("/hub/api/users/{name}", create_user, methods=["POST"]),
        Route("/hub/api/users/{name}", gone, methods=["DELETE"]),
        Route("/hub/api/users/{name}/tokens", token, methods=["POST"]),
        Route("/hub/api/users/{name}/server", start, methods=["POST"]),
        Route("/hub/api/users/{name}/server", gone, methods=["DELETE"]),
        Route("/hub/api/users/{name}/server/progress", progress),
        Route("/user/{name}/api/status", server_api),
    ])


def launch_time_counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    family = families(metrics)["binderhub_launch_time_seconds"]
    return {(s.labels["status"], s.labels["retries"]): s.value for s in family.samples
            if s.name.endswith("_count")}


async def launch(failures: int, retries: int) -> Metrics:
    metrics = Metrics()
    with serve_in_thread(standin_hub(failures), "hub") as url:
        hub = Hub(f"{url}/hub/api", "service-token", 5)
        launcher = Launcher(hub, LaunchConfig(hub_url=url, timeout=30, retries=retries,
                                              token_lifetime=60),
                            on_attempt=lambda status, n, seconds: metrics.launch_time.labels(
                                status, str(n)).observe(seconds))
        try:
            async for _ in launcher.launch("registry/bindery/x:1", "https://h/r", "b-r-1"):
                pass
        except Exception:  # the failing case: its metrics are what is checked
            pass
        finally:
            await launcher.aclose()
            await hub.aclose()
    return metrics


async def test_launch_time_is_per_attempt_with_binderhubs_status_and_retries():
    # One failed attempt, then a started server: "retry" (-1), then "success" with retries 1.
    assert launch_time_counts(await launch(failures=1, retries=3)) == {
        ("retry", "-1"): 1, ("success", "1"): 1}
    # Every attempt failed: "retry" for all but the last, "failure" for the last (both -1).
    assert launch_time_counts(await launch(failures=5, retries=2)) == {
        ("retry", "-1"): 1, ("failure", "-1"): 1}
    # At once: "success" with retries 0, as BinderHub's dashboards' first-try rate expects.
    assert launch_time_counts(await launch(failures=0, retries=3)) == {("success", "0"): 1}


async def test_github_rate_limit_remaining_from_githubs_answers():
    async def commits(request: Request) -> Response:
        return JSONResponse({"sha": "0" * 40}, headers={"x-ratelimit-remaining": "4321",
                                                        "x-ratelimit-limit": "5000"})

    metrics = Metrics()
    api = ApiClient(5)
    metrics.watch_github_rate_limit(lambda: api.rate_limit_remaining)
    # Absent until GitHub has answered (a 0 would look like an exhausted limit).
    assert "binderhub_github_rate_limit_remaining" not in families(metrics)
    with serve_in_thread(Starlette(routes=[Route("/repos/o/r/commits/main", commits)]),
                         "github") as url:
        await api.get_json(f"{url}/repos/o/r/commits/main")
    await api.aclose()
    family = families(metrics)["binderhub_github_rate_limit_remaining"]
    assert [s.value for s in family.samples] == [4321]
