"""Builds as pods on Kubernetes (build_executor = 'kubernetes').

Each field is also read from ``BINDERY_<FIELD>`` (upper case); see bindery/settings/__init__.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class KubernetesSettings(BaseModel):
    k8s_api_url: str = Field(
        "", description="Kubernetes API server URL. Empty: the in-cluster config (the pod's "
        "service account).")
    k8s_namespace: str = Field(
        "", description="Namespace of build pods. Empty: the pod's own namespace (its service "
        "account's namespace file).")
    k8s_build_engine: Literal["host-socket", "dind", "podman"] = Field(
        "host-socket", description="Where build pods find a container engine: 'host-socket' = the "
        "node's engine socket (k8s_engine_socket), 'dind' = a docker-in-docker daemonset's socket "
        "on the node (k8s_engine_socket), 'podman' = a podman service sidecar in each build pod "
        "(privileged; see bindery/builds/executors/build_pod.py).")
    k8s_engine_socket: str = Field(
        "/var/run/docker.sock", description="Host path of the node's engine socket for "
        "host-socket and dind (e.g. /var/run/dind/docker.sock for a dind daemonset).")
    k8s_builder_image: str = Field(
        "", description="Image of build pods: bindery's repo2docker build image, pullable by the "
        "cluster's nodes.")
    k8s_podman_image: str = Field(
        "quay.io/podman/stable:v5.2", description="Image of the podman service sidecar "
        "(k8s_build_engine=podman).")
    k8s_push_secret: str = Field(
        "", description="Secret (kubernetes.io/dockerconfigjson) mounted into build pods as "
        "their docker config, so repo2docker can push. Empty: none.")
    k8s_node_selector: dict[str, str] = Field(
        default_factory=dict, description="nodeSelector of build pods (JSON object).")
    k8s_tolerations: list[dict[str, object]] = Field(
        default_factory=list, description="tolerations of build pods (JSON list of toleration "
        "objects).")
    k8s_build_service_account: str = Field(
        "", description="Service account of build pods. Empty: none, and no API token is mounted "
        "(automountServiceAccountToken: false).")
    k8s_timeout: float = Field(
        15.0, description="Seconds one Kubernetes API request may take.")
