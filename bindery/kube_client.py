"""The one way bindery reaches a Kubernetes API server (build pods, Helm deploys' rollout waits).

A cluster is named by a URL (+ token file), a kubeconfig (+ context), or neither (in-cluster: the pod's service
account). Every caller gets its client here, so TLS, tokens and kubeconfig handling live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes_asyncio import client, config

REQUEST_TIMEOUT = 15.0


@dataclass(frozen=True)
class Cluster:
    """How to reach the API server: a URL (+ token file), a kubeconfig (+ context), or neither (in-cluster)."""

    api_url: str = ""
    token_file: str = ""
    kubeconfig: str = ""
    context: str = ""
    request_timeout: float = REQUEST_TIMEOUT


async def api_client(cluster: Cluster) -> client.ApiClient:
    """A kubernetes_asyncio client for ``cluster`` (the caller closes it)."""
    cfg = client.Configuration()
    if cluster.api_url:
        cfg.host = cluster.api_url.rstrip("/")
        if cluster.token_file:
            token = Path(cluster.token_file).expanduser().read_text().strip()
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
    elif cluster.kubeconfig:
        await config.load_kube_config(config_file=str(Path(cluster.kubeconfig).expanduser()),
                                      context=cluster.context or None, client_configuration=cfg)
    else:
        config.load_incluster_config(client_configuration=cfg)
    return client.ApiClient(configuration=cfg)
