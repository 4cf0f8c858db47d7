"""What the chart's objects say: env wired to bindery's settings, secrets, hardened containers,
replicas and PDB, probes, the build executor's Role, and NetworkPolicies evaluated for what they let
through."""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest

from bindery.settings import Settings
from tests.kubernetes.chart import (BASE, CHART, EVERYTHING, NAMESPACE, RELEASE, Obj, container_env,
                                    everything, helm,
                                    load, named, of_kind, render, variant)

def test_env_names_are_bindery_settings() -> None:
    fields = {name for _group, name, _field, _value in Settings().flat_items()}
    for objs in (variant("dind", "none"), everything()):
        names = [n for n in container_env(named(objs, "Deployment")) if n.startswith("BINDERY_")]
        assert len(names) == len(set(names)), "an env name appears twice"
        unknown = [n for n in names if n.removeprefix("BINDERY_").lower() not in fields]
        assert not unknown, f"not bindery settings: {unknown}"


def test_settings_map_reaches_bindery_as_it_parses_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values of `settings:` become env text that bindery's Settings reads back as the same values."""
    env = container_env(named(everything(), "Deployment"))
    given = load(EVERYTHING)["settings"]
    for name in given:
        monkeypatch.setenv(f"BINDERY_{name.upper()}", env[f"BINDERY_{name.upper()}"])
    parsed = Settings()
    for name, value in given.items():
        assert getattr(parsed, name) == value, name


def test_env_wiring() -> None:
    env = container_env(named(variant("host-socket", "none"), "Deployment"))
    assert env["BINDERY_BUILD_EXECUTOR"] == "kubernetes"
    assert env["BINDERY_PREPULL"] == "false"
    assert env["BINDERY_HUB_API_URL"] == "http://hub:8081/hub/api"
    assert env["BINDERY_K8S_BUILDER_IMAGE"] == "registry.example.org/bindery/repo2docker:0.0.0"
    assert env["BINDERY_STATE_URL"] == f"redis://:$(REDIS_PASSWORD)@{RELEASE}-bindery-redis:6379/0"
    every = container_env(named(everything(), "Deployment"))
    assert every["BINDERY_HUB_API_URL"] == "http://hub.jhub.svc.cluster.local:8081/hub/api"
    assert every["BINDERY_K8S_PUSH_SECRET"] == f"{RELEASE}-bindery-registry"
    assert json.loads(every["BINDERY_K8S_TOLERATIONS"])[0]["key"] == "builds"
    assert json.loads(every["BINDERY_K8S_NODE_SELECTOR"]) == {"node-role.example.org/builds": "true"}


def test_registry_secret_is_a_docker_config() -> None:
    secret = named(everything(), "Secret", "-registry")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    auth = config["auths"]["registry.example.org"]
    assert base64.b64decode(auth["auth"]).decode() == "pusher:push-token"


def test_hub_token_from_z2jh_secret() -> None:
    objs = everything()
    [container] = named(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    [token] = [e for e in container["env"] if e["name"] == "BINDERY_HUB_API_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "hub.services.bindery.apiToken"}
    assert not [s for s in of_kind(objs, "Secret") if s["metadata"]["name"].endswith("-hub-token")]


def pod_specs(objs: tuple[Obj, ...]) -> list[tuple[str, Obj]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objs
            if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet")]


HARDENED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "privileged": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize("which", ["dind", "everything"])
def test_every_container_is_hardened_but_dind(which: str) -> None:
    objs = variant("dind", "ingress") if which == "dind" else everything()
    seen = 0
    for name, spec in pod_specs(objs):
        containers = spec["containers"] + spec.get("initContainers", [])
        if name.endswith("-dind"):  # a Docker daemon is privileged by nature (docs/kubernetes.md)
            assert [c["securityContext"] for c in containers] == [{"privileged": True}]
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers:
            assert container["securityContext"] == HARDENED, f"{name}/{container['name']}"
            if name.endswith("-image-puller"):  # its containers exit at once or pause: no writes
                assert "volumeMounts" not in container and "volumes" not in spec
                seen += 1
                continue
            writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            volumes = {v["name"]: v for v in spec["volumes"]}
            for mount in container["volumeMounts"]:
                if not mount.get("readOnly"):
                    assert {"emptyDir", "persistentVolumeClaim"} & set(volumes[mount["name"]]), mount
            assert writable, "a read-only root needs somewhere to write"
            seen += 1
    assert seen == (2 if which == "dind" else 5)  # bindery and redis (+ the puller's 2 pulls, pause)


def test_replicas_pdb_and_probes() -> None:
    objs = everything()
    deployment = named(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    pdb = named(objs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 2
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/versions"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8686"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "web"
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    # no BINDERY_PORT=tcp://... from a Service named bindery
    assert deployment["spec"]["template"]["spec"]["enableServiceLinks"] is False
    assert named(variant("podman", "none"), "Deployment")["spec"]["replicas"] == 2


def test_role_allows_only_what_the_build_executor_uses() -> None:
    objs = variant("host-socket", "none")
    role = named(objs, "Role", "-builds")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"]) for r in role["rules"]}
    assert rules == {(("",), ("pods",)): ["create", "delete", "get", "list"],
                     (("",), ("pods/log",)): ["get"]}
    assert not of_kind(objs, "ClusterRole") and not of_kind(objs, "ClusterRoleBinding")
    binding = named(objs, "RoleBinding", "-builds")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{RELEASE}-bindery",
                                    "namespace": NAMESPACE}]


# -- NetworkPolicies, evaluated -----------------------------------------------------------------------

def egress_allows(policy: Obj, address: str, port: int) -> bool:
    """Does this policy's egress admit a connection to address:port (ipBlock and port rules only)?"""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"].get("egress", []):
        ports = rule.get("ports")
        if ports and not any(p.get("port") == port for p in ports):
            continue
        peers = rule.get("to")
        if not peers:
            return True
        for peer in peers:
            block = peer.get("ipBlock")
            if block and ip in ipaddress.ip_network(block["cidr"]) and not any(
                    ip in ipaddress.ip_network(e) for e in block.get("except", [])
                    if ipaddress.ip_network(e).version == ip.version):
                return True
    return False


@pytest.mark.parametrize("suffix", ["-builds", "-user-servers"])
def test_confined_pods_reach_the_internet_but_nothing_inside(suffix: str) -> None:
    policy = named(variant("dind", "none"), "NetworkPolicy", suffix)
    assert "Egress" in policy["spec"]["policyTypes"]
    assert egress_allows(policy, "151.101.0.223", 443)  # a public address (PyPI's CDN)
    assert egress_allows(policy, "2a04:4e42::223", 443)
    assert egress_allows(policy, "10.96.0.10", 53)  # DNS
    for internal in ("169.254.169.254", "10.0.0.1", "10.244.3.7", "172.20.0.5", "192.168.1.1",
                     "100.64.0.1", "127.0.0.1", "fd00:ec2::254", "fe80::1"):
        for port in (80, 443, 6379, 8081):
            assert not egress_allows(policy, internal, port), f"{internal}:{port}"


def test_build_policy_selects_build_pods_and_dind() -> None:
    objs = variant("dind", "none")
    policy = named(objs, "NetworkPolicy", "-builds")
    assert policy["spec"]["ingress"] == []  # nothing reaches a build
    selector = {e["key"]: set(e["values"]) for e in policy["spec"]["podSelector"]["matchExpressions"]}
    build_pod_labels = {"app.kubernetes.io/component": "build", "app.kubernetes.io/managed-by": "bindery"}
    dind_labels = named(objs, "DaemonSet", "-dind")["spec"]["template"]["metadata"]["labels"]
    for labels in (build_pod_labels, dind_labels):
        assert all(labels.get(key) in allowed for key, allowed in selector.items()), labels


def test_redis_admits_only_bindery_web_pods() -> None:
    objs = variant("podman", "none")
    policy = named(objs, "NetworkPolicy", "-redis")
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["spec"]["egress"] == []
    [rule] = policy["spec"]["ingress"]
    web = named(objs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert rule["from"] == [{"podSelector": {"matchLabels": web}}]
    assert rule["ports"] == [{"port": 6379, "protocol": "TCP"}]
    redis = named(objs, "Deployment", "-redis")["spec"]["template"]["metadata"]["labels"]
    assert all(redis[k] == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    # the policy stays whatever networkPolicy.enabled says
    off = render("--set", "networkPolicy.enabled=false")
    assert [p["metadata"]["name"] for p in of_kind(off, "NetworkPolicy")] == [f"{RELEASE}-bindery-redis"]


def test_host_socket_is_refused_unless_its_risk_is_accepted() -> None:
    """host-socket puts repositories' build steps on the node's engine, in the node's network:
    no NetworkPolicy confines them, so the chart renders it only when told the risk is accepted."""
    refused = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(BASE),
                   "--set", "build.engine=host-socket")
    assert refused.returncode != 0
    assert "build.hostSocket.acceptRisk=true" in refused.stderr and "NetworkPolicy" in refused.stderr
    accepted = variant("host-socket", "none")
    assert container_env(named(accepted, "Deployment"))["BINDERY_K8S_BUILD_ENGINE"] == "host-socket"
    default = render()  # the default engine keeps build steps under the builds' NetworkPolicy
    assert container_env(named(default, "Deployment"))["BINDERY_K8S_BUILD_ENGINE"] == "dind"


@pytest.mark.parametrize("engine", ["dind", "podman"])
def test_build_pods_of_every_confined_engine_are_under_the_build_policy(engine: str) -> None:
    """The steps of a dind build run in the dind pod's network, a podman build's in its own pod's:
    both pods are selected by the builds' policy."""
    policy = named(variant(engine, "none"), "NetworkPolicy", "-builds")
    selector = {e["key"]: set(e["values"]) for e in policy["spec"]["podSelector"]["matchExpressions"]}
    build_pod = {"app.kubernetes.io/component": "build", "app.kubernetes.io/managed-by": "bindery"}
    assert all(build_pod.get(key) in allowed for key, allowed in selector.items())
    assert not egress_allows(policy, "127.0.0.1", 5000) and not egress_allows(policy, "10.0.0.9", 5000)


def test_image_puller_keeps_the_listed_images_on_user_nodes() -> None:
    """One init container per image (the kubelet pulls it; it exits at once), then a pause container;
    z2jh's user-node taints tolerated by default; nothing rendered without images."""
    assert not [o for o in variant("host-socket", "none") if o["kind"] == "DaemonSet"]
    images = ["registry.example.org/bindery/base:0123456789ab", "registry.example.org/bindery/r:1"]
    objs = render("--set", f"imagePuller.images[0]={images[0]}",
                  "--set", f"imagePuller.images[1]={images[1]}")
    [puller] = [o for o in of_kind(objs, "DaemonSet") if o["metadata"]["name"].endswith("-image-puller")]
    spec = puller["spec"]["template"]["spec"]
    assert [c["image"] for c in spec["initContainers"]] == images
    assert all(c["imagePullPolicy"] == "IfNotPresent" and c["command"] == ["/bin/sh", "-c", "true"]
               for c in spec["initContainers"])
    assert [c["image"] for c in spec["containers"]] == ["registry.k8s.io/pause:3.10"]
    assert {t["key"] for t in spec["tolerations"]} == {"hub.jupyter.org/dedicated",
                                                       "hub.jupyter.org_dedicated"}
    assert spec["automountServiceAccountToken"] is False
    assert puller["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] == "100%"
    off = render("--set", f"imagePuller.images[0]={images[0]}", "--set", "imagePuller.enabled=false")
    assert not [o for o in of_kind(off, "DaemonSet") if o["metadata"]["name"].endswith("-image-puller")]
