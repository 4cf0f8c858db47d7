"""A dedicated embedded stack for tests that break parts of it (or need other hub settings).

Fault, limit and culling tests must not harm the session's shared stack, so each of their modules
brings up its own (free ports, its own data_dir; ~8 s with the cached base image) and takes it down
after. Settings are passed to the stack directly (no os.environ changes): `bindery.stack.web_service` gives
the web child process exactly these settings.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import httpx

from bindery.backoff import wait_until_async
from bindery import datadir
from bindery import stack as embedded
from bindery.launches.hub_api import Hub
from bindery.launches.hub_users import PREFIX
from bindery.settings import Settings
from bindery.stack import podman
from bindery.datadir import StackPaths
from bindery.engine_clients import docker_client
from tests.conftest import discard_stores, settings_from_env, stack_env

# A Dockerfile repository builds on the stack's base image without knowing its name.
FROM_BASE = "ARG BINDERY_BASE_IMAGE\nFROM ${BINDERY_BASE_IMAGE}\n"


def settings_for(data_dir: Path, git_base: str, **overrides: object) -> Settings:
    env = stack_env(data_dir, github_url=git_base, gitlab_url=git_base, gist_url=git_base,
                    **overrides)
    return settings_from_env(env)


@contextlib.contextmanager
def dedicated_stack(data_dir: Path, git_base: str, **overrides: object) -> Iterator[Settings]:
    settings = settings_for(data_dir, git_base, **overrides)
    try:
        embedded.up(settings, log=lambda line: None)
        yield settings
    finally:
        embedded.down(settings, log=lambda line: None)  # also drops podman's overlay mounts
        discard_stores(data_dir)


# -- the fault stack, shared by test_faults.py and test_health_metrics.py --------------------------
# One dedicated stack for everything that breaks parts on purpose (saves a stack start and the
# first image pulls on both sides). Its build store sits on a small tmpfs, so a build can really
# fill its disk; its hub culls idle servers quickly; small timeouts keep fault bounds short.
BUILD_STORE_SIZE = "1800m"  # room for the base image's layers and small builds, not much more
CULL_IDLE = 8  # seconds; jupyterhub-idle-culler looks every CULL_IDLE // 2 s
FAULT_SETTINGS = {
    "registry_timeout": 2, "registry_retries": 3,
    "hub_timeout": 5, "launch_retries": 3, "launch_timeout": 60, "hub_http_timeout": 15,
    "build_timeout": 120, "build_slots": 2, "cull_idle_seconds": CULL_IDLE,
}
_fault_stack: dict[str, Settings] = {}


def fault_stack(config, tmp_path_factory, git_server) -> Settings:
    """The shared fault stack (started on first use, stopped at the end of the session)."""
    if "settings" in _fault_stack:
        return _fault_stack["settings"]
    data_dir = tmp_path_factory.mktemp("faults")
    store = data_dir / "stores" / "build"
    store.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={BUILD_STORE_SIZE}", "tmpfs", str(store)],
                   check=True)
    context = dedicated_stack(data_dir, git_server.base_url, **FAULT_SETTINGS)

    def stop() -> None:
        try:
            context.__exit__(None, None, None)
        finally:
            subprocess.run(["umount", "-l", str(store)], check=False)

    config.add_cleanup(stop)
    _fault_stack["settings"] = context.__enter__()
    return _fault_stack["settings"]


def repo(git_server, name: str, dockerfile: str = "", files: dict[str, str] | None = None):
    """A new Dockerfile repository on the test git server: (path, URL)."""
    return git_server.create(name, {"Dockerfile": FROM_BASE + dockerfile + "\n", **(files or {})})


def run_client(settings: Settings) -> docker.DockerClient:
    return docker_client(settings.run_socket, 30)


def server_containers(settings: Settings, all_: bool = True) -> list:
    """The run side's server containers of this stack's hub."""
    client = run_client(settings)
    try:
        stack_id = StackPaths.of(settings).stack_id
        return client.containers.list(all=all_, filters={"label": f"{podman.STACK_LABEL}={stack_id}"})
    finally:
        client.close()


async def hub_users(settings: Settings) -> list[dict]:
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 10)
    try:
        return [u for u in await hub.list_users() if u["name"].startswith(PREFIX)]
    finally:
        await hub.aclose()


async def wait_for(condition: Callable[[], object], timeout: float, what: str,
                   interval: float = 0.2) -> object:
    """Bounded polling of a real condition (sync or async); returns its first truthy value."""
    return await wait_until_async(condition, timeout=timeout, what=what, interval=interval)


async def assert_no_orphans(settings: Settings, timeout: float = 30) -> None:
    """No temporary hub users and no server containers left (within a bound: removal is async)."""
    async def clean():
        users = await hub_users(settings)
        containers = server_containers(settings)
        return (not users and not containers) or None
    try:
        await wait_for(clean, timeout, "no b- users on the hub and no server containers")
    except AssertionError:
        users = [u["name"] for u in await hub_users(settings)]
        names = [c.name for c in server_containers(settings)]
        raise AssertionError(f"orphans after {timeout} s: users {users}, containers {names}")


def versions_ok(settings: Settings) -> bool:
    response = httpx.get(settings.service.web_url.rstrip("/") + "/versions", timeout=5)
    return response.status_code == 200


async def release(settings: Settings, ready_event) -> None:
    """Stop a launched server and delete its user (a person leaving): not an orphan, just done."""
    user = ready_event.data()["user"]
    hub = Hub(datadir.hub_api(settings), datadir.hub_token(settings), 10)
    try:
        async def gone():
            await hub.stop_server(user)
            return await hub.delete_user(user)
        await wait_for(gone, 60, f"user {user} deleted", interval=0.5)
    finally:
        await hub.aclose()


def metric_samples(settings: Settings) -> dict[tuple[str, tuple], float]:
    """/metrics parsed with prometheus_client's parser: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(settings.service.web_url.rstrip("/") + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
