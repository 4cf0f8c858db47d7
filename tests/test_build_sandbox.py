"""Build steps are sandboxed: hostile repositories written here, built on the session stack.

Each repository does in a Dockerfile RUN step what an attacker would (every buildpack install and
postBuild is such a step too): plant an image into the registry, open a raw socket to sniff
loopback, connect to every service of the stack and to a listener on 127.0.0.2. The traffic
stays on this machine. The mirror-buildpack build that must still work is in
tests/builds/test_build_modes.py (requirements.txt with numpy, apt.txt).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid

import pytest

from bindery import datadir
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.queue import BuildJob
from bindery.builds.runner import engine_executor, run_build
from bindery.engine_clients import docker_client
from bindery.events import Event, LaunchError
from bindery.registry_client import Registry
from bindery.settings import Settings
from bindery.stack import registry_server, server_network
from tests.registry_push import push_image
from tests.streams import collect, git_spec

pytestmark = pytest.mark.stack

# Run in a build step: try each (host, port) and say what happened, one line each.
PROBE = r'''
import json, socket, sys
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print(f"PROBE REACHED {host}:{port}", flush=True)
    except OSError as exc:
        print(f"PROBE BLOCKED {host}:{port} {type(exc).__name__}", flush=True)
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    print("PROBE RAW SOCKET OPENED", flush=True)
except OSError as exc:
    print(f"PROBE RAW SOCKET REFUSED {exc}", flush=True)
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    print("PROBE RAW SOCKET OPENED", flush=True)
except OSError as exc:
    print(f"PROBE RAW SOCKET REFUSED {exc}", flush=True)
'''


async def build(settings: Settings, url: str, image: str) -> tuple[list[Event], LaunchError | None]:
    job = BuildJob(image=image, repo=url, commit=None, source=url)
    executor = engine_executor(settings)
    events: list[Event] = []
    try:
        async for event in run_build(settings, BuildpacksChooser.from_settings(settings),
                                     executor, job, {}):
            events.append(event)
    except LaunchError as exc:
        return events, exc
    finally:
        await executor.aclose()
    return events, None


@pytest.fixture
def listener_on_127_0_0_2():
    """A TCP listener on 127.0.0.2, as a private service of the machine would be."""
    server = socket.socket()
    server.bind(("127.0.0.2", 0))
    server.listen(8)
    accepted: list[str] = []

    def accept() -> None:
        while True:
            try:
                conn, peer = server.accept()
            except OSError:
                return
            accepted.append(peer[0])
            conn.close()
    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()


def stack_services(settings: Settings, git_port: int) -> list[tuple[str, int]]:
    """Every service of the stack, at every address of this machine it listens on."""
    addresses = sorted({a["local"] for a in server_network.host_addresses()} - {"127.0.0.1"})
    ports = [settings.registry.registry_port, registry_server.token_port(settings),
             settings.service.port, settings.stack.proxy_port, settings.stack.proxy_api_port,
             git_port]
    targets = [("127.0.0.1", p) for p in ports]
    targets.append((datadir.hub_address(settings), settings.stack.hub_port))
    targets += [(a, settings.stack.proxy_port) for a in addresses]  # the machine's own addresses
    targets.append(("169.254.169.254", 80))  # cloud metadata
    return targets


async def test_a_build_step_reaches_no_service_and_opens_no_raw_socket(
        stack, git_repo_factory, git_server, listener_on_127_0_0_2):
    port, accepted = listener_on_127_0_0_2
    targets = stack_services(stack, git_server.port) + [("127.0.0.2", port)]
    files = {"probe.py": PROBE}
    _, url = git_repo_factory(
        f"sandbox-probe-{uuid.uuid4().hex[:6]}",
        f"COPY probe.py /tmp/probe.py\nUSER root\n"
        f"RUN python3 /tmp/probe.py '{json.dumps(targets)}'", files)
    events, error = await build(stack, url, f"{stack.registry.host}/bindery/probe-"
                                            f"{uuid.uuid4().hex[:8]}:test")
    assert error is None, error.event().message
    log = "".join(e.message for e in events)
    lines = [line for line in log.splitlines() if line.startswith("PROBE ")]
    assert len([line for line in lines if "REACHED" in line or "BLOCKED" in line]) == len(targets), log
    assert not [line for line in lines if "REACHED" in line], "\n".join(lines)
    assert lines.count(next(line for line in lines if "RAW SOCKET" in line)) >= 1
    assert not [line for line in lines if "RAW SOCKET OPENED" in line], "\n".join(lines)
    assert len([line for line in lines if "RAW SOCKET REFUSED" in line]) == 2
    assert accepted == []  # the listener on 127.0.0.2 never saw the step


async def test_a_planted_image_is_never_launched(stack, git_repo_factory):
    """A victim's image name is computable; an attacker's build step tries to write it, and even
    a tag overwritten in the registry (by anyone) is not what the victim's launch starts."""
    name = f"sandbox-victim-{uuid.uuid4().hex[:6]}"
    _, victim_url = git_repo_factory(name, "RUN echo victim-own > /tmp/victim-marker")
    built = await collect(stack, "git", git_spec(victim_url, "main"))
    assert built[-1].phase == "ready", built[-1].message
    image = built[-1].data()["image"]
    own = next(e.data()["digest"] for e in built if e.data().get("digest"))

    # The attacker's build step: start an upload under the victim's name, straight over HTTP.
    upload = (f"http://127.0.0.1:{stack.registry.registry_port}/v2/"
              f"{image.split('/', 1)[1].rsplit(':', 1)[0]}/blobs/uploads/")
    plant = ("import sys, urllib.request as u\n"
             "try:\n"
             "    u.urlopen(u.Request(sys.argv[1], method='POST'), timeout=5)\n"
             "    print('PLANT STARTED AN UPLOAD')\n"
             "except Exception as exc:\n"
             "    print('PLANT', type(exc).__name__, exc)\n")
    _, attacker_url = git_repo_factory(f"sandbox-attacker-{uuid.uuid4().hex[:6]}",
                                       f"COPY plant.py /tmp/plant.py\nRUN python3 /tmp/plant.py {upload}",
                                       {"plant.py": plant})
    events, error = await build(stack, attacker_url, f"{stack.registry.host}/bindery/attacker-"
                                                     f"{uuid.uuid4().hex[:8]}:test")
    assert error is None, error.event().message
    said = [line for line in "".join(e.message for e in events).splitlines()
            if line.startswith("PLANT")]
    assert said and "STARTED" not in said[0], said
    assert "Connection refused" in said[0] or "unreachable" in said[0].lower(), said  # no route
    registry = Registry(stack.registry.url, 5, 2)
    try:
        assert await registry.digest(image) == own  # the step wrote nothing

        # Without the credential nobody writes (no network needed to show it); with it, a tag
        # can be overwritten: the victim's launch must still start its own digest.
        import httpx

        from bindery.registry_client import RegistryAuth
        repo = image.split("/", 1)[1].rsplit(":", 1)[0]
        tag = image.rsplit(":", 1)[1]
        with httpx.Client(timeout=10, auth=RegistryAuth(None)) as anonymous:
            assert push_image(anonymous, stack.registry.url, repo, tag,
                              {"planted": b"x"}).status_code == 401
        with httpx.Client(timeout=10, auth=RegistryAuth(datadir.registry_credential(stack))) as c:
            assert push_image(c, stack.registry.url, repo, tag, {"planted": b"x"}).status_code == 201
        assert await registry.digest(image) != own  # the tag now names the planted image
    finally:
        await registry.aclose()

    launched = await collect(stack, "git", git_spec(victim_url, "main"))
    assert launched[-1].phase == "ready", launched[-1].message
    assert "Found built image" in "".join(e.message for e in launched)  # no rebuild needed
    user = launched[-1].data()["user"]
    client = docker_client(stack.run_socket, 30)
    try:
        started = [c for c in client.containers.list()
                   if f"JUPYTERHUB_USER={user}" in (c.attrs["Config"].get("Env") or [])]
        assert started, f"no server container of {user}"
        assert started[0].attrs["Config"]["Image"].endswith(f"@{own}")
    finally:
        client.close()


async def test_an_output_flood_ends_the_build_with_a_message_about_output(stack, git_repo_factory):
    budget = 1024 * 1024
    settings = stack.model_copy(update={"build_output_max_bytes": budget})
    _, url = git_repo_factory(f"sandbox-flood-{uuid.uuid4().hex[:6]}",
                              "RUN yes flooding-the-log | head -c 200000000")
    events, error = await build(settings, url, f"{stack.registry.host}/bindery/flood-"
                                               f"{uuid.uuid4().hex[:8]}:test")
    assert error is not None
    message = error.event().message
    assert "output" in message and "1 MiB" in message, message
    assert sum(len(e.message) for e in events) < 2 * budget  # it stopped near the budget


def test_the_stack_networks_are_its_engines_own(stack):
    """A stack's networks live in its own engines' configuration, not the machine's: another
    stack, or an operator's `podman network prune`, never sees or removes them."""
    from pathlib import Path

    from bindery.datadir import StackPaths
    from bindery.stack import build_network

    for side, name in (("build", build_network.network_name(stack)),
                       ("run", server_network.network_name(stack))):
        own = StackPaths.of(stack).store(side) / "networks" / f"{name}.json"
        assert own.exists(), f"{name} is not in the {side} engine's own folder"
        assert not (Path("/etc/containers/networks") / f"{name}.json").exists()
    other = docker_client(stack.run_socket, 30)  # the run engine does not see the build network
    try:
        assert not other.networks.list(names=[build_network.network_name(stack)])
    finally:
        other.close()


def _peak_rss_reset() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the kernel resets VmHWM (peak resident size) to the current size


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


async def test_following_a_600_mb_print_keeps_memory_flat(stack, git_repo_factory):
    """The code that follows a build (the web service's, run here in the test process) holds
    no whole log: while a step prints 600 MB, its peak resident size grows by little."""
    printed = 600 * 1024 * 1024
    settings = stack.model_copy(update={"build_output_max_bytes": 2 * printed})
    # long lines, so the 600 MB is not 37 million tiny events
    _, url = git_repo_factory(f"sandbox-print-{uuid.uuid4().hex[:6]}",
                              f"RUN head -c {printed} /dev/zero | tr '\\0' x | fold -w 8000")
    job = BuildJob(image=f"{stack.registry.host}/bindery/print-{uuid.uuid4().hex[:8]}:test",
                   repo=url, commit=None, source=url)
    executor = engine_executor(settings)
    seen = 0
    before = _rss_kib("VmRSS")
    _peak_rss_reset()
    try:
        async for event in run_build(settings, BuildpacksChooser.from_settings(settings),
                                     executor, job, {}):
            seen += len(event.message)
    finally:
        await executor.aclose()
    peak = _rss_kib("VmHWM")
    # Nearly all of it: the engine's own log file of a container is capped (the stack's output
    # budget), so a follower that lags far behind on a loaded machine can miss a little (0.6% seen
    # in one full run). The follower is what is measured here, not the engine's log.
    assert seen >= printed * 0.98, f"only {seen} bytes of output reached the follower"
    assert peak - before < 64 * 1024, f"peak resident size grew by {(peak - before) // 1024} MiB"


@pytest.mark.parametrize("name, step, named", [
    # one file past the budget: the steps' file-size limit stops it
    ("fill", "RUN yes > /tmp/fill", "disk budget (0.0625 GiB)"),
    # no file reaches the budget (8 MiB each), but together they pass it: the store is watched
    ("files", "RUN for i in $(seq 1 60); do head -c 8388608 /dev/urandom > /tmp/f$i; done",
     "disk budget (0.0625 GiB) in all"),
])
async def test_a_disk_fill_ends_the_build_naming_the_disk_budget(stack, git_repo_factory, name, step,
                                                                 named):
    settings = stack.model_copy(update={"build_disk_max_bytes": 64 * 1024 * 1024})
    _, url = git_repo_factory(f"sandbox-{name}-{uuid.uuid4().hex[:6]}", step)
    _, error = await build(settings, url, f"{stack.registry.host}/bindery/{name}-"
                                          f"{uuid.uuid4().hex[:8]}:test")
    assert error is not None
    message = error.event().message
    assert named in message, message


async def test_a_symlink_out_of_the_repository_is_named(stack, git_server, base_image):
    path, url = git_server.create(f"sandbox-link-{uuid.uuid4().hex[:6]}", {
        "Dockerfile": f"FROM {base_image}\nCOPY escape /tmp/escape\n"})
    (git_server.root / path / "escape").symlink_to("/etc/hostname")
    git_server.git(git_server.root / path, "add", "-A")
    git_server.git(git_server.root / path, "commit", "-q", "-m", "link")
    _, error = await build(stack, url, f"{stack.registry.host}/bindery/link-"
                                       f"{uuid.uuid4().hex[:8]}:test")
    assert error is not None
    message = error.event().message
    assert "symlink escape points outside the repository (to /etc/hostname)" in message, message


async def test_a_failing_from_names_the_registry_it_tried(stack, git_server):
    _, url = git_server.create(f"sandbox-from-{uuid.uuid4().hex[:6]}", {
        "Dockerfile": "FROM quay.io/nobody/nothing:1\nRUN true\n"})
    _, error = await build(stack, url, f"{stack.registry.host}/bindery/from-"
                                       f"{uuid.uuid4().hex[:8]}:test")
    assert error is not None
    message = error.event().message
    assert "could not be pulled from its registry, quay.io" in message, message
