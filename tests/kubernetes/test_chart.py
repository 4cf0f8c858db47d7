"""The Helm chart renders and every object is valid, without a cluster (docs/kubernetes.md).

Every build engine × exposure and a set-every-option values file, rendered by the real helm binary;
every core object checked by kubernetes-validate --strict for each Kubernetes version z2jh supports
(1.28+, up to the newest bundled), the HTTPRoute by the Gateway API's own schema (node,
@kubernetes-models/gateway-api: kubernetes-validate bundles only core kinds).
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from packaging.version import Version

from tests.kubernetes.chart import (BASE, CHART, ENGINES, EVERYTHING, EXPOSURES, HERE, RELEASE, ROOT,
                                    Obj, container_env, everything, helm, named, of_kind, render,
                                    variant)


# z2jh 4.x (released) declares kubeVersion >=1.28.0-0 (its development line >=1.32): every version
# kubernetes-validate bundles from 1.28 on.
K8S_VERSIONS = sorted({v for v in kubernetes_validate.utils.all_versions() if Version(v) >= Version("1.28")},
                      key=Version)
GATEWAY_VALIDATOR = HERE / "validate_gateway.mjs"


@functools.cache
def _strict_validate(blob: str, version: str) -> str:
    """The Kubernetes version whose schemas were used (the package falls back to older ones)."""
    return kubernetes_validate.validate(json.loads(blob), version, strict=True)


def validate_core(objs: tuple[Obj, ...]) -> int:
    """kubernetes-validate --strict for every core object and version; objects repeated across variants
    are validated once (cache). Returns the number of (object, version) checks."""
    checks = 0
    for obj in objs:
        if obj["apiVersion"].startswith("gateway.networking.k8s.io/"):
            continue
        blob = json.dumps(obj, sort_keys=True)
        for version in K8S_VERSIONS:
            try:
                used = _strict_validate(blob, version)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version}: "
                            f"{'.'.join(map(str, e.path))}: {e.message}")
            assert used == version.rsplit(".", 1)[0], f"{version}: validated against {used}"
            checks += 1
    return checks


def validate_gateway(objs: list[Obj]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node, "node is needed for the Gateway API schema check (scripts/install.sh installs it)"
    done = subprocess.run([node, str(GATEWAY_VALIDATOR)], input=json.dumps(objs), capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert len(results) == len(objs), done.stderr
    return results


# -- every variant renders and validates ----------------------------------------------------------------

@pytest.mark.parametrize("exposure", list(EXPOSURES))
@pytest.mark.parametrize("engine", ENGINES)
def test_variant_renders_and_validates(engine: str, exposure: str, record_property) -> None:
    objs = variant(engine, exposure)
    checks = validate_core(objs)
    kinds = sorted(o["kind"] for o in objs)
    record_property("objects", len(objs))
    print(f"\n{engine} × {exposure}: {len(objs)} objects, {checks} strict checks over "
          f"Kubernetes {K8S_VERSIONS[0]}..{K8S_VERSIONS[-1]}")
    assert ("DaemonSet" in kinds) == (engine == "dind")
    assert ("Ingress" in kinds) == (exposure == "ingress")
    assert ("HTTPRoute" in kinds) == (exposure == "httproute")
    routes = of_kind(objs, "HTTPRoute")
    for result in validate_gateway(routes):
        assert result["ok"], result
    env = container_env(named(objs, "Deployment"))
    assert env["BINDERY_K8S_BUILD_ENGINE"] == engine
    assert env["BINDERY_K8S_ENGINE_SOCKET"] == (
        "/var/run/dind/docker.sock" if engine == "dind" else "/var/run/docker.sock")


def test_everything_renders_and_validates() -> None:
    objs = everything()
    checks = validate_core(objs)
    print(f"\nvalues-everything: {len(objs)} objects, {checks} strict checks")
    assert {"DaemonSet", "Ingress", "HTTPRoute", "PodDisruptionBudget"} <= {o["kind"] for o in objs}
    assert all(r["ok"] for r in validate_gateway(of_kind(objs, "HTTPRoute")))
    # the user-server policy lands in z2jh's namespace, the rest in the release's
    assert named(objs, "NetworkPolicy", "-user-servers")["metadata"]["namespace"] == "jhub"


def test_gateway_validator_rejects_a_bad_route() -> None:
    """The HTTPRoute check can fail: a route with an invalid host name and port does not pass."""
    route = json.loads(json.dumps(of_kind(variant("host-socket", "httproute"), "HTTPRoute")[0]))
    route["spec"]["hostnames"] = ["Not_A_Host"]
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000
    [result] = validate_gateway([route])
    assert not result["ok"] and "hostnames" in result["error"]


def test_strict_validation_rejects_unknown_fields() -> None:
    deployment = json.loads(json.dumps(named(variant("host-socket", "none"), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("values", [BASE, EVERYTHING], ids=["base", "everything"])
def test_helm_lint_strict(values: Path) -> None:
    done = helm("lint", "--strict", str(CHART), "-f", str(BASE), "-f", str(values))
    assert done.returncode == 0 and "0 chart(s) failed" in done.stdout, done.stdout + done.stderr


def test_kube_version_floor() -> None:
    """The chart's floor is z2jh's, and the schemas checked start there and reach z2jh's newest."""
    assert K8S_VERSIONS[0] == "1.28.0" and Version(K8S_VERSIONS[-1]) >= Version("1.35")
    done = helm("template", RELEASE, str(CHART), "-f", str(BASE), "--kube-version", "1.27.0")
    assert done.returncode != 0 and "kubeVersion" in done.stderr
    assert helm("template", RELEASE, str(CHART), "-f", str(BASE), "--kube-version",
                "1.28.0").returncode == 0


def test_render_is_stable() -> None:
    """Same values, same objects (fixed secrets): upgrades do not churn."""
    first = hashlib.sha256(json.dumps(variant("dind", "ingress"), sort_keys=True).encode()).hexdigest()
    render.cache_clear()
    second = hashlib.sha256(json.dumps(variant("dind", "ingress"), sort_keys=True).encode()).hexdigest()
    assert first == second
