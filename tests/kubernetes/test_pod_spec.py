"""The build pod for each of the operator's choices (bindery/builds/executors/build_pod.py): what it mounts,
which environment repo2docker gets, where it may run, its limits; and every variant passes the
Kubernetes schemas strictly (kubernetes-validate, schemas bundled) for the versions z2jh runs on."""

from __future__ import annotations

import pytest
from kubernetes_validate import validate

from bindery.builds.executors.base import BuildSpec
from bindery.builds.executors.build_pod import LABELS, PodOptions, build_pod, memory_quantity
from bindery.builds.queue import BuildJob
from bindery.builds.runner import build_spec
from bindery.settings import Settings

# Native sidecars (the podman choice) need 1.29; the rest runs on every version z2jh 4 supports.
KUBERNETES_VERSIONS = ["1.29.0", "1.31.0", "1.33.0", "1.35.0", "1.37.0"]
ENGINES = ["host-socket", "dind", "podman"]
TOLERATION = {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
              "effect": "NoSchedule"}


def spec() -> BuildSpec:
    settings = Settings(build_memory_limit="3G", build_timeout=1800)
    job = BuildJob(image="registry.example.org/bindery/demo:abc", repo="https://git.example.org/r",
                   commit="0" * 40, source="https://git.example.org/r")
    return build_spec(settings, job, "mirror", {"BINDERY_BASE_IMAGE": "base:1"})


def options(engine: str, **more: object) -> PodOptions:
    return PodOptions(builder_image="registry.example.org/bindery/repo2docker:1", engine=engine,
                      engine_socket="/var/run/dind/docker.sock" if engine == "dind"
                      else "/var/run/docker.sock", **more)


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_choice_passes_the_strict_schema(engine: str) -> None:
    pod = build_pod(spec(), options(engine, push_secret="bindery-push",
                                    node_selector={"node-purpose": "builds"},
                                    tolerations=[TOLERATION], service_account="builder"), 1e9)
    for version in KUBERNETES_VERSIONS:
        validate(pod, version, strict=True)  # raises ValidationError naming the field
    # A mistake the strict schema catches, so the check above can fail.
    broken = {**pod, "spec": {**pod["spec"], "nodeSelectors": {"a": "b"}}}
    with pytest.raises(Exception, match="nodeSelectors"):
        validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_build_gets_the_spec_environment_exactly_and_a_socket_of_the_nodes_engine() -> None:
    build = spec()
    pod = build_pod(build, options("host-socket"), 1234.5, {"https_proxy": "http://proxy:3128"})
    container = pod["spec"]["containers"][0]
    env = env_of(container)
    assert {k: env[k] for k in build.env} == build.env  # options + pinned git config, unchanged
    assert env["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert env["https_proxy"] == "http://proxy:3128"
    assert container["command"] == ["repo2docker"] and container["args"] == build.argv
    socket = next(v for v in pod["spec"]["volumes"] if v["name"] == "engine-socket")
    assert socket["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}
    assert {"name": "engine-socket", "mountPath": "/var/run/docker.sock"} \
        in container["volumeMounts"]
    assert pod["metadata"]["name"] == build.name
    assert pod["metadata"]["labels"] == LABELS
    annotations = pod["metadata"]["annotations"]
    assert annotations["bindery.builds/repo"] == build.repo  # not a valid label value: annotated
    assert annotations["bindery.builds/deadline"] == "1234.500"
    assert pod["spec"]["activeDeadlineSeconds"] == 1800
    assert pod["spec"]["restartPolicy"] == "Never"


def test_dind_mounts_the_daemonsets_socket() -> None:
    pod = build_pod(spec(), options("dind"), 0)
    socket = next(v for v in pod["spec"]["volumes"] if v["name"] == "engine-socket")
    assert socket["hostPath"]["path"] == "/var/run/dind/docker.sock"
    assert env_of(pod["spec"]["containers"][0])["DOCKER_HOST"] == "unix:///var/run/docker.sock"


def test_podman_runs_as_a_native_sidecar_sharing_its_socket() -> None:
    pod = build_pod(spec(), options("podman"), 0)
    sidecar, = pod["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"  # ends with the build, does not block the pod
    assert sidecar["securityContext"] == {"privileged": True}
    assert "startupProbe" in sidecar  # the build starts once the socket is there
    build = pod["spec"]["containers"][0]
    assert env_of(build)["DOCKER_HOST"] == "unix:///var/run/podman/podman.sock"
    shared = {m["name"] for m in sidecar["volumeMounts"]} & {m["name"] for m in build["volumeMounts"]}
    assert shared == {"engine-socket"}
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])  # nothing of the node's


def test_limits_placement_identity_and_the_push_secret() -> None:
    pod = build_pod(spec(), options("host-socket", node_selector={"node-purpose": "builds"},
                                    tolerations=[TOLERATION], push_secret="bindery-push"), 0)
    container = pod["spec"]["containers"][0]
    assert container["resources"] == {"limits": {"memory": "3Gi"}, "requests": {"memory": "3Gi"}}
    assert pod["spec"]["nodeSelector"] == {"node-purpose": "builds"}
    assert pod["spec"]["tolerations"] == [TOLERATION]
    assert pod["spec"]["automountServiceAccountToken"] is False  # no service account: no token
    assert "serviceAccountName" not in pod["spec"]
    secret = next(v for v in pod["spec"]["volumes"] if v["name"] == "push-secret")
    assert secret["secret"]["secretName"] == "bindery-push"
    assert env_of(container)["DOCKER_CONFIG"] == "/etc/bindery/docker"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    with_account = build_pod(spec(), options("host-socket", service_account="builder"), 0)
    assert with_account["spec"]["serviceAccountName"] == "builder"
    assert "automountServiceAccountToken" not in with_account["spec"]


@pytest.mark.parametrize(("docker_style", "quantity"), [
    ("3G", "3Gi"), ("300M", "300Mi"), ("1536m", "1536Mi"), ("512k", "512Ki"), ("1000", "1000")])
def test_memory_limits_mean_the_same_bytes_as_on_the_engine(docker_style: str,
                                                            quantity: str) -> None:
    assert memory_quantity(docker_style) == quantity


def test_a_local_folder_or_a_missing_build_image_is_refused_in_words() -> None:
    local = BuildSpec(image="i:1", repo="r", argv=[], mounts=("/srv/folder",))
    with pytest.raises(ValueError, match="local folder"):
        build_pod(local, options("host-socket"), 0)
    with pytest.raises(ValueError, match="k8s_builder_image"):
        build_pod(spec(), PodOptions(builder_image=""), 0)


def test_settings_reach_the_pod_options() -> None:
    settings = Settings(k8s_builder_image="b:1", k8s_build_engine="dind",
                        k8s_engine_socket="/var/run/dind/docker.sock",
                        k8s_node_selector={"a": "b"}, k8s_tolerations=[TOLERATION],
                        k8s_push_secret="s", k8s_build_service_account="sa")
    assert PodOptions.from_settings(settings) == PodOptions(
        builder_image="b:1", engine="dind", engine_socket="/var/run/dind/docker.sock",
        podman_image=settings.kubernetes.k8s_podman_image, push_secret="s", node_selector={"a": "b"},
        tolerations=[TOLERATION], service_account="sa")
