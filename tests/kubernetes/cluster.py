"""A stand-in cluster for tests: the API stand-in (apiserver.py) with its kubelet (kubelet.py)
running pods on the session stack's build podman, and the settings a bindery uses to build there."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

from bindery.settings import Settings
from bindery.stack import builder_image
from tests.asgi_thread import serve_in_thread
from tests.kubernetes.apiserver import ApiServer
from tests.kubernetes.kubelet import Kubelet, new_work_dir

NAMESPACE = "bindery-builds"
NODE_SOCKET = "/var/run/docker.sock"  # the engine socket as build pods name it (a hostPath)


class StandInCluster:
    def __init__(self, api: ApiServer, settings: Settings) -> None:
        self.api = api
        self.settings = settings

    def pod(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        return self.api.pods.get((namespace, name))

    @classmethod
    @contextlib.contextmanager
    def around(cls, stack: Settings, **settings: object) -> Iterator[StandInCluster]:
        """A cluster whose one node's engine socket is the stack's build podman."""
        socket = stack.build_socket.removeprefix("unix://")
        work_dir = new_work_dir()
        kubelet = Kubelet(stack.build_socket, {NODE_SOCKET: socket}, work_dir)
        api = ApiServer(kubelet)
        try:
            with serve_in_thread(api.app, "k8s-apiserver") as url:
                try:
                    yield cls(api, stack.model_copy(update={
                        "build_executor": "kubernetes", "k8s_api_url": url,
                        "k8s_namespace": NAMESPACE,
                        "k8s_builder_image": builder_image.image_name(stack),
                        "k8s_build_engine": "host-socket", "k8s_engine_socket": NODE_SOCKET,
                        **settings}))
                finally:
                    api.drop_all()  # first: ends the containers its threads wait on
        finally:
            kubelet.close()
            shutil.rmtree(work_dir, ignore_errors=True)
