"""Pull progress: the run side's pull of a new image is visible, bounded, and its failures are clear;
and a fresh run engine, which the service gave the base image, pulls only a new image's own layers."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from bindery.events import LaunchError
from bindery.launches.prepull import Prepuller
from bindery import stack as embedded
from bindery.image_names import split_image
from bindery.registry_client import MANIFEST_HEADERS, RegistryAuth, manifest_url
from tests.production.own_stack import FROM_BASE, dedicated_stack, repo, wait_for
from tests.production.watch import dumps, remove_users, watch
from tests.streams import git_spec, pulled, run_side_images


async def test_first_launch_shows_pull_progress_before_the_start_request(stack, git_repo_factory):
    # A layer of its own that the run side has never seen (8 MB of random bytes).
    _, url = git_repo_factory("pulled", "RUN head -c 8000000 /dev/urandom > /home/jovyan/blob")
    try:
        w = await asyncio.wait_for(watch(stack.service.web_url, "git", git_spec(url, "main")), 300)
        assert w.last.phase == "ready", dumps(w)
        image = w.last.data()["image"]
        assert pulled(stack, image)
        pulls = [s for s in w.events if s.phase == "launching" and "pull" in s.event.data()]
        assert pulls, dumps(w)
        final = pulls[-1].event.data()["pull"]
        assert final["layers"] >= 1 and final["layers_done"] == final["layers"], final
        assert final["bytes"] == final["total_bytes"], final
        assert "Pulling the image onto the server's machine" in w.log()
        # The pull came before the hub's start request answered (DockerSpawner then finds it).
        answered = w.first(lambda s: "hub_status" in s.event.data())
        assert answered is not None and pulls[-1].at <= answered.at
        # Throttled: at most one progress event per interval (plus the first and last).
        span = pulls[-1].at - pulls[0].at
        assert len(pulls) <= span / stack.launches.prepull_progress_interval + 3, len(pulls)
    finally:
        await remove_users(stack, url)


async def test_pull_failures_and_timeouts_are_clear(stack):
    missing = f"{stack.registry.host}/bindery/never-built:0123456789abcdef"
    puller = Prepuller(stack.run_socket, timeout=60)
    try:
        with pytest.raises(LaunchError) as failed:
            async for _ in puller.pull(missing):
                pass
        assert failed.value.message.startswith(
            "Could not pull the image onto the server's machine:"), failed.value.message
        assert "never-built" in failed.value.message
    finally:
        await puller.aclose()

    slow = Prepuller(stack.run_socket, timeout=0.001)
    try:
        with pytest.raises(LaunchError) as timed_out:
            async for _ in slow.pull(missing):
                pass
        assert "took longer than" in timed_out.value.message
        assert timed_out.value.status_code == 504
    finally:
        await slow.aclose()

    gone = Prepuller("unix:///nonexistent/engine.sock", timeout=10)
    try:
        with pytest.raises(LaunchError) as unreachable:
            async for _ in gone.pull(missing):
                pass
        assert "container engine that runs servers is not answering" in unreachable.value.message
        assert unreachable.value.status_code == 503
    finally:
        await gone.aclose()


def manifest(settings, image: str) -> dict:
    response = httpx.get(manifest_url(settings.registry.url, image), headers=MANIFEST_HEADERS,
                         timeout=10, auth=RegistryAuth())  # anonymous: a pull token
    response.raise_for_status()
    return response.json()


def blobs_fetched(settings, repo: str) -> set[str]:
    """Digests of the blobs the registry served under `repo` (its own log, not bindery's)."""
    log = (settings.logs_dir / "registry.log").read_text(errors="replace")
    return set(re.findall(rf'http\.request\.method=GET \S+ http\.request\.uri="?/v2/{re.escape(repo)}'
                          r'/blobs/(sha256:[0-9a-f]{64})', log))


async def test_a_fresh_run_engine_pulls_only_a_new_image_s_own_layers(tmp_path_factory, git_server):
    """On a stack just brought up, the service has put the base image on the run engine (warm
    images); the first launch of a new image then pulls its own layers and config, none of the base's."""
    with dedicated_stack(tmp_path_factory.mktemp("fresh-run"), git_server.base_url) as settings:
        base = embedded.base_image_name(settings)
        assert base in await wait_for(lambda: run_side_images(settings) & {base}, 300,
                                      "the base image on the run engine")
        # Two layers of its own the run side has never seen (random bytes: nothing to share).
        _, url = repo(git_server, "own-layers", FROM_BASE
                      + "RUN head -c 3000000 /dev/urandom > /home/jovyan/blob\n"
                      + "RUN head -c 1000 /dev/urandom > /home/jovyan/blob2\n")
        try:
            w = await asyncio.wait_for(watch(settings.web_url, "git", git_spec(url, "main")), 300)
            assert w.last.phase == "ready", dumps(w)
            image = w.last.data()["image"]
            assert pulled(settings, image)
            new, shipped = manifest(settings, image), manifest(settings, base)
            base_layers = {layer["digest"] for layer in shipped["layers"]}
            own = {layer["digest"] for layer in new["layers"]} - base_layers
            assert len(own) == 2 and base_layers < {layer["digest"] for layer in new["layers"]}
            # The run side's pull is the only reader of the new image's repository.
            fetched = blobs_fetched(settings, split_image(image)[1])
            assert fetched == own | {new["config"]["digest"]}, (fetched, own)
        finally:
            await remove_users(settings, url)
