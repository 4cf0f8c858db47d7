"""Pull progress (issue 3, point 9): the run side's pull of a new image is visible, bounded, and its
failures are clear."""

from __future__ import annotations

import asyncio

import pytest

from bindery.events import LaunchError
from bindery.launches.prepull import Prepuller
from tests.production.watch import dumps, remove_users, watch
from tests.streams import git_spec, pulled


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
