"""Clients of a Docker-API engine (podman's service or Docker), made in one place.

An engine is named as settings name it: ``unix:///path/to/socket`` or ``tcp://host:port``. bindery talks to it two
ways: the ``docker`` package (synchronous: the stack's network and cleanup) and httpx (asynchronous: image pulls with
progress, health checks). Both get their address and timeout here, so every call has a bound; the httpx
client comes from bindery/http_clients.py (User-Agent, no proxy: the engine is the stack's own), with the
engine's own transport when it listens on a unix socket.
"""

from __future__ import annotations

import docker
import httpx

from bindery import http_clients

DEFAULT_TIMEOUT = 30.0


def docker_client(docker_host: str, timeout: float = DEFAULT_TIMEOUT,
                  version: str | None = None) -> docker.DockerClient:
    """The ``docker`` package's client of the engine at ``docker_host`` (``version``: a fixed API
    version, which saves the version handshake per client)."""
    if version is None:
        return docker.DockerClient(base_url=docker_host, timeout=timeout)
    return docker.DockerClient(base_url=docker_host, timeout=timeout, version=version)


def http_client(docker_host: str, timeout: float = 10.0, *, read: float | None = None) -> httpx.AsyncClient:
    """An httpx client whose base URL is the engine's API (``read=None``: streams such as pulls may be quiet long)."""
    bounds = http_clients.bounds(timeout, read=read)
    if docker_host.startswith("unix://"):
        transport = httpx.AsyncHTTPTransport(uds=docker_host.removeprefix("unix://"))
        return http_clients.async_client(transport=transport, base_url="http://engine", timeout=bounds,
                                         proxy=http_clients.DIRECT)
    return http_clients.async_client(base_url=docker_host.replace("tcp://", "http://", 1), timeout=bounds)
