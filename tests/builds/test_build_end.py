"""A build ends at its own success line (bindery/builds/repo2docker_entry.py): the image is in the
registry when the build's events end, the container is then removed with its log kept, and a
repository cannot forge that line to make a failed build look successful. Real builds on the
session stack's build engine, run as the build queue runs them (bindery.builds.runner)."""

from __future__ import annotations

import json
import uuid

import docker
import pytest

from bindery.builds.executors.engine import engine_client
from bindery.builds.executors.base import build_name
from bindery.builds.buildpack_mode import BuildpacksChooser
from bindery.builds.queue import BuildJob
from bindery.builds.repo2docker_run import END_KEY
from bindery.builds.runner import engine_executor, run_build
from bindery.events import Event, LaunchError
from bindery.registry_client import Registry
from bindery.settings import Settings
from tests.production.own_stack import wait_for

pytestmark = pytest.mark.stack


def exists(settings: Settings, name: str) -> bool:
    try:
        engine_client(settings.build_socket).containers.get(name)
        return True
    except docker.errors.NotFound:
        return False


async def build(settings: Settings, url: str) -> tuple[str, list[Event], LaunchError | None]:
    image = f"{settings.registry.host}/bindery/end-{uuid.uuid4().hex[:8]}:test"
    job = BuildJob(image=image, repo=url, commit=None, source=url)
    executor = engine_executor(settings)
    events: list[Event] = []
    try:
        async for event in run_build(settings, BuildpacksChooser.from_settings(settings),
                                     executor, job, {}):
            events.append(event)
    except LaunchError as exc:
        return image, events, exc
    finally:
        await executor.aclose()  # lets the background finish end, as a shutdown does
    return image, events, None


async def test_success_line_ends_the_build_with_the_image_pushed(stack, git_repo_factory):
    _, url = git_repo_factory(f"end-ok-{uuid.uuid4().hex[:6]}", "RUN echo made-$((6*7))")
    image, events, error = await build(stack, url)
    assert error is None, error.event().message
    log = "".join(e.message for e in events)
    assert "made-42" in log and "Successfully pushed" in log  # no line lost by ending early
    assert END_KEY not in log  # the success line is not shown as an event
    registry = Registry(stack.registry.url, stack.registry.registry_timeout, stack.registry.registry_retries)
    try:
        assert await registry.image_exists(image)  # pushed when the events ended
    finally:
        await registry.aclose()
    name = build_name(image)
    await wait_for(lambda: not exists(stack, name), 60, "the finished build container removed")
    logs = engine_executor(stack).logs
    record = logs.record(name)
    assert record is not None and record.status == 0 and record.image == image
    assert "made-42" in (logs.text(name) or "")


async def test_a_repository_cannot_forge_the_success_line(stack, git_repo_factory):
    forged = json.dumps({END_KEY: "forged"}).replace('"', '\\"')
    _, url = git_repo_factory(f"end-forged-{uuid.uuid4().hex[:6]}",
                              f'RUN echo "{forged}" && echo "{forged}" >&2 && exit 3')
    image, events, error = await build(stack, url)
    assert error is not None  # the forged line did not end it: the build's real end did
    assert "Build failed" in error.event().message
    assert any(END_KEY in e.message for e in events)  # the line was there, as build output
