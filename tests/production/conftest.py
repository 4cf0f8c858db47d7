"""Fixtures for the production tests: other bindery settings without another stack.

`service_with(**settings)` starts a second `bindery serve` process against the session stack's hub,
registry and engines (same data_dir, so same secrets and sockets) with its own port and the given
settings (e.g. build_slots=1, max_servers_per_repo=1, abandon_grace_seconds=2). Settings the hub
itself reads (start timeouts, slow_spawn_timeout, server limits) need a stack of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bindery import datadir
from bindery.backoff import WaitTimeout, wait_until
from bindery.settings import Settings
from bindery.stack.web_service import settings_env
from tests.conftest import free_port

SERVICE_WAIT = 60.0  # seconds a second service may take to answer /versions


class Service:
    """A running `bindery serve` child process and the settings it was given."""

    def __init__(self, settings: Settings, proc: subprocess.Popen, log: Path) -> None:
        self.settings = settings
        self.proc = proc
        self.log = log

    @property
    def url(self) -> str:
        return self.settings.service.web_url.rstrip("/")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_service(base: Settings, log_dir: Path, env_extra: dict[str, str] | None = None,
                  **overrides: object) -> Service:
    """Start `bindery serve` with `base`'s settings plus `overrides`; wait (bounded) until it answers."""
    settings = base.model_copy(update={"port": free_port(), "public_url": "", **overrides})
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(settings_env(settings))
    env.update(env_extra or {})
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"service-{settings.service.port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bindery", "serve"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    service = Service(settings, proc, log)

    def answers() -> bool:  # a real condition: /versions answers
        if proc.poll() is not None:
            raise RuntimeError(f"bindery serve exited with {proc.returncode}:\n{service.log_text()}")
        return httpx.get(f"{service.url}/versions", timeout=2).status_code == 200

    try:
        wait_until(answers, timeout=SERVICE_WAIT, what="bindery serve answering", errors=(httpx.HTTPError,))
    except WaitTimeout as exc:
        service.stop()
        raise RuntimeError(f"{exc}:\n{service.log_text()}") from None
    return service


@pytest.fixture
def service_with(stack: Settings, tmp_path: Path) -> Iterator:
    """service_with(env=None, **settings) -> Service: a second web service on the session stack.

    Stopped (SIGTERM: its sessions are cancelled and their servers cleaned up) after the test.
    """
    services: list[Service] = []

    def start(env: dict[str, str] | None = None, **overrides: object) -> Service:
        service = start_service(stack, tmp_path / "services", env, **overrides)
        services.append(service)
        return service

    try:
        yield start
    finally:
        for service in services:
            service.stop()


@pytest.fixture(scope="module")
def second_hub(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """second_hub(**hub_settings) -> Settings: another JupyterHub (+ proxy) on the session stack.

    For settings the hub reads (hub_start_timeout, hub_http_timeout, hub_slow_spawn_timeout,
    server limits): its own data_dir, ports, database and service token, but the session stack's
    engines and registry, like a second hub node. Far cheaper than a second stack: no second base
    image pull on either side. Start a web service for it with `start_service(settings, ...)`.
    """
    from bindery.stack import jupyterhub as embedded_hub
    from bindery.datadir import StackPaths

    started: list[Settings] = []

    # the session stack's registry takes pushes only with its pusher credential, which lives in the
    # stack's own data_dir: the second hub's service (a data_dir of its own) is given it
    user, password = datadir.registry_credential(stack)

    def start(**overrides: object) -> Settings:
        settings = stack.model_copy(update={
            "registry_username": user, "registry_password": SecretStr(password),
            "data_dir": tmp_path_factory.mktemp("hub2"),
            "hub_port": free_port(), "proxy_port": free_port(), "proxy_api_port": free_port(),
            "hub_url": "", "hub_api_url": "", "hub_api_token": None,
            "registry_url": stack.registry.url, "run_docker_host": stack.run_socket,
            "build_docker_host": stack.build_socket,
            "base_image": base_image_name(stack), **overrides})
        StackPaths.of(settings).make()
        embedded_hub.start(settings, log=lambda line: None)
        started.append(settings)
        return settings

    try:
        yield start
    finally:
        for settings in started:
            embedded_hub.stop(settings)


def base_image_name(settings: Settings) -> str:
    from bindery import stack as embedded

    return embedded.base_image_name(settings)
