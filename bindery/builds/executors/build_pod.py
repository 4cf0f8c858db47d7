"""The pod one build runs in on Kubernetes (bindery/builds/executors/kubernetes.py creates it).

A pure function of the BuildSpec and the operator's choices, so it is unit-tested and schema-checked
without a cluster. The build container runs repo2docker from bindery's build image with the same
arguments and environment as a build container on the engine (bindery/builds/executors/engine.py); where it
finds a container engine is the operator's choice (``k8s_build_engine``), as BinderHub offers:

- ``host-socket``: the node's own engine socket (hostPath ``k8s_engine_socket``), as BinderHub's
  default build pods have. The build's layers stay in the node's cache.
- ``dind``: the socket of a docker-in-docker daemonset on the node (hostPath, e.g.
  ``/var/run/dind/docker.sock``), so builds never touch the engine that runs the node's pods.
- ``podman``: a podman API service as a native sidecar of the build pod (an init container with
  ``restartPolicy: Always``), the two sharing the socket on an emptyDir. What a node needs for it:
  Kubernetes 1.29 or later (native sidecars), a namespace whose Pod Security admission allows
  privileged pods (podman needs privileged to build: mounts, user namespaces, /dev/fuse) and room
  in the pod's emptyDir for the image layers (no cache is shared between builds).

Socket choices run the build as root (the socket belongs to root) but without capabilities or
privilege escalation, under the runtime's default seccomp profile, on a read-only root filesystem
with an emptyDir /tmp (repo2docker clones there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from docker.utils import parse_bytes

from bindery.builds.executors.base import BuildSpec
from bindery.settings import Settings

BUILD_CONTAINER = "build"
ENGINE_CONTAINER = "engine"
SOCKET_IN_POD = "/var/run/docker.sock"  # where a node's socket appears in the build container
PODMAN_SOCKET_DIR = "/var/run/podman"  # the sidecar's socket folder (shared emptyDir)
DOCKER_CONFIG_DIR = "/etc/bindery/docker"  # the push secret as a docker config
ANNOTATION = "bindery.builds"  # annotation prefix: image, repo, deadline (not valid label values)
LABELS = {"app.kubernetes.io/component": "build", "app.kubernetes.io/managed-by": "bindery"}
SELECTOR = ",".join(f"{k}={v}" for k, v in LABELS.items())
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")


@dataclass(frozen=True)
class PodOptions:
    """The operator's choices for build pods (the k8s_* settings)."""

    builder_image: str
    engine: str = "host-socket"  # host-socket | dind | podman
    engine_socket: str = "/var/run/docker.sock"
    podman_image: str = "quay.io/podman/stable:v5.2"
    push_secret: str = ""
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    service_account: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> PodOptions:
        return cls(builder_image=settings.kubernetes.k8s_builder_image, engine=settings.kubernetes.k8s_build_engine,
                   engine_socket=settings.kubernetes.k8s_engine_socket,
                   podman_image=settings.kubernetes.k8s_podman_image, push_secret=settings.kubernetes.k8s_push_secret,
                   node_selector=dict(settings.kubernetes.k8s_node_selector),
                   tolerations=[dict(t) for t in settings.kubernetes.k8s_tolerations],
                   service_account=settings.kubernetes.k8s_build_service_account)


def memory_quantity(limit: str) -> str:
    """A docker-style limit ("300M", "3G": binary units, as the engine reads them) as a Kubernetes
    quantity of the same number of bytes ("300Mi", "3Gi")."""
    size = parse_bytes(limit)
    for suffix, unit in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def build_pod(spec: BuildSpec, options: PodOptions, deadline: float,
              proxy_env: dict[str, str] | None = None) -> dict[str, Any]:
    """The build's pod as the API takes it. ``deadline``: wall-clock end, recorded on the pod so any
    bindery process attaching to it reads the same one."""
    if spec.mounts:
        raise ValueError("a local folder cannot be built on Kubernetes (build pods do not see "
                         "bindery's files); build it from a git repository instead")
    if not options.builder_image:
        raise ValueError("no build image for build pods: set k8s_builder_image")
    env = {**spec.env, "HOME": "/tmp", "LANG": "C.UTF-8", **(proxy_env or {})}
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    init_containers: list[dict[str, Any]] = []
    if options.engine == "podman":
        env["DOCKER_HOST"] = f"unix://{PODMAN_SOCKET_DIR}/podman.sock"
        volumes += [{"name": "engine-socket", "emptyDir": {}},
                    {"name": "engine-storage", "emptyDir": {}}]
        mounts.append({"name": "engine-socket", "mountPath": PODMAN_SOCKET_DIR})
        init_containers.append(podman_sidecar(options.podman_image))
    elif options.engine in ("host-socket", "dind"):
        env["DOCKER_HOST"] = f"unix://{SOCKET_IN_POD}"
        volumes.append({"name": "engine-socket",
                        "hostPath": {"path": options.engine_socket, "type": "Socket"}})
        mounts.append({"name": "engine-socket", "mountPath": SOCKET_IN_POD})
    else:
        raise ValueError(f"unknown k8s_build_engine {options.engine!r}")
    if options.push_secret:
        env["DOCKER_CONFIG"] = DOCKER_CONFIG_DIR
        volumes.append({"name": "push-secret", "secret": {
            "secretName": options.push_secret,
            "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})
        mounts.append({"name": "push-secret", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True})
    memory = memory_quantity(spec.memory_limit)
    build = {
        "name": BUILD_CONTAINER,
        "image": options.builder_image,
        "command": ["repo2docker"],
        "args": list(spec.argv),
        "workingDir": "/tmp",
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": {"limits": {"memory": memory}, "requests": {"memory": memory}},
        "volumeMounts": mounts,
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The cluster ends the build at its deadline even when no bindery process is left.
        "activeDeadlineSeconds": max(1, math.ceil(spec.timeout)),
        "containers": [build],
        "volumes": volumes,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "enableServiceLinks": False,  # a build has no business with the namespace's services
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    if options.node_selector:
        pod_spec["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in options.tolerations]
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    else:
        pod_spec["automountServiceAccountToken"] = False
    annotations = {f"{ANNOTATION}/image": spec.image, f"{ANNOTATION}/repo": spec.repo,
                   f"{ANNOTATION}/deadline": f"{deadline:.3f}"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": spec.name, "labels": dict(LABELS), "annotations": annotations},
            "spec": pod_spec}


def podman_sidecar(image: str) -> dict[str, Any]:
    """podman's Docker-API service, running beside the build for the pod's whole life."""
    socket = f"{PODMAN_SOCKET_DIR}/podman.sock"
    return {
        "name": ENGINE_CONTAINER,
        "image": image,
        "restartPolicy": "Always",  # a native sidecar: the pod ends when the build does
        "command": ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        # The build container starts only once the socket exists.
        "startupProbe": {"exec": {"command": ["test", "-S", socket]},
                         "periodSeconds": 1, "failureThreshold": 60},
        "volumeMounts": [{"name": "engine-socket", "mountPath": PODMAN_SOCKET_DIR},
                         {"name": "engine-storage", "mountPath": "/var/lib/containers"}],
        "securityContext": {"privileged": True},
    }
