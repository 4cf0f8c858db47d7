"""A site's pull-through cache: a Dockerfile FROM a Docker Hub image builds through the mirror the
registry_mirrors setting names (the build engine's registries.conf), and a FROM that neither
can serve fails naming the registry and the mirror it tried.

The mirror is tests/conftest.py's `registry_mirror` (a real registry, filled here, since Docker
Hub cannot be reached to proxy it).
"""

from __future__ import annotations

import subprocess

import pytest

from bindery import datadir
from bindery.launches.hub_api import Hub
from bindery.stack.podman import registries_config
from tests.builds.kernel import run_in_kernel
from tests.streams import collect, git_spec

pytestmark = pytest.mark.stack


def test_registries_conf_names_each_mirror():
    text = registries_config("127.0.0.1:5000", {"docker.io": "http://127.0.0.1:6000",
                                                "quay.io": "https://cache.example.org/quay/"})
    assert '[[registry]]\nlocation = "docker.io"\n\n[[registry.mirror]]\nlocation = ' \
           '"127.0.0.1:6000"\ninsecure = true\n' in text
    assert 'location = "quay.io"\n\n[[registry.mirror]]\nlocation = "cache.example.org/quay"\n' \
           in text and text.count("insecure = true") == 2  # the stack's own registry, and http


async def test_from_docker_hub_builds_through_the_mirror(stack, registry_mirror, base_image,
                                                         git_server):
    # The site's cache holds python:3.7-slim (here: the stack's base image under that name)
    # (pushed with the cache's own pusher credential: its registry, like the stack's, takes pushes
    # only from that; the build engine pulls from it anonymously)
    user, password = datadir.registry_credential(registry_mirror)
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                    "--dest-tls-verify=false", f"--dest-creds={user}:{password}", f"docker://{base_image}",
                    f"docker://{registry_mirror.registry.host}/library/python:3.7-slim"],
                   check=True, timeout=300)
    _, url = git_server.create("mirrored", {
        "Dockerfile": "FROM python:3.7-slim\nRUN echo built-through-the-mirror > /tmp/m.txt\n"})
    events = await collect(stack, "git", git_spec(url, "main"))
    last = events[-1]
    assert last.phase == "ready", last.message
    data = last.data()
    hub = Hub(datadir.hub_api(stack), datadir.hub_token(stack), 30)
    try:
        output = await run_in_kernel(data["url"], data["token"], "print(open('/tmp/m.txt').read())")
        assert "built-through-the-mirror" in output
    finally:
        await hub.stop_server(data["user"])
        await hub.aclose()


async def test_a_from_nobody_serves_names_the_registry_and_the_mirror(stack, registry_mirror,
                                                                     git_server):
    _, url = git_server.create("unmirrored", {"Dockerfile": "FROM python:3.6-slim\n"})
    last = (await collect(stack, "git", git_spec(url, "main")))[-1]
    assert last.phase == "failed"
    assert "the base image python:3.6-slim could not be pulled from its registry, docker.io, " \
           f"through its mirror http://{registry_mirror.registry.host}" in last.message, \
        last.message
