"""The limit a launch is measured against: an image started straight on the run engine until Jupyter
answers, with a launched server's CPU and memory limits, and the CPU-seconds that start cost.

The container runs the image's own command (what a person running the image would get), on the
servers' network; the bench asks ``/api`` on its address every 10 ms (any HTTP answer counts, as
for the hub's own wait). CPU-seconds come from the container's cgroup (the engine's stats), read
once it answers.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import docker
import httpx

from bindery.engine_clients import docker_client
from bindery.settings import Settings
from bindery.stack import server_network

POLL = 0.01  # seconds between asks: fine-grained, and one container's worth of load


@dataclass(frozen=True)
class StraightStart:
    seconds: float  # create + start + until Jupyter answers
    cpu_seconds: float  # the container's cgroup CPU time at that moment


def server_container(client: docker.DockerClient, user: str) -> docker.models.containers.Container:
    """The running container of a hub user's server (DockerSpawner sets JUPYTERHUB_USER)."""
    return next(c for c in client.containers.list()
                if f"JUPYTERHUB_USER={user}" in c.attrs["Config"]["Env"])


def launched_cpu_seconds(settings: Settings, user: str) -> float:
    """CPU-seconds a launched server's container has used so far (read right after `ready`)."""
    client = docker_client(settings.run_socket, timeout=60)
    try:
        return _cpu_seconds(server_container(client, user))
    finally:
        client.close()


def _cpu_seconds(container: docker.models.containers.Container) -> float:
    stats = container.stats(stream=False)
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def _ip(client: docker.DockerClient, container_id: str, network: str) -> str:
    attrs = client.api.inspect_container(container_id)
    return attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def start_straight(settings: Settings, image: str, timeout: float = 120.0) -> StraightStart:
    """Start `image` as it is, time it until Jupyter answers, read its CPU-seconds, remove it."""
    client = docker_client(settings.run_socket, timeout=60)
    network = server_network.network_name(settings)
    name = f"bench-straight-{secrets.token_hex(4)}"
    container = None
    try:
        t0 = time.perf_counter()
        container = client.containers.run(
            image, name=name, detach=True, network=network,
            nano_cpus=int(settings.launches.server_cpu_limit * 1e9), mem_limit=settings.launches.server_mem_limit,
            pids_limit=settings.launches.server_pids_limit, cap_drop=["ALL"],
            security_opt=["no-new-privileges"])  # fmt: skip
        url = f"http://{_ip(client, container.id, network)}:8888/api"
        deadline = t0 + timeout
        with httpx.Client(timeout=2.0) as http:
            while True:
                try:
                    http.get(url)
                    break
                except httpx.HTTPError:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{image} did not answer within {timeout:.0f} s")
                    time.sleep(POLL)  # bench-side poll of one container, bounded by the deadline
        seconds = time.perf_counter() - t0
        return StraightStart(seconds, _cpu_seconds(container))
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()
