"""Fixtures that bring up the real stack the way production runs it.

The session's stack has its own data folder and free ports, builds into one podman store and
runs servers from another (so every first launch pulls from the registry), and its hub answers
a start request after 0.2 s (slow_spawn_timeout), so every launch sees a 202 first.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bindery import datadir
from bindery.settings import Settings
from tests.gitserver import GitServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def discard_stores(data_dir: Path) -> None:
    """Delete a stopped stack's image stores (gigabytes each: the base image on both sides, the
    build store's file). The disk is shared by the whole run, so a stack's stores go when it
    stops; its logs and state stay for the failure report."""
    stores = Path(data_dir) / "stores"
    with open("/proc/self/mounts") as f:
        mounted = [line.split()[1] for line in f]
    for point in sorted((m for m in mounted if m.startswith(f"{stores}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, timeout=60)
    shutil.rmtree(stores, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The test git servers listen on 127.0.0.1: the only non-public address a test stack may fetch
# from (127.0.0.2 and the rest stay blocked, see tests/test_outbound.py).
TEST_ALLOWED_NETWORKS = ["127.0.0.1/32"]
# Hosts builds install from here (PyPI, the Debian mirror): their addresses may be private on this
# machine (a re-signing proxy), so the test stack lets build steps reach exactly those.
def stack_env(data_dir: Path, **overrides: object) -> dict[str, str]:
    values = {
        "data_dir": data_dir,
        "port": free_port(),
        "hub_port": free_port(),
        "proxy_port": free_port(),
        "proxy_api_port": free_port(),
        "registry_port": free_port(),
        "hub_slow_spawn_timeout": 0.2,  # a server starts in more: every spawn answers 202 first
        "keepalive_seconds": 5,
        "build_slots": 2,
        # every test launch comes from 127.0.0.1 (one client, like a classroom behind one NAT
        # address): let it use both slots, as the tests that build in parallel expect
        "build_slots_per_client": 2,
        # ...and lets it hold a benchmark crowd's event streams at once (100 and more)
        "max_connections_per_client": 1000,
        "repo_allowed_networks": TEST_ALLOWED_NETWORKS,
        # test stacks stop their parts on purpose (outages, faults): the supervisor is started
        # by the tests of supervision only (tests/production/test_supervisor.py)
        "supervise": False,
        **overrides,
    }
    return {f"BINDERY_{k.upper()}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
            for k, v in values.items()}


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings from `stack_env`'s variables, parsed as the web child process parses them."""
    values: dict[str, object] = {}
    for key, text in env.items():
        values[key.removeprefix("BINDERY_").lower()] = json.loads(text) if text[:1] in "[{" else text
    return Settings(**values)


@pytest.fixture(scope="session")
def registry_mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second registry (the same registry binary as the stack's, on a port of its own) standing
    in for a site's pull-through cache of Docker Hub: the session stack's registry_mirrors point
    docker.io at it. It cannot proxy (Docker Hub is unreachable here): it is empty until a test
    copies an image into it, under the name Docker Hub would have."""
    from bindery.stack import registry_server

    settings = Settings(data_dir=tmp_path_factory.mktemp("mirror"), registry_port=free_port())
    registry_server.start(settings, log=lambda message: None)
    try:
        yield settings
    finally:
        registry_server.stop(settings)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, git_server: GitServer,
          registry_mirror: Settings) -> Iterator[Settings]:
    """A running embedded stack (web, hub, proxy, registry, build and run podman).

    Its GitHub, GitLab and gist base URLs point at the test git server; its engines pull Docker
    Hub's images through `registry_mirror`.
    """
    from bindery import stack as embedded

    data_dir = Path(os.environ.get("BINDERY_TEST_DATA_DIR") or tmp_path_factory.mktemp("stack"))
    base = git_server.base_url
    # Pages of one other origin may use it (a book's live code: tests/web/test_thebe.py).
    # Its launch event log goes to <data_dir>/launch-events (tests/test_launch_log.py).
    env = stack_env(data_dir, github_url=base, gitlab_url=base, gist_url=base,
                    registry_mirrors={"docker.io": f"http://{registry_mirror.registry.host}"},
                    cors_allow_origin=f"http://127.0.0.1:{free_port()}",
                    launch_log_dir=data_dir / "launch-events")
    # Settings are handed over explicitly, never through this process's environment, so tests
    # that make their own Settings() see the defaults.
    settings = settings_from_env(env)
    try:
        embedded.up(settings)
        yield settings
    finally:
        embedded.down(settings)
        if not os.environ.get("BINDERY_TEST_DATA_DIR"):  # a folder of the developer's own stays
            discard_stores(data_dir)


@pytest.fixture
async def hub(stack: Settings):
    """A client of the session stack's hub with bindery's service token."""
    from bindery.launches.hub_api import Hub

    client = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 10)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def base_image(stack: Settings) -> str:
    from bindery import stack as embedded

    return embedded.status(stack)["base_image"]


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def git_repo_factory(git_server: GitServer, base_image: str):
    """make(name, extra_dockerfile_lines=..., files=...) -> (org/name, git URL) of a new repo."""

    def make(name: str, dockerfile: str = "", files: dict[str, str] | None = None):
        content = {"Dockerfile": f"FROM {base_image}\n{dockerfile}\n", **(files or {})}
        return git_server.create(name, content)

    return make


@pytest.fixture(scope="session", autouse=True)
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def run_cli(settings: Settings, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`bindery <args>` as a person runs it, against the stack of `settings`."""
    import sys

    from bindery.stack.web_service import settings_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERY_")}
    env.update(settings_env(settings))
    return subprocess.run([sys.executable, "-m", "bindery", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
