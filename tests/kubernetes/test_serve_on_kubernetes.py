"""`bindery serve` with build_executor=kubernetes needs no engine socket: the web service starts,
/health checks the Kubernetes API (through the real client, on the API stand-in) instead of the
engines, nothing pre-pulls through a run-side socket, and build slots come from the build pods."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from starlette.testclient import TestClient

from bindery.builds.executors.kubernetes import KubernetesExecutor
from bindery.launches.services import Services, prepull_wanted
from bindery.settings import Settings
from bindery.web.app import create_app
from tests.asgi_thread import serve_in_thread
from tests.kubernetes.apiserver import ApiServer
from tests.kubernetes.kubelet import Kubelet

NO_SOCKET = "unix:///nonexistent/engine.sock"  # any use of an engine socket would fail


def kubernetes_settings(tmp_path: Path, api_url: str) -> Settings:
    return Settings(data_dir=tmp_path, build_executor="kubernetes", k8s_api_url=api_url,
                    k8s_namespace="builds", k8s_builder_image="registry.example.org/b:1",
                    hub_api_token="service-token", build_docker_host=NO_SOCKET,
                    run_docker_host=NO_SOCKET, prepull=True)


def test_no_prepull_through_an_engine_socket_on_kubernetes(tmp_path: Path) -> None:
    settings = kubernetes_settings(tmp_path, "http://127.0.0.1:9")
    assert not prepull_wanted(settings)  # even with prepull left on: the spawn shows the pull
    assert prepull_wanted(settings.model_copy(update={"build_executor": "engine"}))
    services = Services.create(settings)
    assert services.prepuller is None
    assert isinstance(services.executor, KubernetesExecutor)


def test_serve_reports_the_kubernetes_api_and_no_engines_in_health(tmp_path: Path) -> None:
    api = ApiServer(Kubelet(NO_SOCKET, {}, tmp_path))  # no pods run: listing only
    with serve_in_thread(api.app, "k8s-apiserver") as url:
        settings = kubernetes_settings(tmp_path, url)
        with TestClient(create_app(settings)) as client:
            checks = {c["service"]: c for c in client.get("/health").json()["checks"]}
            page = client.get("/build-logs/bindery-build-0123456789abcdef0123.txt")
    assert checks["Kubernetes API"]["ok"], checks["Kubernetes API"]
    assert "Build engine" not in checks and "Run engine" not in checks
    # The health check listed build pods through the real client, with the build label selector.
    listing = api.requests.index(("GET", "/api/v1/namespaces/builds/pods"))
    query = parse_qs(api.queries[listing])
    assert query["labelSelector"] == [
        "app.kubernetes.io/component=build,app.kubernetes.io/managed-by=bindery"]
    # A build log nobody has: asked of the API (a 404 there), answered 404 here, not a crash.
    assert page.status_code == 404
    assert ("GET", "/api/v1/namespaces/builds/pods/bindery-build-0123456789abcdef0123/log") \
        in api.requests


def test_unreachable_api_is_a_failed_health_check_not_a_crash(tmp_path: Path) -> None:
    settings = kubernetes_settings(tmp_path, "http://127.0.0.1:9")  # nothing listens there
    with TestClient(create_app(settings)) as client:
        response = client.get("/health")
    checks = {c["service"]: c for c in response.json()["checks"]}
    assert response.status_code == 503
    assert not checks["Kubernetes API"]["ok"] and checks["Kubernetes API"]["error"]
