"""`bindery deploy` of a Helm instance against a Kubernetes API stand-in, through the real kubernetes_asyncio client.

The cluster's controllers are played by the stand-in's ``controller`` hook; helm is the driver's exact argv with the
real `helm template` behind it (helm_on_standin.py); the public URL is answered by whatever version the web
Deployment's image tag says is running, so a rollback shows in the canary's version check.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bindery.deploy import verdicts as records
from bindery.deploy.classify import CheckFailed
from bindery.deploy.helm import HelmRelease
from bindery.deploy.helmflow import HelmDeployer, helm_release
from bindery.deploy.instances import InstanceConfig
from bindery.backoff import Backoff
from bindery.deploy.rollout import Cluster, RolloutWatch, api_client, wait_release, wait_rollout
from bindery.artifacts.store import FolderStore
from bindery.artifacts.tags import image_tag, version_of_tag

from .helm_on_standin import HelmOnStandIn
from .k8s_standin import StandIn, running_standin

CHART = Path(__file__).parent / "tinychart"
A = "0.1.dev4+gaaaaaaaaaaaa"
B = "0.1.dev5+gbbbbbbbbbbbb"
NS = "binder-staging"
PUBLIC = "http://bindery.staging.test"
FAST = Backoff(attempts=3, deadline=5, first=0.0)


def rolls_out(state: StandIn, obj: dict[str, Any]) -> None:
    """A healthy cluster: every workload finishes its rollout as soon as it is applied."""
    n = obj["spec"].get("replicas", 1)
    state.set_status(_plural(obj), obj["metadata"]["namespace"], obj["metadata"]["name"], {
        "observedGeneration": obj["metadata"]["generation"], "replicas": n, "updatedReplicas": n,
        "readyReplicas": n, "availableReplicas": n})


def image_pull_fails(bad_tag: str):  # noqa: ANN201
    """Pods of ``bad_tag`` never pull: one new pod in ImagePullBackOff, the old pods keep serving."""
    def controller(state: StandIn, obj: dict[str, Any]) -> None:
        containers = obj["spec"]["template"]["spec"]["containers"]
        if obj["kind"] != "Deployment" or not containers[0]["image"].endswith(":" + bad_tag):
            return rolls_out(state, obj)
        n, meta = obj["spec"]["replicas"], obj["metadata"]
        state.set_status("deployments", meta["namespace"], meta["name"], {
            "observedGeneration": meta["generation"], "replicas": n + 1, "updatedReplicas": 1,
            "readyReplicas": n, "availableReplicas": n})
        state.put("pods", meta["namespace"], {
            "metadata": {"name": f"{meta['name']}-7f9c-x2b4q", "labels": obj["spec"]["selector"]["matchLabels"]},
            "spec": {"containers": containers},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": containers[0]["name"], "ready": False, "restartCount": 0, "image": containers[0]["image"],
                "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff",
                                                     "message": f"Back-off pulling image \"{containers[0]['image']}\""}}}]}})
    return controller


def workload(name: str, release: str, replicas: int) -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": release, "app.kubernetes.io/component": name}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": "r.test/x:1"}]}}}}


def _plural(obj: dict[str, Any]) -> str:
    return obj["kind"].lower() + "s"


def public_bindery(state: StandIn):  # noqa: ANN201
    """The instance's public URL: the version is whatever the web Deployment's image tag says."""
    def running() -> str:
        web = state.get("deployments", NS, "bindery-staging-web")
        return version_of_tag(web["spec"]["template"]["spec"]["containers"][0]["image"].rsplit(":", 1)[1])

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "hub.staging.test":
            return httpx.Response(200, text="<html>jupyter</html>")
        if path == "/health":
            return httpx.Response(200, json={"ok": True, "checks": [{"service": "JupyterHub", "ok": True}]})
        if path == "/versions":
            return httpx.Response(200, json={"bindery": running()})
        if path.startswith("/build/"):
            ready = {"phase": "ready", "message": "ready", "url": "http://hub.staging.test/user/canary-1/",
                     "token": "tok"}
            return httpx.Response(200, text=f"data: {json.dumps(ready)}\n\n",
                                  headers={"content-type": "text/event-stream"})
        return httpx.Response(404)
    return httpx.Client(transport=httpx.MockTransport(handler))


def instance(url: str, tmp_path: Path, **helm: Any) -> InstanceConfig:
    (tmp_path / "staging-values.yaml").write_text("replicas: 2\n")
    return InstanceConfig(name="staging", kind="helm", canary="git/canary/HEAD", helm={
        "release": "bindery-staging", "namespace": NS, "public_url": PUBLIC, "api_url": url, "chart": str(CHART),
        "values": ["staging-values.yaml"], "rollout_timeout": 4, **helm})


def deployer(state: StandIn, helm: HelmOnStandIn, tmp_path: Path, version: str, **kw: Any) -> HelmDeployer:
    config = instance(state.url, tmp_path, **kw).model_copy(update={"version": version})
    release = helm_release(config)
    assert release.cluster == Cluster(api_url=state.url)
    driver = HelmRelease(release.release, release.namespace, release.cluster, release.timeout, runner=helm)
    return HelmDeployer(config, FolderStore(tmp_path / "artifacts"), driver, public_bindery(state), tmp_path,
                        backoff=FAST, rollout_poll=0.05)


def test_rollout_that_becomes_ready_then_canary_green(tmp_path: Path) -> None:
    with running_standin(StandIn(controller=rolls_out)) as state:
        helm = HelmOnStandIn(state)
        report = deployer(state, helm, tmp_path, A).deploy()
        assert report.green, report.to_text()
        assert [c.name for c in report.checks][:5] == ["history", "image tag", "chart", "helm upgrade", "rollout"]
        # the exact upgrade argv: release, chart, namespace, the named cluster, values in order, both image tags
        upgrade = next(c for c in helm.calls if c[0] == "upgrade")
        assert upgrade == ["upgrade", "--install", "bindery-staging", str(CHART), "--namespace", NS,
                           "--kube-apiserver", state.url, "--history-max", "20", "--timeout", "300s",
                           "--output", "json", "--description", f"bindery {A}", "--values", str(tmp_path / "staging-values.yaml"),
                           "--set-string", f"image.tag={image_tag(A)}",
                           "--set-string", f"builderImage.tag={image_tag(A)}"]
        rollout = next(c for c in report.checks if c.name == "rollout")
        assert rollout.detail["workloads"] == {
            "Deployment bindery-staging-web": "updated 2/2, ready 2/2, available 2/2",
            "StatefulSet bindery-staging-redis": "updated 1/1, ready 1/1, available 1/1"}
        web = state.get("deployments", NS, "bindery-staging-web")
        assert web["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.dev4-gaaaaaaaaaaaa")
        # the rollout was read through label-selected lists of the release's namespace
        assert ("GET", f"/apis/apps/v1/namespaces/{NS}/deployments") in state.requests
        assert records.latest(tmp_path, "staging", A).green

        second = deployer(state, helm, tmp_path, B).deploy()
        assert second.green and second.previous_version == A, second.to_text()
        assert [r["status"] for r in helm.revisions] == ["superseded", "deployed"]


def test_rollout_that_never_finishes_names_the_deployment_and_rolls_back(tmp_path: Path) -> None:
    with running_standin(StandIn(controller=image_pull_fails(image_tag(B)))) as state:
        helm = HelmOnStandIn(state)
        assert deployer(state, helm, tmp_path, A).deploy().green
        report = deployer(state, helm, tmp_path, B).deploy()

        assert not report.green
        rollout = next(c for c in report.checks if c.name == "rollout")
        assert not rollout.ok and rollout.kind == "real"  # ImagePullBackOff does not heal by waiting
        reason = rollout.attempts[-1].reason
        assert "rollout of bindery-staging not done within 4 s" in reason
        assert "Deployment bindery-staging-web (updated 1/2, ready 2/2, available 2/2, 1 old pods left)" in reason
        assert "pod bindery-staging-web-7f9c-x2b4q: ImagePullBackOff" in reason
        assert "StatefulSet" not in reason  # the finished one is not blamed
        assert not any(c.name.startswith("canary") for c in report.checks)  # no canary on an unfinished rollout

        rb = report.rollback
        assert rb is not None and rb.green, rb and rb.to_text()
        assert rb.version == A and rb.previous_version == B
        assert helm.calls[-1][:3] == ["rollback", "bindery-staging", "1"]
        assert [c.name for c in rb.checks][:2] == ["helm rollback", "rollout"]
        web = state.get("deployments", NS, "bindery-staging-web")
        assert web["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":" + image_tag(A))
        assert [r["status"] for r in helm.revisions] == ["superseded", "superseded", "deployed"]


def test_failed_first_install_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    with running_standin(StandIn(controller=rolls_out)) as state:
        helm = HelmOnStandIn(state, fail_upgrade="Error: INSTALLATION FAILED: namespaces \"x\" is forbidden")
        report = deployer(state, helm, tmp_path, A).deploy()
        upgrade = next(c for c in report.checks if c.name == "helm upgrade")
        assert not upgrade.ok and "forbidden" in upgrade.attempts[-1].reason
        assert report.rollback is not None and report.rollback.version == "(none)"
        assert not any(c[0] == "rollback" for c in helm.calls)


async def test_rollout_wait_retries_api_errors_and_stops_on_forbidden() -> None:
    with running_standin(StandIn(controller=rolls_out)) as state:
        state.put("deployments", NS, workload("w", "r", 1))
        state.put("deployments", NS, workload("other", "x", 3))
        rolls_out(state, state.get("deployments", NS, "w"))
        state.faults[:] = [503, 503]  # an API server restarting: transient, retried within the bound
        api = await api_client(Cluster(api_url=state.url))
        async with api:
            watch = RolloutWatch(api, NS, "r", request_timeout=5)
            done = await wait_rollout(watch, 10, poll=0.05)
            assert done["workloads"] == {"Deployment w": "updated 1/1, ready 1/1, available 1/1"}  # not "other"
            state.faults[:] = [403]
            with pytest.raises(CheckFailed) as forbidden:
                await wait_rollout(watch, 10, poll=0.05)
            assert forbidden.value.kind == "real" and "403" in forbidden.value.reason
            with pytest.raises(CheckFailed) as empty:
                await wait_rollout(RolloutWatch(api, "elsewhere", "r"), 10, poll=0.05)
            assert "nothing to wait for" in empty.value.reason


async def test_rollout_still_starting_is_transient_and_bounded() -> None:
    with running_standin() as state:  # no controller: nothing ever becomes ready, no pod reports a reason
        state.put("deployments", NS, workload("w", "r", 2))
        api = await api_client(Cluster(api_url=state.url))
        async with api:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(CheckFailed) as pending:
                await wait_rollout(RolloutWatch(api, NS, "r"), 1.0, poll=0.05)
            assert loop.time() - t0 < 10  # the bound holds (generous: a loaded machine)
        assert pending.value.kind == "transient"
        assert "Deployment w (updated 0/2, ready 0/2, available 0/2 (generation 1 observed 0))" in pending.value.reason
        assert "no pod reports a reason" in pending.value.reason


def test_instance_kind_needs_its_own_fields(tmp_path: Path) -> None:
    from bindery.deploy.instances import ConfigError, load, load_all

    (tmp_path / "a.toml").write_text('kind = "helm"\nversion = "x"\n')
    with pytest.raises(ConfigError, match=r"needs a \[helm\] table"):
        load(tmp_path, "a")
    (tmp_path / "a.toml").write_text('version = "x"\n[helm]\nrelease = "r"\npublic_url = "https://b.test"\n')
    with pytest.raises(ConfigError, match="needs kind = 'helm'"):
        load(tmp_path, "a")
    (tmp_path / "a.toml").write_text('version = "x"\n')
    with pytest.raises(ConfigError, match="needs public_port and backend_ports"):
        load(tmp_path, "a")
    for name in ("a", "b"):  # two instances on one release would deploy over each other
        (tmp_path / f"{name}.toml").write_text(
            'kind = "helm"\n[helm]\nrelease = "r"\nnamespace = "n"\npublic_url = "https://b.test"\n')
    with pytest.raises(ConfigError, match="both use helm release n/r"):
        load_all(tmp_path)


def test_cli_deploy_runs_real_helm_against_the_standin(tmp_path: Path) -> None:
    """`bindery deploy` of a Helm instance with the real helm binary: it reaches the stand-in (helm's discovery and
    its release Secrets, which the stand-in does not serve) and the deploy ends red with helm's own message."""
    import subprocess
    import sys

    with running_standin() as state:
        (tmp_path / "staging.toml").write_text(
            f'kind = "helm"\nversion = "{A}"\ncanary = "git/canary/HEAD"\n[helm]\nrelease = "bindery-staging"\n'
            f'namespace = "{NS}"\npublic_url = "{PUBLIC}"\napi_url = "{state.url}"\nchart = "{CHART}"\n')
        proc = subprocess.run([sys.executable, "-m", "bindery", "deploy", "staging", "--deploy-dir", str(tmp_path),
                               "--store", str(tmp_path / "artifacts"), "--json"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        report = json.loads(proc.stdout)
        assert report["verdict"] == "red" and report["failure"]["check"] == "history"
        assert "helm history failed" in report["failure"]["reason"]
        assert ("GET", f"/api/v1/namespaces/{NS}/secrets") in state.requests  # helm asked the named cluster


async def test_rollout_wait_through_a_kubeconfig(tmp_path: Path) -> None:
    """The kubeconfig path of the client (as operators run `bindery deploy` from outside the cluster)."""
    with running_standin(StandIn(controller=rolls_out)) as state:
        obj = state.put("deployments", NS, workload("w", "r", 1))
        rolls_out(state, obj)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "other",
            "clusters": [{"name": "standin", "cluster": {"server": state.url}},
                         {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}}],
            "users": [{"name": "u", "user": {"token": "t0ken"}}],
            "contexts": [{"name": "staging", "context": {"cluster": "standin", "user": "u"}},
                         {"name": "other", "context": {"cluster": "nowhere", "user": "u"}}]}))
        done = await wait_release(Cluster(kubeconfig=str(kubeconfig), context="staging"), NS, "r", 10, poll=0.05)
        assert done["workloads"] == {"Deployment w": "updated 1/1, ready 1/1, available 1/1"}
        assert state.authorizations == {"Bearer t0ken"}  # the kubeconfig's user, the named context's cluster
